"""SqlServerEngine end to end against a fake T-SQL connection and the stand-in libsqlvdi.so."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlharbor_agent.engines.base import FileRelocation, RestoreOptions, RestoreStep, StopAt
from sqlharbor_agent.engines.sqlserver.engine import SqlServerEngine
from sqlharbor_agent.engines.sqlserver.settings import (
    ConnectionSettings,
    SqlServerSettings,
    VdiTimeouts,
)
from sqlharbor_agent.engines.sqlserver.tsql import StreamGeometry
from sqlharbor_agent.engines.sqlserver.vdi.linux import LinuxVdi

from sqlharbor.domain.backupset import BackupRecord, BackupRequest, BackupType
from sqlharbor.errors import EngineError, ErrorCode
from tests.builders.records import backup_record

from .fakes import FakeServer
from .standin import StandinStatements, StandinVdi
from .test_msdb import backupset_row

MTS = 65536


def make_engine(standin: StandinVdi, server: FakeServer) -> SqlServerEngine:
    settings = SqlServerSettings(
        instance_name="vm1",
        connection=ConnectionSettings(host="vm1", user="agent", password="pw"),
        vdi_library=str(standin.path),
        geometry=StreamGeometry(max_transfer_size=MTS, buffer_count=2),
        timeouts=VdiTimeouts(configure_s=2, idle_s=2, finish_s=10, poll_s=0.05),
    )
    return SqlServerEngine(
        settings, connect=server.connect, vdi_backend=lambda: LinuxVdi(str(standin.path))
    )


def record(kind: BackupType, name: str = "Sales") -> BackupRecord:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    return backup_record(
        kind,
        name=name,
        guid="g",
        first_lsn=1,
        last_lsn=2,
        checkpoint_lsn=1,
        database_backup_lsn=1,
        differential_base_lsn=None,
        start=moment,
        finish=moment,
        size_bytes=0,
    )


def test_backup_streams_and_reads_its_record_by_device_name(standin: StandinVdi) -> None:
    statements = StandinStatements(standin)
    server = FakeServer(handlers=[statements])
    devices: list[Any] = []

    def by_device(params: tuple[Any, ...]) -> list[dict[str, Any]]:
        devices.append(params[0])
        return [backupset_row(type="D", time_zone=0, database_name="Sales")]

    server.on("backupmediafamily", by_device)
    server.on("SYSUTCDATETIME", [{"offset_minutes": 0}])
    data = os.urandom(3 * MTS + 9)
    statements.expect([data])
    sink = io.BytesIO()
    got = make_engine(standin, server).backup(
        BackupRequest("Sales", BackupType.FULL, copy_only=True), sink
    )
    assert sink.getvalue() == data
    assert got.backup_type is BackupType.FULL
    sql = statements.statements[0]
    assert sql.startswith("BACKUP DATABASE [Sales] TO VIRTUAL_DEVICE = N'")
    assert "COPY_ONLY" in sql
    assert f"N'{devices[0]}'" in sql


def test_restore_sequence_text_and_recovery(standin: StandinVdi) -> None:
    statements = StandinStatements(standin)
    server = FakeServer(handlers=[statements])
    server.on("CURRENT_TIMEZONE_ID", [{"offset_minutes": 60}])
    server.on("FROM sys.master_files", [
        {"logical_name": "Sales", "type_desc": "ROWS", "physical_name": "/d/Sales.mdf"},
        {"logical_name": "Sales_log", "type_desc": "LOG", "physical_name": "/d/Sales_log.ldf"},
    ])  # fmt: skip
    server.on("InstanceDefaultDataPath", [{"data_path": "/data/", "log_path": "/log/"}])
    server.on("SELECT state_desc", [{"state_desc": "ONLINE"}])
    blobs = [os.urandom(MTS + 1), os.urandom(10), os.urandom(20)]
    for blob in blobs:
        statements.expect([blob])
    steps = [
        RestoreStep(record(BackupType.FULL), io.BytesIO(blobs[0])),
        RestoreStep(record(BackupType.LOG), io.BytesIO(blobs[1])),
        RestoreStep(record(BackupType.LOG), io.BytesIO(blobs[2])),
    ]
    stop = StopAt(time=datetime(2024, 3, 1, 12, 0, 0, 5000, tzinfo=UTC))
    make_engine(standin, server).restore(
        RestoreOptions("Sales copy'1", relocation=FileRelocation(log_dir="/fast/")), steps, stop
    )
    full, log1, log2 = statements.statements
    assert full.startswith("RESTORE DATABASE [Sales copy'1] FROM VIRTUAL_DEVICE")
    assert "WITH NORECOVERY, MOVE N'Sales' TO N'/data/Sales_copy_1_Sales.mdf', " in full
    assert "MOVE N'Sales_log' TO N'/fast/Sales_copy_1_Sales_log.ldf'" in full
    assert "STOPAT" not in full
    assert "WITH NORECOVERY," in log1
    assert log1.endswith("STOPAT = '2024-03-01T13:00:00.003';")
    assert "WITH RECOVERY," in log2
    assert log2.endswith("STOPAT = '2024-03-01T13:00:00.003';")


def test_restore_left_restoring_is_an_error(standin: StandinVdi) -> None:
    statements = StandinStatements(standin)
    server = FakeServer(handlers=[statements])
    server.on("SELECT state_desc", [{"state_desc": "RESTORING"}])
    statements.expect([b"full"])
    with pytest.raises(EngineError) as info:
        make_engine(standin, server).restore(
            RestoreOptions("Sales", replace=True),
            [RestoreStep(record(BackupType.FULL), io.BytesIO(b"full"))],
            StopAt(lsn=Decimal(5).__int__()),
        )
    assert info.value.code == ErrorCode.RESTORE_STOP_POINT_OUTSIDE_BACKUPS
    assert "REPLACE" in statements.statements[0]
    assert "MOVE" not in statements.statements[0]


def test_relocation_without_known_files_is_refused(standin: StandinVdi) -> None:
    server = FakeServer()
    with pytest.raises(EngineError) as info:
        make_engine(standin, server).restore(
            RestoreOptions("Other", relocation=FileRelocation(data_dir="/x")),
            [RestoreStep(record(BackupType.FULL), io.BytesIO(b""))],
        )
    assert info.value.code == ErrorCode.RESTORE_FILE_LAYOUT_UNKNOWN


def test_the_agent_constructor_uses_the_config_section() -> None:
    from sqlharbor_agent.engines.sqlserver import open_sqlserver_engine

    engine = open_sqlserver_engine(
        {"connection": {"host": "vm1", "user": "agent", "password_file": "/run/secret"}}, "vm1-a"
    )
    assert engine.instance_name == "vm1-a"
