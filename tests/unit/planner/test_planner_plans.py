"""``sqlharbor.domain.planner`` on synthetic histories: choices, targets, refusals, speed."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from sqlharbor.domain import chain, planner
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import ErrorCode
from tests.builders.records import History


def test_point_in_time_uses_latest_base_and_covering_logs() -> None:
    h = History()
    full = h.full()
    h.work()
    log1 = h.log()
    for _ in range(3):
        h.work()
        h.log()
    h.work()
    diff = h.diff()
    h.work()
    log2 = h.log()
    h.work()
    log3 = h.log()
    target = log2.record.finish + timedelta(seconds=10)
    plan = planner.plan_restore(h.points, target)
    assert plan.steps == (full, diff, log2, log3)
    assert plan.stop_time == target
    assert plan.differential is diff
    assert plan.logs == (log2, log3)
    # exactly a base's end: no logs and no stop point
    plan = planner.plan_restore(h.points, diff.record.finish)
    assert plan.steps == (full, diff)
    assert plan.stop_time is None
    # between the full and the diff: the logs after the full
    plan = planner.plan_restore(h.points, log1.record.finish - timedelta(seconds=3))
    assert plan.steps == (full, log1)


def test_copy_only_full_is_a_restore_base_but_not_a_diff_base() -> None:
    h = History()
    full = h.full()
    h.work()
    h.log()
    h.work()
    copy = h.full(copy_only=True, size=10_000)
    h.work()
    log2 = h.log()
    h.work()
    diff = h.diff()
    plan = planner.plan_restore(h.points, copy.record.finish + timedelta(seconds=5))
    assert plan.steps == (copy, log2)
    plan = planner.plan_restore(h.points, diff.record.finish)
    assert plan.steps == (full, diff)


def test_prefers_fewest_steps_then_bytes() -> None:
    h = History()
    h.full(size=50_000)
    for _ in range(5):
        h.work()
        h.log()
    small = h.full(size=10_000)
    h.work()
    log = h.log()
    plan = planner.plan_restore(h.points, log.record.finish)
    assert plan.steps == (small, log)


def test_gap_splits_the_window_and_is_refused_with_nearest_times() -> None:
    h = History()
    h.full()
    h.work()
    before = h.log()
    h.work()
    h.foreign_log()
    h.work()
    h.log()  # does not continue `before`
    h.work()
    healed = h.full()
    h.work()
    h.log()
    windows = planner.recovery_window(h.points)
    assert len(windows) == 2
    assert windows[0].end == before.record.finish
    assert windows[1].start == healed.record.finish
    with pytest.raises(planner.PlanError) as err:
        planner.plan_restore(h.points, before.record.finish + timedelta(seconds=5))
    assert err.value.code == ErrorCode.RESTORE_POINT_IN_LOG_GAP
    assert before.record.finish.isoformat() in err.value.message
    assert healed.record.finish.isoformat() in err.value.message
    with pytest.raises(planner.PlanError) as err:
        planner.plan_restore(h.points, windows[0].start - timedelta(seconds=1))
    assert err.value.code == ErrorCode.RESTORE_POINT_OUTSIDE_WINDOW
    assert windows[0].start.isoformat() in err.value.message


def test_lsn_recovery_point_and_latest_targets() -> None:
    h = History()
    full = h.full()
    h.work()
    log1 = h.log()
    h.work()
    log2 = h.log()
    plan = planner.plan_restore(h.points, planner.AtLsn(log1.record.last_lsn + 1))
    assert plan.steps == (full, log1, log2)
    assert plan.stop_lsn == log1.record.last_lsn + 1
    plan = planner.plan_restore(h.points, planner.AtLsn(full.record.last_lsn - 1))
    assert plan.steps == (full,)
    assert plan.stop_lsn is None
    with pytest.raises(planner.PlanError):
        planner.plan_restore(h.points, planner.AtLsn(log2.record.last_lsn))
    plan = planner.plan_restore(h.points, planner.AtRecoveryPoint(log1.id))
    assert plan.steps == (full, log1)
    assert plan.stop_time is None
    plan = planner.plan_restore(h.points, planner.Latest())
    assert plan.steps == (full, log1, log2)
    assert plan.target_time == log2.record.finish
    with pytest.raises(planner.PlanError) as err:
        planner.plan_restore(h.points, planner.AtRecoveryPoint("nope"))
    assert err.value.code == ErrorCode.RECOVERY_POINT_NOT_FOUND
    with pytest.raises(planner.PlanError) as err:
        planner.plan_restore([], planner.Latest())


def _year() -> History:
    h = History()
    for day in range(365):
        h.full() if day % 7 == 0 else h.diff()
        for _ in range(1440):
            h.work(seconds=59, transactions=3)
            h.log()
    return h


def test_a_year_of_minute_logs_plans_correctly() -> None:
    """Correctness at full scale; how fast it plans is measured by `make bench` (catalog),
    side by side with a baseline, never by a timed unit test."""
    h = _year()
    assert sum(p.record.backup_type is BackupType.LOG for p in h.points) == 525_600
    start, end = h.points[0].record.finish, h.points[-1].record.finish
    target = start + (end - start) * 0.73
    plan = planner.plan_restore(h.points, target)
    assert plan.steps[0].record.backup_type is BackupType.FULL
    assert 1 < len(plan.logs) <= 1441
    assert plan.logs[-1].record.finish >= target > plan.logs[-2].record.finish
    shuffled = random.Random(1).sample(h.points, len(h.points))
    assert planner.plan_restore(shuffled, target) == plan
    reused = planner.RestorePlanner(shuffled)
    for fraction in (0.1, 0.3, 0.5, 0.9):
        again = reused.plan(start + (end - start) * fraction)
        assert again.logs[-1].record.finish >= start + (end - start) * fraction
    assert planner.recovery_window(shuffled) == [chain.TimeWindow(start, end)]
