"""Property tests: random backup histories on the simulated engine.

For any sequence of work, fulls, differentials, logs (copy-only or not), other tools'
backups and recovery-model switches: the engine refuses exactly what SQL Server refuses,
its records obey the chain rules, ``sqlharbor.domain.chain``'s windows are exactly what the
engine can restore (checked by restoring), and auto-heal asks for a full exactly when
our chain cannot continue.
"""

from __future__ import annotations

import random
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlharbor_agent.engines.base import RestoreOptions, StopAt
from sqlharbor_agent.engines.simulated import SimulatedEngine, Workload, WorkloadShape

from sqlharbor.domain import autoheal, chain, planner
from sqlharbor.domain.backupset import BackupType, RecoveryModel
from sqlharbor.errors import EngineError, ErrorCode
from tests.builders.simulated import FakeClock, MemoryVault

ACTIONS = st.lists(
    st.sampled_from(
        [
            "work",
            "work",
            "full",
            "diff",
            "log",
            "log",
            "log",
            "copy_full",
            "copy_log",
            "foreign_log",
            "foreign_full",
            "simple",
            "full_model",
        ]
    ),
    min_size=3,
    max_size=22,
)


class Model:
    """What SQL Server's rules predict, tracked independently of the engine."""

    def __init__(self) -> None:
        self.simple = False
        self.chain = False  # a log chain exists (a log backup is possible)
        self.diff_base = False

    def refuses(self, action: str) -> str | None:
        if action in ("log", "copy_log", "foreign_log"):
            if self.simple:
                return ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE
            if not self.chain:
                return ErrorCode.PARENT_FULL_BACKUP_MISSING
        if action == "diff" and not self.diff_base:
            return ErrorCode.PARENT_FULL_BACKUP_MISSING
        return None

    def after(self, action: str) -> None:
        if action in ("full", "foreign_full"):
            self.diff_base = True
        if action in ("full", "foreign_full", "diff") and not self.simple:
            self.chain = True
        if action == "simple":
            self.simple, self.chain = True, False
        if action == "full_model":
            self.simple = False


def _backup(engine: SimulatedEngine, vault: MemoryVault, action: str) -> tuple[object, str | None]:
    """Run one backup action; (its record or None, the engine's error code or None)."""
    kind = {
        "full": BackupType.FULL,
        "copy_full": BackupType.FULL,
        "foreign_full": BackupType.FULL,
        "diff": BackupType.DIFFERENTIAL,
    }.get(action, BackupType.LOG)
    try:
        if action.startswith("foreign"):
            return engine.out_of_band_backup("db", kind), None
        return vault.backup(engine, "db", kind, copy_only=action.startswith("copy")), None
    except EngineError as err:
        return None, err.code


def _run(
    engine: SimulatedEngine, vault: MemoryVault, clock: FakeClock, actions: list[str], seed: int
) -> None:
    model = Model()
    workload = Workload(engine, ["db"], seed=seed, shape=WorkloadShape(max_rows=40, row_size=64))
    expected_lsn: int | None = None
    has_full = False
    for action in actions:
        clock.tick(0.7)
        if action == "work":
            for _ in range(3):
                workload.step()
                clock.tick(0.3)
        elif action == "simple":
            engine.set_recovery_model("db", RecoveryModel.SIMPLE)
        elif action == "full_model":
            engine.set_recovery_model("db", RecoveryModel.FULL)
        else:
            record, code = _backup(engine, vault, action)
            assert code == model.refuses(action), (action, code)
            if code is not None:
                continue
            if record is not None and action in ("full", "diff"):
                has_full = has_full or action == "full"
                expected_lsn = record.last_lsn  # type: ignore[attr-defined]
            if record is not None and action == "log":
                check = autoheal.check_log_continuity(expected_lsn, record)  # type: ignore[arg-type]
                expected_lsn = record.last_lsn  # type: ignore[attr-defined]
                _check_heal(engine, clock, check, has_full)
        model.after(action)


def _check_heal(
    engine: SimulatedEngine, clock: FakeClock, check: autoheal.ChainCheck, has_full: bool
) -> None:
    """After a log backup: a gap (another tool's log) or no full of ours means a full next."""
    info = engine.database("db")
    state = autoheal.BackupFacts(
        recovery_model=info.recovery_model,
        database_guid=info.database_guid,
        has_full=has_full,
        last_full_finish=clock.now if has_full else None,
        last_error_code=check.code,
    )
    decision = autoheal.next_backup(BackupType.LOG, state, clock.now)
    if not has_full:
        assert decision.reason is autoheal.Reason.NO_FULL_BACKUP
    elif check.ok:
        assert decision.backup_type is BackupType.LOG
    else:
        assert decision.backup_type is BackupType.FULL
        assert decision.reason is autoheal.Reason.LOG_CHAIN_BROKEN


def _check_history(engine: SimulatedEngine) -> None:
    """msdb's view: every non-copy-only log continues the last one unless a base after a
    chain break (SIMPLE) restarted the chain."""
    previous = None
    restarted_by = None
    for record in engine.history("db"):
        if record.backup_type is not BackupType.LOG:
            if record.begins_log_chain:
                restarted_by = record
            continue
        if record.is_copy_only:
            continue
        if previous is not None and restarted_by is None:
            assert chain.log_follows_log(previous, record)
        elif restarted_by is not None:
            assert chain.log_follows_base(record, restarted_by)
        previous, restarted_by = record, None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS, seed=st.integers(0, 1 << 20))
def test_random_histories(actions: list[str], seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock()
        engine = SimulatedEngine(Path(tmp), "I", clock=clock)
        try:
            engine.create_database("db")
            vault = MemoryVault()
            _run(engine, vault, clock, actions, seed)
            _check_history(engine)
            _check_restorable(engine, vault, random.Random(seed))
        finally:
            engine.close()


def _check_restorable(engine: SimulatedEngine, vault: MemoryVault, rng: random.Random) -> None:
    points = vault.of("db")
    windows = planner.recovery_window(points)
    assert windows == chain.restorable_windows([p.record for p in points])
    if not windows:
        return
    with_gaps = len(windows) > 1
    for n in range(3):
        window = rng.choice(windows)
        moment = window.start + (window.end - window.start) * rng.random()
        plan = planner.plan_restore(points, moment)
        stop = StopAt(time=plan.stop_time) if plan.stop_time else None
        engine.restore(RestoreOptions(f"r{n}"), [vault.step(p) for p in plan.steps], stop)
        assert engine.rows(f"r{n}") == engine.rows_as_of("db", time=moment)
    outside = windows[0].start - timedelta(microseconds=1)
    with pytest.raises(planner.PlanError) as err:
        planner.plan_restore(points, outside)
    assert err.value.code == ErrorCode.RESTORE_POINT_OUTSIDE_WINDOW
    if with_gaps:
        middle = windows[0].end + (windows[1].start - windows[0].end) / 2
        with pytest.raises(planner.PlanError) as err:
            planner.plan_restore(points, middle)
        assert err.value.code == ErrorCode.RESTORE_POINT_IN_LOG_GAP
