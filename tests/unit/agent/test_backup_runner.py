"""The agent's backup runner with the simulated engine and in-memory vault writers: results,
chain checks before a backup, and a backup that was taken but could not be stored."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlharbor_agent.engines.simulated import open_simulated_engine
from sqlharbor_agent.engines.simulated.engine import SimulatedEngine
from sqlharbor_agent.engines.simulated.transactions import Operation
from sqlharbor_agent.jobs.backup import BackupContext, run_backup_job
from sqlharbor_agent.jobs.reporter import JobReporter

from sqlharbor.api import BackupJob, JobPhase
from sqlharbor.domain.backupset import BackupRecord, BackupType, RecoveryModel
from sqlharbor.errors import ChainError, TemporaryError


@dataclass
class StoredIdentity:
    recovery_point_id: str


@dataclass
class StoredData:
    raw_size: int
    stored_size: int


@dataclass
class Stored:
    """The parts of a vault ``Manifest`` the backup runner reads."""

    identity: StoredIdentity
    data: StoredData


class MemoryWriter:
    def __init__(self, fail_commit: bool = False) -> None:
        self.data = bytearray()
        self.fail_commit = fail_commit
        self.aborted = False

    def write(self, data: bytes | memoryview) -> int:
        self.data += data
        return len(data)

    def commit(self, record: BackupRecord) -> Stored:
        if self.fail_commit:
            raise TemporaryError("stage block: cannot reach the blob service")
        return Stored(
            StoredIdentity(f"rp-{record.last_lsn}"),
            StoredData(len(self.data), len(self.data) // 2),
        )

    def abort(self) -> None:
        self.aborted = True


@pytest.fixture
def engine(tmp_path: Path) -> SimulatedEngine:
    e = open_simulated_engine(tmp_path, "vm1")
    e.create_database("sales", RecoveryModel.FULL)
    e.commit("sales", [Operation(1, b"x" * 100)])
    return e


def _job(kind: BackupType, **db: str) -> BackupJob:
    return BackupJob.model_validate(
        {
            "kind": "BackupJob",
            "metadata": {"name": "j", "namespace": "ns"},
            "spec": {
                "instanceRef": {"name": "i"},
                "vaultRef": {"name": "v"},
                "type": kind.value,
                "databases": [{"name": "sales", **db}],
            },
        }
    )


def _run(engine: SimulatedEngine, job: BackupJob, writer: MemoryWriter) -> Any:
    writes: list[dict[str, Any]] = []
    reporter = JobReporter(writes.append, interval=0.0)
    opener: Callable[..., MemoryWriter] = lambda **_: writer  # noqa: E731
    ctx = BackupContext(engine=engine, open_writer=opener, slots=threading.Semaphore(2))
    ok = run_backup_job(ctx, job, reporter)
    return ok, reporter.results()[0]


def test_a_full_then_a_log_report_their_lsns(engine: SimulatedEngine) -> None:
    ok, full = _run(engine, _job(BackupType.FULL), MemoryWriter())
    assert ok
    assert full.phase is JobPhase.SUCCEEDED
    assert full.recovery_point_id == f"rp-{full.last_lsn}"
    engine.commit("sales", [Operation(2, b"y" * 100)])
    ok, log = _run(engine, _job(BackupType.LOG), MemoryWriter())
    assert ok
    assert log.backup_type is BackupType.LOG
    assert int(log.last_lsn) > int(full.last_lsn)


def test_a_log_after_another_tools_log_is_refused_before_it_truncates(
    engine: SimulatedEngine,
) -> None:
    _run(engine, _job(BackupType.FULL), MemoryWriter())
    ok, ours = _run(engine, _job(BackupType.LOG), MemoryWriter())
    engine.commit("sales", [Operation(3, b"z")])
    engine.out_of_band_backup("sales", BackupType.LOG)
    writer = MemoryWriter()
    ok, result = _run(engine, _job(BackupType.LOG, expectedLastLsn=ours.last_lsn), writer)
    assert not ok
    assert result.error.code == ChainError.code
    assert "another tool" in result.error.message
    assert writer.data == b"", "no backup was taken"


def test_a_log_taken_but_not_stored_is_reported_as_a_broken_chain(
    engine: SimulatedEngine,
) -> None:
    _run(engine, _job(BackupType.FULL), MemoryWriter())
    writer = MemoryWriter(fail_commit=True)
    ok, result = _run(engine, _job(BackupType.LOG), writer)
    assert not ok
    assert writer.aborted
    assert result.error.code == ChainError.code
    assert "could not be stored" in result.error.message
    assert "log was truncated" in result.error.message
    assert "cannot reach the blob service" in result.error.message


def test_a_differential_not_stored_is_an_ordinary_failure(engine: SimulatedEngine) -> None:
    _run(engine, _job(BackupType.FULL), MemoryWriter())
    ok, result = _run(engine, _job(BackupType.DIFFERENTIAL), MemoryWriter(fail_commit=True))
    assert not ok
    assert result.error.code == TemporaryError.code


def test_empty_logs_of_an_idle_database_do_not_look_like_another_tools(
    engine: SimulatedEngine,
) -> None:
    """Our own empty log (first_lsn == last_lsn == where our chain ends) and another tool's
    empty log take no log we lack: the next log continues our chain."""
    _run(engine, _job(BackupType.FULL), MemoryWriter())
    ok, ours = _run(engine, _job(BackupType.LOG), MemoryWriter())
    assert ok
    ok, empty = _run(engine, _job(BackupType.LOG, expectedLastLsn=ours.last_lsn), MemoryWriter())
    assert ok, empty.error
    assert empty.first_lsn == empty.last_lsn == ours.last_lsn
    theirs = engine.out_of_band_backup("sales", BackupType.LOG)
    assert theirs.is_empty_log
    engine.commit("sales", [Operation(4, b"w")])
    ok, log = _run(engine, _job(BackupType.LOG, expectedLastLsn=empty.last_lsn), MemoryWriter())
    assert ok, log.error
    assert log.first_lsn == ours.last_lsn
    assert int(log.last_lsn) > int(log.first_lsn)
