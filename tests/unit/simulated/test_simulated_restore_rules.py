"""The simulated engine's RESTORE rules: order, LSN continuity, stop points, states."""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlharbor_agent.engines.base import RestoreOptions, RestoreStep, StopAt
from sqlharbor_agent.engines.simulated import Operation, SimulatedEngine, Workload

from sqlharbor.domain.backupset import BackupRequest, BackupType, DatabaseState
from sqlharbor.errors import EngineError, ErrorCode
from tests.builders.simulated import FakeClock, MemoryVault


def _work(engine: SimulatedEngine, clock: FakeClock, n: int = 10) -> None:
    workload = Workload(engine, ["sales"], seed=n + int(clock.now.timestamp()), row_size=128)
    for _ in range(n):
        workload.step()
        clock.tick(1)


@pytest.fixture
def history(engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault) -> MemoryVault:
    """full, log1, diff, log2, log3 with work in between."""
    _work(engine, clock)
    vault.backup(engine, "sales", BackupType.FULL)
    _work(engine, clock)
    vault.backup(engine, "sales", BackupType.LOG)
    _work(engine, clock)
    vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    _work(engine, clock)
    vault.backup(engine, "sales", BackupType.LOG)
    _work(engine, clock)
    vault.backup(engine, "sales", BackupType.LOG)
    return vault


def _restore(
    engine: SimulatedEngine,
    vault: MemoryVault,
    indexes: list[int],
    target: str = "copy",
    stop: StopAt | None = None,
    replace: bool = False,
) -> None:
    steps = [vault.step(vault.points[i]) for i in indexes]
    engine.restore(RestoreOptions(target, replace=replace), steps, stop)


def test_full_diff_logs_restore_with_a_new_guid(
    engine: SimulatedEngine, history: MemoryVault
) -> None:
    _restore(engine, history, [0, 2, 3, 4])
    restored = engine.database("copy")
    assert restored.state is DatabaseState.ONLINE
    assert restored.database_guid != engine.database("sales").database_guid
    last = history.points[4].record
    assert engine.rows("copy") == engine.rows_as_of("sales", time=last.finish)
    assert engine.rows("copy") == engine.rows_as_of("sales", lsn=last.last_lsn - 1)
    # the restored database needs a full before anything else
    with pytest.raises(EngineError) as err:
        engine.backup(BackupRequest("copy", BackupType.LOG), io.BytesIO())
    assert err.value.code == ErrorCode.PARENT_FULL_BACKUP_MISSING


@pytest.mark.parametrize(
    ("indexes", "fragment"),
    [
        ([1], "first backup restored must be a full"),
        ([0, 3], "too recent"),
        ([0, 1, 1], "too early"),
        ([0, 0], "only be the first"),
    ],
)
def test_wrong_order_is_refused(
    engine: SimulatedEngine, history: MemoryVault, indexes: list[int], fragment: str
) -> None:
    with pytest.raises(EngineError) as err:
        _restore(engine, history, indexes)
    assert err.value.code == ErrorCode.RESTORE_SEQUENCE_INVALID
    assert fragment in err.value.message
    if len(indexes) > 1:
        assert engine.database("copy").state is DatabaseState.RESTORING


def test_differential_of_another_full_is_refused(
    engine: SimulatedEngine, clock: FakeClock, history: MemoryVault
) -> None:
    history.backup(engine, "sales", BackupType.FULL)  # index 5
    _work(engine, clock)
    history.backup(engine, "sales", BackupType.DIFFERENTIAL)  # index 6, based on 5
    with pytest.raises(EngineError) as err:
        _restore(engine, history, [0, 6])
    assert "3136" in err.value.message
    assert engine.database("copy").state is DatabaseState.RESTORING


def test_existing_target_needs_replace(engine: SimulatedEngine, history: MemoryVault) -> None:
    before = engine.rows("sales")
    with pytest.raises(EngineError) as err:
        _restore(engine, history, [0], target="sales")
    assert err.value.code == ErrorCode.TARGET_EXISTS
    assert engine.rows("sales") == before
    assert engine.database("sales").state is DatabaseState.ONLINE
    old = engine.database("sales")
    expected = engine.rows_as_of("sales", time=history.points[0].record.finish)
    _restore(engine, history, [0], target="sales", replace=True)
    # over the database the backups came from: in place, same GUID, a new recovery fork
    restored = engine.database("sales")
    assert restored.database_guid == old.database_guid
    assert restored.recovery_fork_guid not in ("", old.recovery_fork_guid)
    assert engine.rows("sales") == expected
    # its history before the restore is still what it was then
    assert engine.rows_as_of("sales", time=history.points[0].record.finish) == expected


