"""Recovery forks: a restore over the database the backups came from keeps its GUID and
starts a new fork; the first log backup after it spans the fork point; RESTORE follows
the fork and refuses a log on another recovery path."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from sqlharbor_agent.engines.base import StopAt
from sqlharbor_agent.engines.simulated import SimulatedEngine

from sqlharbor.domain import chain, planner
from sqlharbor.domain.backupset import BackupRequest, BackupType, DatabaseState
from sqlharbor.errors import EngineError, ErrorCode
from tests.builders.simulated import FakeClock, MemoryVault, work


def test_every_backup_is_on_the_current_fork(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    fork = engine.database("sales").recovery_fork_guid
    assert fork
    work(engine, clock, 3)
    vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 3)
    vault.backup(engine, "sales", BackupType.LOG)
    vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    engine.out_of_band_backup("sales", BackupType.LOG, copy_only=True)
    for record in engine.history("sales"):
        assert record.first_recovery_fork_guid == record.last_recovery_fork_guid == fork
        assert record.fork_point_lsn is None
        assert not record.spans_fork
    other = engine.create_database("other")
    assert other.recovery_fork_guid not in ("", fork)


def test_in_place_restore_starts_a_new_fork(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    work(engine, clock, 4)
    full = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 4)
    log1 = vault.backup(engine, "sales", BackupType.LOG)
    work(engine, clock, 4)
    log2 = vault.backup(engine, "sales", BackupType.LOG)
    work(engine, clock, 3)
    old_log3 = vault.backup(engine, "sales", BackupType.LOG)  # on the old fork, after log2
    before = engine.database("sales")
    clock.tick(60)

    vault.restore(engine, [full, log1, log2], "sales", replace=True)
    after = engine.database("sales")
    assert after.state is DatabaseState.ONLINE
    assert after.database_guid == before.database_guid
    assert after.recovery_fork_guid not in ("", before.recovery_fork_guid)
    assert engine.rows("sales") == engine.rows_as_of("sales", time=log2.finish)
    assert engine.rows("sales") == engine.rows_as_of("sales", lsn=log2.last_lsn - 1)

    # the log chain continues: the first log backup spans the fork point
    work(engine, clock, 10)
    new1 = vault.backup(engine, "sales", BackupType.LOG)
    assert new1.first_recovery_fork_guid == before.recovery_fork_guid
    assert new1.last_recovery_fork_guid == after.recovery_fork_guid
    assert new1.spans_fork
    assert new1.fork_point_lsn == new1.first_lsn == log2.last_lsn
    assert new1.last_lsn > old_log3.last_lsn  # LSNs alone would not tell the forks apart
    work(engine, clock, 2)
    new2 = vault.backup(engine, "sales", BackupType.LOG)
    assert new2.first_recovery_fork_guid == new2.last_recovery_fork_guid == after.recovery_fork_guid
    assert new2.first_lsn == new1.last_lsn
    # the restored full is the differential base
    diff = vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    assert diff.differential_base_lsn == full.checkpoint_lsn
    assert diff.recovery_fork == after.recovery_fork_guid

    # restores along the new fork are exact
    vault.restore(engine, [full, log1, log2, new1, new2], "r1")
    assert engine.rows("r1") == engine.rows_as_of("sales", time=new2.finish)
    vault.restore(engine, [full, diff], "r2")
    assert engine.rows("r2") == engine.rows_as_of("sales", time=diff.finish) == engine.rows("sales")
    moment = new1.finish - timedelta(seconds=3.5)  # after the in-place restore
    vault.restore(engine, [full, log1, log2, new1], "r3", stop=StopAt(time=moment))
    assert engine.rows("r3") == engine.rows_as_of("sales", time=moment)
    # a stop point on the new fork before the restore happened: the new fork's history
    # then is the old fork's up to the fork point (the old fork held more by that time)
    idle = old_log3.finish + timedelta(seconds=1)
    vault.restore(engine, [full, log1, log2, new1], "r3b", stop=StopAt(time=idle))
    assert engine.rows("r3b") == engine.rows_as_of(
        "sales", time=idle, fork=after.recovery_fork_guid
    )
    assert engine.rows("r3b") == engine.rows_as_of("sales", time=log2.finish)
    assert engine.rows("r3b") != engine.rows_as_of("sales", time=idle)
    # ... and so is the old fork, as it was before the restore
    vault.restore(engine, [full, log1, log2, old_log3], "r4")
    assert engine.rows("r4") == engine.rows_as_of("sales", time=old_log3.finish)
    assert engine.rows("r4") != engine.rows("r1")

    # a sequence mixing the old fork's later log with the new fork's is refused
    with pytest.raises(EngineError) as err:
        vault.restore(engine, [full, log1, log2, old_log3, new1], "mixed")
    assert err.value.code == ErrorCode.RESTORE_SEQUENCE_INVALID
    assert "recovery path that is inconsistent with the database" in err.value.message
    assert engine.database("mixed").state is DatabaseState.RESTORING


def test_in_place_restore_of_a_full_alone(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    work(engine, clock, 4)
    full = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 4)
    old_log = vault.backup(engine, "sales", BackupType.LOG)
    old_fork = engine.database("sales").recovery_fork_guid
    vault.restore(engine, [full], "sales", replace=True)
    new_fork = engine.database("sales").recovery_fork_guid
    work(engine, clock, 6)
    new_log = vault.backup(engine, "sales", BackupType.LOG)
    assert (new_log.first_recovery_fork_guid, new_log.last_recovery_fork_guid) == (
        old_fork,
        new_fork,
    )
    assert new_log.fork_point_lsn == new_log.first_lsn == full.last_lsn
    # the full is on both paths: each log continues it into its own history
    vault.restore(engine, [full, new_log], "new")
    assert engine.rows("new") == engine.rows("sales")
    vault.restore(engine, [full, old_log], "old")
    assert engine.rows("old") == engine.rows_as_of("sales", time=old_log.finish)
    assert engine.rows("old") != engine.rows("new")
    # a full on the new fork, and the logs after it
    work(engine, clock, 2)
    new_full = vault.backup(engine, "sales", BackupType.FULL)
    assert new_full.first_recovery_fork_guid == new_full.last_recovery_fork_guid == new_fork
    work(engine, clock, 2)
    after = vault.backup(engine, "sales", BackupType.LOG)
    assert not after.spans_fork
    vault.restore(engine, [new_full, after], "latest")
    assert engine.rows("latest") == engine.rows("sales")


def test_in_place_restore_to_a_point_in_time_forks_there(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    work(engine, clock, 4)
    full = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 8)
    log1 = vault.backup(engine, "sales", BackupType.LOG)
    moment = full.finish + (log1.finish - full.finish) / 2
    expected = engine.rows_as_of("sales", time=moment)
    clock.tick(30)
    vault.restore(engine, [full, log1], "sales", replace=True, stop=StopAt(time=moment))
    assert engine.rows("sales") == expected
    work(engine, clock, 3)
    new_log = vault.backup(engine, "sales", BackupType.LOG)
    assert new_log.spans_fork
    assert full.last_lsn <= new_log.fork_point_lsn == new_log.first_lsn < log1.last_lsn  # type: ignore[operator]
    # log1 continues the old fork past the fork point: not on the new fork's path ...
    with pytest.raises(EngineError) as err:
        vault.restore(engine, [full, log1, new_log], "mixed")
    assert err.value.code == ErrorCode.RESTORE_SEQUENCE_INVALID
    assert "recovery path" in err.value.message
    # ... and the full alone does not reach the fork point
    with pytest.raises(EngineError) as err:
        vault.restore(engine, [full, new_log], "gap")
    assert "too recent" in err.value.message
    # the old fork to the same moment is what the new fork started from
    vault.restore(engine, [full, log1], "again", stop=StopAt(time=moment))
    assert engine.rows("again") == expected
    # a full on the new fork starts its own restorable history
    new_full = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 2)
    after = vault.backup(engine, "sales", BackupType.LOG)
    vault.restore(engine, [new_full, after], "new")
    assert engine.rows("new") == engine.rows("sales")
    assert engine.rows_as_of("sales", time=after.finish) == engine.rows("sales")
    # before the restore, the history is the old fork's
    assert engine.rows_as_of("sales", time=log1.finish) != expected


def test_a_backup_cannot_straddle_an_in_place_restore(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    """The GUID stays, but the fork changes: a backup that began before the restore fails."""
    work(engine, clock, 2)
    full = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 2)

    class RestoringSink:
        def write(self, data: bytes | memoryview, /) -> int:
            worker = threading.Thread(
                target=vault.restore, args=(engine, [full], "sales"), kwargs={"replace": True}
            )
            worker.start()
            worker.join()
            return len(data)

    with pytest.raises(EngineError) as err:
        engine.backup(BackupRequest("sales", BackupType.LOG), RestoringSink())
    assert err.value.code == ErrorCode.SQL_PO_DOES_NOT_EXIST
    assert "restored during the backup" in err.value.message
    assert engine.history("sales")[-1] == full


def test_a_differential_names_its_full_across_forks(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    """LSNs repeat across forks: a full of the old fork can have the checkpoint LSN of the
    new fork's full.  The differential's base is its backup set, not only that LSN."""
    work(engine, clock, 4)
    full = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 4)
    log1 = vault.backup(engine, "sales", BackupType.LOG)
    work(engine, clock, 3)
    old_full = vault.backup(engine, "sales", BackupType.FULL)
    vault.restore(engine, [full, log1], "sales", replace=True)
    work(engine, clock, 2)
    new_full = vault.backup(engine, "sales", BackupType.FULL)
    assert new_full.checkpoint_lsn == old_full.checkpoint_lsn
    assert new_full.recovery_fork != old_full.recovery_fork
    work(engine, clock, 3)
    diff = vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    assert diff.differential_base_lsn == old_full.checkpoint_lsn
    with pytest.raises(EngineError) as err:
        vault.restore(engine, [old_full, diff], "wrong_base")
    assert err.value.code == ErrorCode.RESTORE_SEQUENCE_INVALID
    assert "3136" in err.value.message
    vault.restore(engine, [new_full, diff], "right_base")
    assert engine.rows("right_base") == engine.rows("sales")
    # the history says so, and the chain rules follow it
    assert diff.differential_base_guid == new_full.backup_set_uuid != old_full.backup_set_uuid
    assert chain.differential_base(diff, engine.history("sales")) == new_full


def test_a_differential_after_restoring_an_old_forks_full_is_planned_on_it(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    """Three forks: the old fork's full and the second fork's full share a checkpoint LSN;
    after an in-place restore of the old fork's full, the differential is based on it
    although the other full finished later.  Only its ``differential_base_guid`` says so;
    the planner follows it and RESTORE accepts the plan."""
    work(engine, clock, 4)
    full = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 4)
    log1 = vault.backup(engine, "sales", BackupType.LOG)
    work(engine, clock, 3)
    old_full = vault.backup(engine, "sales", BackupType.FULL)
    vault.restore(engine, [full, log1], "sales", replace=True)
    work(engine, clock, 2)
    second_full = vault.backup(engine, "sales", BackupType.FULL)
    assert second_full.checkpoint_lsn == old_full.checkpoint_lsn
    vault.restore(engine, [old_full], "sales", replace=True)
    work(engine, clock, 3)
    diff = vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    assert diff.differential_base_guid == old_full.backup_set_uuid
    assert len({old_full.recovery_fork, second_full.recovery_fork, diff.recovery_fork}) == 3
    point = vault.point_of(diff)
    plan = planner.RestorePlanner(vault.points).plan(planner.AtRecoveryPoint(point.id))
    assert [p.record for p in plan.steps] == [old_full, diff]
    vault.restore(engine, [old_full, diff], "planned")
    assert engine.rows("planned") == engine.rows("sales")
    # without the uuid, the LSN matches both fulls and the later one would be taken
    unnamed = dataclasses.replace(diff, differential_base_guid="")
    assert chain.differential_base(unnamed, [old_full, second_full]) == second_full
    with pytest.raises(EngineError) as err:
        vault.restore(engine, [second_full, diff], "wrong_base")
    assert "3136" in err.value.message
