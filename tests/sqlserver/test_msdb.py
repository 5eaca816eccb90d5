"""Catalog queries against a recording fake: discovery, permissions, history conversion."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlharbor_agent.engines.sqlserver import msdb

from sqlharbor.domain import chain
from sqlharbor.domain.backupset import (
    BackupType,
    DatabaseState,
    MediaFile,
    MediaKind,
    RecoveryModel,
)
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
        "first_recovery_fork_guid": "A1B2C3D4-0000-4000-8000-00000000000A",
        "last_recovery_fork_guid": "A1B2C3D4-0000-4000-8000-00000000000A",
        "fork_point_lsn": None,
        "server_name": "VM1\\SQL01",
        "position": 1,
        "media_set_id": 7,
        "backup_set_uuid": "C0FFEE00-1111-4222-8333-000000000042",
        "differential_base_guid": None,
        "physical_device_name": "2f1c8a4e-9b7d-4c1e-8f00-6a5b4c3d2e1f",
        "family_sequence_number": 1,
        "mirror": 0,
        "device_type": 7,
    }
    row.update(overrides)
    return row


def family_rows(base: dict[str, Any], *devices: tuple[str, int, int, int]) -> list[dict[str, Any]]:
    """The rows the history join returns for one backup set: one per (device, family,
    mirror, device_type)."""
    return [
        {
            **base,
            "physical_device_name": name,
            "family_sequence_number": family,
            "mirror": mirror,
            "device_type": kind,
        }
        for name, family, mirror, kind in devices
    ]


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
    assert record.backup_set_uuid == "c0ffee00-1111-4222-8333-000000000042"
    assert record.differential_base_guid == ""
    assert record.server_name == "VM1\\SQL01"
    assert record.first_recovery_fork_guid == record.last_recovery_fork_guid
    assert record.recovery_fork == "a1b2c3d4-0000-4000-8000-00000000000a"
    assert record.fork_point_lsn is None
    assert not record.spans_fork
    assert record.media is not None
    assert record.media.media_set_id == "7"
    assert record.media.position == 1
    assert record.media.files == (
        MediaFile("2f1c8a4e-9b7d-4c1e-8f00-6a5b4c3d2e1f", 1, 0, MediaKind.VIRTUAL_DEVICE),
    )


def test_a_striped_full_is_one_record_with_all_its_devices() -> None:
    base = backupset_row(type="D", backup_set_id=50, media_set_id=20, device_type=2)
    rows = family_rows(
        base,
        ("E:\\bak\\Sales_1.bak", 1, 0, 2),
        ("F:\\bak\\Sales_2.bak", 2, 0, 2),
        ("G:\\bak\\Sales_3.bak", 3, 0, 2),
        ("H:\\bak\\Sales_4.bak", 4, 0, 2),
    )
    (record,) = msdb.backup_records(rows)
    assert record.backup_type is BackupType.FULL
    assert record.media is not None
    assert record.media.stripes == 4
    assert [f.name for f in record.media.files] == [
        "E:\\bak\\Sales_1.bak",
        "F:\\bak\\Sales_2.bak",
        "G:\\bak\\Sales_3.bak",
        "H:\\bak\\Sales_4.bak",
    ]
    assert {f.kind for f in record.media.files} == {MediaKind.DISK}
    # a mirrored copy adds rows (mirror 1), not families
    mirrored = msdb.backup_records(
        family_rows(base, ("E:\\a.bak", 1, 0, 2), ("\\\\nas\\a.bak", 1, 1, 2))
    )
    (record,) = mirrored
    assert record.media is not None
    assert record.media.stripes == 1
    assert [f.mirror for f in record.media.files] == [0, 1]


def test_a_media_set_holding_two_backup_sets() -> None:
    """BACKUP ... TO DISK = 'x.bak' WITH NOINIT twice: one media set, positions 1 and 2."""
    full = backupset_row(type="D", backup_set_id=60, media_set_id=30, position=1)
    log = backupset_row(type="L", backup_set_id=61, media_set_id=30, position=2)
    device = ("D:\\Backup\\Sales.bak", 1, 0, 2)
    records = msdb.backup_records([*family_rows(full, device), *family_rows(log, device)])
    assert [r.backup_set_id for r in records] == ["60", "61"]
    assert [r.media.position for r in records if r.media] == [1, 2]
    assert {r.media.media_set_id for r in records if r.media} == {"30"}
    assert all(r.media and r.media.files[0].name == "D:\\Backup\\Sales.bak" for r in records)


def test_a_log_spanning_a_recovery_fork() -> None:
    record = msdb.backup_record(
        backupset_row(
            first_recovery_fork_guid="A1B2C3D4-0000-4000-8000-00000000000A",
            last_recovery_fork_guid="B1B2C3D4-0000-4000-8000-00000000000B",
            first_lsn=Decimal("35000000045600001"),
            fork_point_lsn=Decimal("35000000045600001"),
            last_lsn=Decimal("35000000050000001"),
        )
    )
    assert record.spans_fork
    assert record.first_recovery_fork_guid == "a1b2c3d4-0000-4000-8000-00000000000a"
    assert record.recovery_fork == "b1b2c3d4-0000-4000-8000-00000000000b"
    assert record.fork_point_lsn == 35000000045600001
    assert record.fork_at(35000000045600000) == record.first_recovery_fork_guid
    assert record.fork_at(35000000045600001) == record.recovery_fork


@pytest.mark.parametrize(
    ("device_type", "kind"),
    [
        (2, MediaKind.DISK),
        (102, MediaKind.DISK),
        (5, MediaKind.TAPE),
        (7, MediaKind.VIRTUAL_DEVICE),
        (9, MediaKind.URL),
        (None, MediaKind.UNKNOWN),
        (42, MediaKind.UNKNOWN),
    ],
)
def test_device_types(device_type: int | None, kind: MediaKind) -> None:
    assert msdb.media_kind(device_type) is kind


def test_a_backup_set_without_media_rows() -> None:
    """The LEFT JOIN finds no backupmediafamily row (history trimmed by hand): no files."""
    (record,) = msdb.backup_records(
        [backupset_row(physical_device_name=None, family_sequence_number=None, device_type=None)]
    )
    assert record.media is not None
    assert record.media.files == ()
    assert record.media.media_set_id == "7"


def test_history_folds_stripes_before_filtering() -> None:
    server = FakeServer()
    early = backupset_row(backup_set_id=1, backup_finish_date=datetime(2024, 3, 1, 9, 59))
    late = backupset_row(
        backup_set_id=2, type="D", backup_finish_date=datetime(2024, 3, 1, 10, 1), time_zone=0
    )
    rows = [
        {**early, "time_zone": 0},
        *family_rows(late, ("a", 1, 0, 7), ("b", 2, 0, 7), ("c", 3, 0, 7)),
    ]
    server.on("msdb.dbo.backupset", rows)
    server.on("SYSUTCDATETIME", [{"offset_minutes": 0}])
    got = msdb.history(server.connect().cursor(), "Sales", datetime(2024, 3, 1, 10, 0, tzinfo=UTC))
    (record,) = got
    assert record.backup_set_id == "2"
    assert record.media is not None
    assert [f.name for f in record.media.files] == ["a", "b", "c"]
    sql = server.executed[0][0]
    assert "LEFT JOIN msdb.dbo.backupmediafamily" in sql
    assert "bs.first_recovery_fork_guid" in sql
    assert "bs.fork_point_lsn" in sql
    assert "CONVERT(nvarchar(36), bs.backup_set_uuid)" in sql
    assert "CONVERT(nvarchar(36), bs.differential_base_guid)" in sql


def test_backup_by_device_returns_the_whole_set() -> None:
    server = FakeServer()
    base = backupset_row(type="D", backup_set_id=9)
    server.on("msdb.dbo.backupset", family_rows(base, ("dev-1", 1, 0, 7), ("dev-2", 2, 0, 7)))
    server.on("SYSUTCDATETIME", [{"offset_minutes": 0}])
    record = msdb.backup_by_device(server.connect().cursor(), "dev-2")
    assert record is not None
    assert record.media is not None
    assert record.media.stripes == 2
    sql, params = server.executed[0]
    assert "d.physical_device_name = ?" in sql
    assert params == ("dev-2",)


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


def test_a_differential_names_its_base_full_across_recovery_forks() -> None:
    """After an in-place restore the new fork reuses LSNs: a full of each fork has the
    checkpoint LSN the differential names; ``differential_base_guid`` says which."""
    checkpoint = Decimal("35000000010000037")
    old_fork = backupset_row(
        type="D",
        backup_set_id=70,
        checkpoint_lsn=checkpoint,
        backup_set_uuid="AAAA0000-0000-4000-8000-000000000070",
        first_recovery_fork_guid="A1B2C3D4-0000-4000-8000-00000000000A",
        last_recovery_fork_guid="A1B2C3D4-0000-4000-8000-00000000000A",
        backup_finish_date=datetime(2024, 3, 1, 10, 0),
    )
    new_fork = backupset_row(
        type="D",
        backup_set_id=80,
        checkpoint_lsn=checkpoint,
        backup_set_uuid="BBBB0000-0000-4000-8000-000000000080",
        first_recovery_fork_guid="B1B2C3D4-0000-4000-8000-00000000000B",
        last_recovery_fork_guid="B1B2C3D4-0000-4000-8000-00000000000B",
        backup_finish_date=datetime(2024, 3, 1, 11, 0),
    )
    diff = backupset_row(
        type="I",
        backup_set_id=90,
        differential_base_lsn=checkpoint,
        backup_set_uuid="CCCC0000-0000-4000-8000-000000000090",
        differential_base_guid="AAAA0000-0000-4000-8000-000000000070",
        first_recovery_fork_guid="C1B2C3D4-0000-4000-8000-00000000000C",
        last_recovery_fork_guid="C1B2C3D4-0000-4000-8000-00000000000C",
        backup_finish_date=datetime(2024, 3, 1, 12, 0),
    )
    full_a, full_b, differential = msdb.backup_records([old_fork, new_fork, diff])
    assert full_a.backup_set_uuid == "aaaa0000-0000-4000-8000-000000000070"
    assert full_a.differential_base_guid == ""  # NULL for a full
    assert differential.backup_set_uuid == "cccc0000-0000-4000-8000-000000000090"
    assert differential.differential_base_guid == full_a.backup_set_uuid
    assert chain.differential_base(differential, [full_a, full_b]) is full_a
    # a multi-based differential (or an older msdb) has no differential_base_guid
    unnamed = msdb.backup_record({**diff, "differential_base_guid": None})
    assert unnamed.differential_base_guid == ""
    missing = {
        k: v for k, v in diff.items() if k not in ("backup_set_uuid", "differential_base_guid")
    }
    assert msdb.backup_record(missing).backup_set_uuid == ""


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
                "recovery_fork_guid": "C0FFEE00-0000-4000-8000-000000000001",
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
                "recovery_fork_guid": None,
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
    assert sales.recovery_fork_guid == "c0ffee00-0000-4000-8000-000000000001"
    assert master.recovery_fork_guid == ""
    sql = server.executed[0][0]
    assert "sys.database_recovery_status" in sql
    assert "rs.recovery_fork_guid" in sql
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