def test_replacing_another_database_gives_a_new_guid(
    engine: SimulatedEngine, history: MemoryVault
) -> None:
    other = engine.create_database("other")
    engine.commit("other", [Operation(1, b"theirs")])
    _restore(engine, history, [0], target="other", replace=True)
    restored = engine.database("other")
    assert restored.database_guid not in (
        other.database_guid,
        history.points[0].record.database_guid,
    )
    assert restored.recovery_fork_guid not in ("", other.recovery_fork_guid)
    assert engine.rows("other") == engine.rows_as_of("sales", time=history.points[0].record.finish)
    # the new database's journal starts at its recovery
    assert engine.rows_as_of("other", time=history.points[0].record.finish) == {}


def test_stop_points(engine: SimulatedEngine, history: MemoryVault) -> None:
    full, log1 = history.points[0].record, history.points[1].record
    middle = full.finish + (log1.finish - full.finish) / 2
    _restore(engine, history, [0, 1], stop=StopAt(time=middle))
    assert engine.rows("copy") == engine.rows_as_of("sales", time=middle)
    lsn = (full.last_lsn + log1.last_lsn) // 2
    _restore(engine, history, [0, 1], target="copy2", stop=StopAt(lsn=lsn))
    assert engine.rows("copy2") == engine.rows_as_of("sales", lsn=lsn)


def test_stop_outside_the_backups_leaves_restoring(
    engine: SimulatedEngine, history: MemoryVault
) -> None:
    full, log1 = history.points[0].record, history.points[1].record
    with pytest.raises(EngineError) as err:
        _restore(
            engine, history, [0, 1], stop=StopAt(time=log1.finish + (log1.finish - full.finish))
        )
    assert err.value.code == ErrorCode.RESTORE_STOP_POINT_OUTSIDE_BACKUPS
    assert engine.database("copy").state is DatabaseState.RESTORING
    with pytest.raises(EngineError) as err:
        _restore(engine, history, [0, 1], target="copy2", stop=StopAt(lsn=full.first_lsn - 5))
    assert "too early" in err.value.message


def test_damaged_stream_leaves_restoring(engine: SimulatedEngine, history: MemoryVault) -> None:
    point = history.points[1]
    damaged = bytearray(history.streams[point.id])
    damaged[len(damaged) // 2] ^= 0xFF
    steps = [history.step(history.points[0]), RestoreStep(point.record, io.BytesIO(bytes(damaged)))]
    with pytest.raises(EngineError) as err:
        engine.restore(RestoreOptions("copy"), steps)
    assert err.value.code == ErrorCode.BACKUP_STREAM_INVALID
    assert engine.database("copy").state is DatabaseState.RESTORING
    truncated = history.streams[history.points[0].id][:-40]
    with pytest.raises(EngineError) as err:
        engine.restore(
            RestoreOptions("copy3"), [RestoreStep(history.points[0].record, io.BytesIO(truncated))]
        )
    assert err.value.code == ErrorCode.BACKUP_STREAM_INVALID
    # a stream that belongs to another recovery point
    wrong = RestoreStep(history.points[0].record, io.BytesIO(history.streams[history.points[2].id]))
    with pytest.raises(EngineError) as err:
        engine.restore(RestoreOptions("copy4"), [wrong])
    assert err.value.code == ErrorCode.BACKUP_STREAM_DOES_NOT_MATCH_RECORD


def test_workload_thread_and_backups_run_together(
    engine: SimulatedEngine, vault: MemoryVault
) -> None:
    workload = Workload(engine, ["sales"], seed=3, rate=0, row_size=128)
    stop = threading.Event()
    thread = threading.Thread(target=workload.run, args=(stop,), kwargs={"limit": 400})
    thread.start()
    try:
        vault.backup(engine, "sales", BackupType.FULL)
        for _ in range(5):
            vault.backup(engine, "sales", BackupType.LOG)
    finally:
        thread.join(timeout=60)
        stop.set()
    vault.backup(engine, "sales", BackupType.LOG)
    engine.restore(RestoreOptions("copy"), [vault.step(p) for p in vault.points])
    assert engine.rows("copy") == engine.rows("sales")


def test_workload_in_another_process(tmp_path: Path) -> None:
    engine = SimulatedEngine(tmp_path, "VM1\\SQL01")
    engine.create_database("sales")
    engine.backup(BackupRequest("sales", BackupType.FULL), io.BytesIO())
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sqlharbor_agent.engines.simulated.workload",
            "--root",
            str(tmp_path),
            "--instance",
            "VM1\\SQL01",
            "--database",
            "sales",
            "--rate",
            "0",
            "--count",
            "300",
            "--row-size",
            "128",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        logs = []
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            logs.append(engine.backup(BackupRequest("sales", BackupType.LOG), io.BytesIO()))
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert b"committed 300 transactions" in out
    for previous, log in itertools.pairwise(logs):
        assert log.first_lsn == previous.last_lsn
    engine.close()
