"""Log backups of an idle database are empty (``first_lsn == last_lsn``), as SQL Server
writes them, and restores through them stay exact, with or without a stop point."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlharbor_agent.engines.base import StopAt
from sqlharbor_agent.engines.simulated import SimulatedEngine

from sqlharbor.domain import chain
from sqlharbor.domain.backupset import BackupRecord, BackupType, DatabaseState
from sqlharbor.errors import EngineError, ErrorCode
from tests.builders.simulated import FakeClock, MemoryVault, work


def _restore(
    engine: SimulatedEngine,
    vault: MemoryVault,
    records: list[BackupRecord],
    target: str,
    stop: StopAt | None = None,
) -> dict[int, bytes]:
    vault.restore(engine, records, target, stop=stop)
    return engine.rows(target)


def _middle(a: datetime, b: datetime) -> datetime:
    return a + (b - a) / 2


@pytest.fixture
def idle(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> tuple[BackupRecord, BackupRecord, list[BackupRecord], BackupRecord]:
    """full, log1, three empty logs while idle, then log2 after more work."""
    work(engine, clock, 6)
    full = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 6)
    log1 = vault.backup(engine, "sales", BackupType.LOG)
    empties = []
    for _ in range(3):
        clock.tick(30)
        empties.append(vault.backup(engine, "sales", BackupType.LOG))
    clock.tick(5)
    work(engine, clock, 6)
    log2 = vault.backup(engine, "sales", BackupType.LOG)
    return full, log1, empties, log2


def test_idle_database_gets_a_run_of_empty_logs(
    engine: SimulatedEngine,
    idle: tuple[BackupRecord, BackupRecord, list[BackupRecord], BackupRecord],
) -> None:
    full, log1, empties, log2 = idle
    assert not log1.is_empty_log
    for empty in empties:
        assert empty.is_empty_log
        assert empty.first_lsn == empty.last_lsn == log1.last_lsn
        assert empty.start <= empty.finish
    assert [e.finish for e in empties] == sorted({e.finish for e in empties})
    # the next real log shares the LSN with them
    assert log2.first_lsn == log1.last_lsn < log2.last_lsn
    for previous, log in zip([log1, *empties], [*empties, log2], strict=True):
        assert chain.log_follows_log(previous, log)
    assert chain.log_follows_base(log1, full)
    assert chain.find_gaps(engine.history("sales")) == []


def test_restore_through_empty_logs_is_exact(
    engine: SimulatedEngine,
    vault: MemoryVault,
    idle: tuple[BackupRecord, BackupRecord, list[BackupRecord], BackupRecord],
) -> None:
    full, log1, empties, log2 = idle
    restored = _restore(engine, vault, [full, log1, *empties, log2], "all")
    assert restored == engine.rows_as_of("sales", time=log2.finish) == engine.rows("sales")
    # ending with an empty log: the state at its end is the state at the last commit
    restored = _restore(engine, vault, [full, log1, *empties[:2]], "idle_end")
    assert restored == engine.rows_as_of("sales", time=empties[1].finish)
    assert restored == engine.rows_as_of("sales", time=log1.finish)


def test_stop_points_inside_empty_logs(
    engine: SimulatedEngine,
    vault: MemoryVault,
    idle: tuple[BackupRecord, BackupRecord, list[BackupRecord], BackupRecord],
) -> None:
    full, log1, empties, log2 = idle
    previous = log1
    for n, empty in enumerate(empties):
        for k, moment in enumerate((_middle(previous.finish, empty.finish), empty.finish)):
            sequence = [full, log1, *empties[: n + 1]]
            restored = _restore(engine, vault, sequence, f"t{n}_{k}", StopAt(time=moment))
            assert restored == engine.rows_as_of("sales", time=moment)
            assert engine.database(f"t{n}_{k}").state is DatabaseState.ONLINE
        previous = empty
    # a stop in the real log after the idle run, reached through the empty logs
    moment = _middle(empties[-1].finish, log2.finish)
    restored = _restore(engine, vault, [full, log1, *empties, log2], "late", StopAt(time=moment))
    assert restored == engine.rows_as_of("sales", time=moment)
    # an exact LSN at the end of log1, through the empty logs
    lsn = log1.last_lsn - 1
    restored = _restore(engine, vault, [full, log1, *empties], "by_lsn", StopAt(lsn=lsn))
    assert restored == engine.rows_as_of("sales", lsn=lsn)


def test_stop_after_the_last_empty_log_is_refused(
    engine: SimulatedEngine,
    vault: MemoryVault,
    idle: tuple[BackupRecord, BackupRecord, list[BackupRecord], BackupRecord],
) -> None:
    full, log1, empties, _ = idle
    beyond = empties[0].finish + timedelta(seconds=1)
    with pytest.raises(EngineError) as err:
        _restore(engine, vault, [full, log1, empties[0]], "beyond", StopAt(time=beyond))
    assert err.value.code == ErrorCode.RESTORE_STOP_POINT_OUTSIDE_BACKUPS


def test_empty_log_must_continue_the_sequence(
    engine: SimulatedEngine,
    vault: MemoryVault,
    idle: tuple[BackupRecord, BackupRecord, list[BackupRecord], BackupRecord],
) -> None:
    full, log1, empties, log2 = idle
    with pytest.raises(EngineError) as err:
        _restore(engine, vault, [full, empties[0]], "skipped_log1")
    assert err.value.code == ErrorCode.RESTORE_SEQUENCE_INVALID
    assert "too recent" in err.value.message
    with pytest.raises(EngineError) as err:
        _restore(engine, vault, [full, log1, log2, empties[0]], "after_log2")
    assert err.value.code == ErrorCode.RESTORE_SEQUENCE_INVALID
    assert "too early" in err.value.message


def test_log_right_after_a_differential_of_an_idle_database(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    """A differential's checkpoint is log activity: the next log is not empty; it ends
    where the differential ends, and the empty log after it continues from there."""
    work(engine, clock, 6)
    full = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 6)
    vault.backup(engine, "sales", BackupType.LOG)
    work(engine, clock, 6)
    diff = vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    clock.tick(10)
    log = vault.backup(engine, "sales", BackupType.LOG)
    clock.tick(10)
    empty = vault.backup(engine, "sales", BackupType.LOG)
    assert not log.is_empty_log
    assert log.last_lsn == diff.last_lsn
    assert chain.log_follows_base(log, diff)
    assert empty.is_empty_log
    assert empty.first_lsn == log.last_lsn
    restored = _restore(engine, vault, [full, diff, log, empty], "copy")
    assert restored == engine.rows("sales")
    moment = _middle(log.finish, empty.finish)
    restored = _restore(engine, vault, [full, diff, log, empty], "copy2", StopAt(time=moment))
    assert restored == engine.rows_as_of("sales", time=moment)
