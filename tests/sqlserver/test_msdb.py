"""Catalog queries against a recording fake: discovery, permissions, history conversion."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlharbor_agent.engines.sqlserver import msdb

from sqlharbor.domain.backupset import BackupType, DatabaseState, RecoveryModel
from sqlharbor.errors import ErrorCode

from .fakes import FakeServer


def backupset_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "backup_set_id": 42,
        "database_name": "Sales",
        "database_guid": "6F9619FF-8B86-D011-B42D-00C04FC964FF",
        "type": "L",
        "is_copy_only": False,
        "first_lsn": Decimal("35000000012300001"),
        "last_lsn": Decimal("35000000045600001"),
        "checkpoint_lsn": Decimal("35000000010000037"),
        "database_backup_lsn": Decimal("35000000010000037"),
        "differential_base_lsn": None,
        "backup_start_date": datetime(2024, 3, 1, 14, 0, 0),
        "backup_finish_date": datetime(2024, 3, 1, 14, 0, 2, 500000),
        "time_zone": 8,
        "recovery_model": "BULK-LOGGED",
        "begins_log_chain": False,
        "backup_size": Decimal(1048576),
    }
    row.update(overrides)
    return row


def test_backupset_row_becomes_a_utc_record() -> None:
    record = msdb.backup_record(backupset_row())
    assert record.backup_type is BackupType.LOG
    assert record.finish == datetime(2024, 3, 1, 12, 0, 2, 500000, tzinfo=UTC)
    assert record.first_lsn == 35000000012300001
    assert record.differential_base_lsn is None
    assert record.recovery_model is RecoveryModel.BULK_LOGGED
    assert record.database_guid == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert record.size_bytes == 1048576
    assert record.backup_set_id == "42"


def test_negative_and_unknown_time_zones() -> None:
    west = msdb.backup_record(backupset_row(time_zone=-20))  # UTC-5
    assert west.finish.hour == 19
    unknown = msdb.backup_record(backupset_row(time_zone=127), fallback_offset_minutes=60)
    assert unknown.finish.hour == 13


def test_full_and_differential_types() -> None:
    assert msdb.backup_record(backupset_row(type="D")).backup_type is BackupType.FULL
    diff = msdb.backup_record(backupset_row(type="I", differential_base_lsn=Decimal(7)))
    assert diff.backup_type is BackupType.DIFFERENTIAL
    assert diff.differential_base_lsn == 7


def test_history_filters_exactly_after_conversion() -> None:
    server = FakeServer()
    rows = [
        backupset_row(backup_set_id=1, backup_finish_date=datetime(2024, 3, 1, 9, 59), time_zone=0),
        backupset_row(backup_set_id=2, backup_finish_date=datetime(2024, 3, 1, 10, 1), time_zone=0),
    ]
    server.on("msdb.dbo.backupset", rows)
    server.on("SYSUTCDATETIME", [{"offset_minutes": 0}])
    cursor = server.connect().cursor()
    got = msdb.history(cursor, "Sales", datetime(2024, 3, 1, 10, 0, tzinfo=UTC))
    assert [r.backup_set_id for r in got] == ["2"]
    sql, params = server.executed[0]
    assert "bs.database_name = ?" in sql
    assert params == ("Sales", datetime(2024, 3, 1, 10, 0))


def test_discovery_rows() -> None:
    server = FakeServer()
    server.on(
        "FROM sys.databases",
        [
            {
                "name": "Sales",
                "database_guid": "AB",
                "recovery_model_desc": "FULL",
                "state_desc": "ONLINE",
                "is_read_only": False,
                "is_system": False,
                "size_bytes": 16777216,
                "availability_group": "ag1",
                "is_preferred": 0,
            },
            {
                "name": "master",
                "database_guid": None,
                "recovery_model_desc": "SIMPLE",
                "state_desc": "RECOVERY_PENDING",
                "is_read_only": True,
                "is_system": True,
                "size_bytes": None,
                "availability_group": None,
                "is_preferred": 1,
            },
        ],
    )
    sales, master = msdb.discover(server.connect().cursor())
    assert sales.availability_group == "ag1"
    assert not sales.is_preferred_backup_replica
    assert sales.size_bytes == 16777216
    assert master.state is DatabaseState.RECOVERING
    assert master.is_system
    assert master.read_only
    assert master.size_bytes == 0
    sql = server.executed[0][0]
    assert "sys.database_recovery_status" in sql
    assert "sys.fn_hadr_backup_is_preferred_replica" in sql


def test_permission_check_reports_the_exact_fix() -> None:
    server = FakeServer()
    server.on("IS_SRVROLEMEMBER", [{"login": "CONTOSO\\agent]x", "is_sysadmin": 0}])
    check = msdb.check_permissions(server.connect().cursor())
    assert not check.ok
    assert check.code == ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP
    assert check.remediation_tsql == "ALTER SERVER ROLE [sysadmin] ADD MEMBER [CONTOSO\\agent]]x];"
    ok_server = FakeServer()
    ok_server.on("IS_SRVROLEMEMBER", [{"login": "sa", "is_sysadmin": 1}])
    assert msdb.check_permissions(ok_server.connect().cursor()).ok


def test_offset_at_falls_back_to_the_current_offset() -> None:
    server = FakeServer()

    def refuse(params: tuple[Any, ...]) -> list[dict[str, Any]]:
        raise RuntimeError("'CURRENT_TIMEZONE_ID' is not a recognized built-in function name")

    server.on("CURRENT_TIMEZONE_ID", refuse)
    server.on("SYSUTCDATETIME", [{"offset_minutes": -240}])
    assert msdb.offset_minutes_at(server.connect().cursor(), datetime.now(UTC)) == -240
