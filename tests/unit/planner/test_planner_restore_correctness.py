"""End to end without Azure: a seeded workload, interleaved backups, then many restores
planned by ``sqlharbor.domain.planner`` and run by the simulated engine, each checked against
the engine's truth journal (``rows_as_of``)."""

from __future__ import annotations

import itertools
import os
import random
from datetime import timedelta
from pathlib import Path

import pytest
from sqlharbor_agent.engines.base import RestoreOptions, StopAt
from sqlharbor_agent.engines.simulated import SimulatedEngine, Workload, WorkloadShape

from sqlharbor.domain import autoheal, planner
from sqlharbor.domain.backupset import BackupRecord, BackupType, RecoveryModel
from sqlharbor.errors import EngineError, ErrorCode
from tests.builders.simulated import FakeClock, MemoryVault

DATABASES = {"sales": RecoveryModel.FULL, "inventory": RecoveryModel.FULL}
SEED = int(os.environ.get("SQLHARBOR_TEST_SEED", random.SystemRandom().randrange(1 << 30)))


class Protector:
    """What the operator and agent do for one database: schedule, auto-heal, chain checks."""

    def __init__(self, engine: SimulatedEngine, vault: MemoryVault, name: str) -> None:
        self.engine, self.vault, self.name = engine, vault, name
        self.full: BackupRecord | None = None
        self.expected_lsn: int | None = None
        self.error: str | None = None
        self.heals: list[str] = []

    def run(self, requested: BackupType, clock: FakeClock) -> None:
        info = self.engine.database(self.name)
        state = autoheal.BackupFacts(
            recovery_model=info.recovery_model,
            database_guid=info.database_guid,
            database_name=self.name,
            has_full=self.full is not None,
            last_full_finish=None if self.full is None else self.full.finish,
            last_full_checkpoint_lsn=None if self.full is None else self.full.checkpoint_lsn,
            last_error_code=self.error,
            recovery_model_at_last_backup=info.recovery_model,
            database_guid_at_last_backup=info.database_guid,
        )
        decision = autoheal.next_backup(requested, state, clock.now)
        if decision.backup_type is None:
            return
        if decision.is_heal:
            self.heals.append(decision.reason.value)
        record = self.vault.backup(self.engine, self.name, decision.backup_type)
        self.error = None
        if record.backup_type is BackupType.FULL:
            self.full = record
            self.expected_lsn = record.last_lsn
        elif record.backup_type is BackupType.DIFFERENTIAL:
            assert self.full is not None
            check = autoheal.check_differential_base(self.full.checkpoint_lsn, record)
            self.error = check.code
            self.expected_lsn = record.last_lsn
        else:
            check = autoheal.check_log_continuity(self.expected_lsn, record)
            self.error = check.code
            self.expected_lsn = record.last_lsn


def _build(
    tmp_path: Path, rng: random.Random
) -> tuple[SimulatedEngine, FakeClock, MemoryVault, dict[str, Protector]]:
    clock = FakeClock()
    engine = SimulatedEngine(tmp_path, "VM1\\SQL01", clock=clock)
    vault = MemoryVault()
    for name, model in DATABASES.items():
        engine.create_database(name, model)
    protectors = {name: Protector(engine, vault, name) for name in DATABASES}
    workload = Workload(
        engine,
        list(DATABASES),
        seed=rng.randrange(1 << 30),
        shape=WorkloadShape(max_rows=150, row_size=200),
    )
    actions = [
        ("log", 55),
        ("diff", 10),
        ("full", 6),
        ("copy_full", 5),
        ("copy_log", 5),
        ("foreign_log", 3),
        ("foreign_full", 2),
        ("quiet", 14),
    ]
    for _ in range(140):
        for _ in range(rng.randrange(0, 8)):
            workload.step()
            clock.tick(rng.uniform(0.001, 4.0))
        clock.tick(rng.uniform(0.0, 2.0))
        name = rng.choice(list(DATABASES))
        action = rng.choices([a for a, _ in actions], [w for _, w in actions])[0]
        if action == "log":
            protectors[name].run(BackupType.LOG, clock)
        elif action == "diff":
            protectors[name].run(BackupType.DIFFERENTIAL, clock)
        elif action == "full":
            protectors[name].run(BackupType.FULL, clock)
        elif action == "copy_full" and protectors[name].full is not None:
            vault.backup(engine, name, BackupType.FULL, copy_only=True)
        elif action == "copy_log" and protectors[name].full is not None:
            vault.backup(engine, name, BackupType.LOG, copy_only=True)
        elif action == "foreign_log" and protectors[name].full is not None:
            engine.out_of_band_backup(name, BackupType.LOG)
        elif action == "foreign_full":
            engine.out_of_band_backup(name, BackupType.FULL)
    for protector in protectors.values():  # end every history with a log
        protector.run(BackupType.LOG, clock)
    return engine, clock, vault, protectors


def _targets(rng: random.Random, points: list, count: int) -> list[object]:
    windows = planner.recovery_window(points)
    targets: list[object] = []
    for window in windows:
        targets += [window.start, window.end]
    bases = [
        p.record.finish
        for p in points
        if p.record.backup_type is not BackupType.LOG
        and any(p.record.finish in window for window in windows)  # not a diff of a foreign full
    ]
    targets += rng.sample(bases, min(6, len(bases)))
    while len(targets) < count:
        window = rng.choice(windows)
        span = (window.end - window.start) // timedelta(microseconds=1)
        moment = window.start + timedelta(microseconds=rng.randint(0, span))
        second = moment.replace(microsecond=0)
        targets.append(second if rng.random() < 0.5 and second >= window.start else moment)
    for lsn_range in planner.recovery_lsn_ranges(points)[-3:]:
        for _ in range(4):
            lsn = rng.randint(lsn_range.first, lsn_range.last)
            targets.append(planner.AtLsn(lsn, lsn_range.database_guid))
    return targets


def test_planned_restores_match_the_truth(tmp_path: Path) -> None:
    print(f"SQLHARBOR_TEST_SEED={SEED}")
    rng = random.Random(SEED)
    engine, _clock, vault, _protectors = _build(tmp_path, rng)
    restored = 0
    for name in DATABASES:
        points = vault.of(name)
        for n, target in enumerate(_targets(rng, points, 30)):
            plan = planner.plan_restore(points, target)
            stop = None
            if plan.stop_time is not None:
                stop = StopAt(time=plan.stop_time)
            elif plan.stop_lsn is not None:
                stop = StopAt(lsn=plan.stop_lsn)
            copy = f"{name}_r{n}"
            engine.restore(RestoreOptions(copy), [vault.step(p) for p in plan.steps], stop)
            if isinstance(target, planner.AtLsn):
                expected = engine.rows_as_of(name, lsn=target.lsn)
            else:
                expected = engine.rows_as_of(name, time=target)  # type: ignore[arg-type]
            assert engine.rows(copy) == expected, f"seed {SEED}, target {target}, plan {plan}"
            engine.drop_database(copy)
            restored += 1
    assert restored >= 60
    engine.close()


def test_unreachable_targets_are_refused(tmp_path: Path) -> None:
    print(f"SQLHARBOR_TEST_SEED={SEED}")
    rng = random.Random(SEED)
    engine, _clock, vault, _protectors = _build(tmp_path, rng)
    for name in DATABASES:
        points = vault.of(name)
        windows = planner.recovery_window(points)
        with pytest.raises(planner.PlanError) as err:
            planner.plan_restore(points, windows[0].start - timedelta(microseconds=1))
        assert err.value.code == ErrorCode.RESTORE_POINT_OUTSIDE_WINDOW
        assert windows[0].start.isoformat() in err.value.message
        with pytest.raises(planner.PlanError) as err:
            planner.plan_restore(points, windows[-1].end + timedelta(seconds=1))
        assert err.value.code == ErrorCode.RESTORE_POINT_OUTSIDE_WINDOW
        for before, after in itertools.pairwise(windows):
            middle = before.end + (after.start - before.end) / 2
            with pytest.raises(planner.PlanError) as err:
                planner.plan_restore(points, middle)
            assert err.value.code == ErrorCode.RESTORE_POINT_IN_LOG_GAP
            assert before.end.isoformat() in err.value.message
            assert after.start.isoformat() in err.value.message
        # the engine itself refuses to stop beyond what the steps hold
        plan = planner.plan_restore(points, windows[-1].end)
        with pytest.raises(EngineError):
            engine.restore(
                RestoreOptions(f"{name}_beyond"),
                [vault.step(p) for p in plan.steps],
                StopAt(time=windows[-1].end + timedelta(seconds=1)),
            )
    engine.close()
