"""Chain-aware GFS retention: nothing a retained point needs is deleted, the point-in-time
window stays restorable, and old points do go."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sqlharbor.domain import planner, retention
from sqlharbor.domain.backupset import BackupType, RecoveryPoint
from sqlharbor.errors import PermanentError
from tests.builders.histories import RealHistory, accepts, random_history
from tests.builders.records import History

HOUR = 3600.0


def _history(steps: list[int], hours_between: float) -> History:
    """steps: 0 = full, 1 = differential, 2..9 = log, -1 = another tool's log."""
    h = History()
    h.full()
    for step in steps:
        h.work(seconds=hours_between * HOUR)
        if step == 0:
            h.full()
        elif step == 1:
            h.diff()
        elif step == -1:
            h.foreign_log()
        else:
            h.log()
    return h


def _restorable(points: list[RecoveryPoint], target: object) -> bool:
    try:
        planner.plan_restore(points, target)  # type: ignore[arg-type]
    except PermanentError:
        return False
    return True


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.sampled_from([0, 1, 1, 2, 2, 2, 2, -1]), min_size=5, max_size=60),
    hours=st.sampled_from([1.0, 6.0, 13.0, 30.0]),
    log_days=st.integers(1, 5),
    daily=st.one_of(st.none(), st.integers(1, 10)),
    weekly=st.one_of(st.none(), st.integers(1, 4)),
)
def test_kept_points_stay_restorable_and_the_window_is_covered(
    steps: list[int], hours: float, log_days: int, daily: int | None, weekly: int | None
) -> None:
    h = _history(steps, hours)
    now = h.now + timedelta(minutes=5)
    rules = retention.Rules(log_days=log_days, daily=daily, weekly=weekly)
    selection = retention.select(h.points, rules, now)
    kept = [p for p in h.points if p.id in selection.keep]
    assert len(kept) + len(selection.delete) == len(h.points)
    # every kept base can still be restored exactly (its full is kept too)
    for point in kept:
        if point.record.backup_type is not BackupType.LOG:
            assert _restorable(kept, planner.AtRecoveryPoint(point.id)), point
    # every second of the point-in-time window that was restorable still is
    start = now - timedelta(days=log_days)
    probes = [p.record.finish for p in h.points if p.record.finish >= start]
    probes += [t - timedelta(seconds=1) for t in probes]
    for t in probes:
        if t >= start and _restorable(h.points, t):
            assert _restorable(kept, t), t
    # the newest full is never deleted
    fulls = [p for p in h.points if p.record.is_differential_base]
    assert fulls[-1].id in selection.keep


def test_old_logs_and_unneeded_bases_are_deleted() -> None:
    h = History()
    for _day in range(30):
        h.full()
        for _ in range(24):
            h.work(seconds=HOUR - 2)
            h.log()
    now = h.now
    selection = retention.select(h.points, retention.Rules(log_days=3, daily=7), now)
    deleted_logs = [p for p in selection.delete if p.record.backup_type is BackupType.LOG]
    assert deleted_logs, "logs older than the window go"
    assert all(p.record.finish < now - timedelta(days=3) for p in deleted_logs)
    kept_fulls = [p for p in h.points if p.id in selection.keep and p.record.is_base]
    assert 7 <= len(kept_fulls) <= 8  # the daily ones (+ the window's base)
    assert len(selection.delete) > len(h.points) // 2


def _forks_sharing_a_checkpoint() -> dict[str, RecoveryPoint]:
    """F1, F2 on one fork; F1 restored in place and F2's work redone: G on the new fork has
    F2's checkpoint LSN (D_G is its differential); F2 restored in place: D_F2 is based on
    F2 although G finished later with the same checkpoint LSN."""
    h = RealHistory(random.Random(3))
    h.full()
    h.work()
    h.log()
    h.work()
    h.full()
    h.work()
    h.log()
    h.repeat_on_a_new_fork()
    names = ["F1", "L1", "F2", "L2", "G", "D_G", "D_F2"]
    assert len(h.points) == len(names)
    return dict(zip(names, h.points, strict=True))


def test_a_kept_differential_keeps_the_full_it_names() -> None:
    points = _forks_sharing_a_checkpoint()
    f2, g, d_f2 = points["F2"].record, points["G"].record, points["D_F2"].record
    assert f2.checkpoint_lsn == g.checkpoint_lsn == d_f2.differential_base_lsn
    assert g.finish > f2.finish
    assert d_f2.differential_base_guid == f2.backup_set_uuid
    ordered = list(points.values())
    assert retention._bases_of(ordered, {points["D_F2"].id}) == {points["F2"].id}  # not G
    # a day later, with one daily: D_F2 (the day's last), G (the newest full) and F2
    now = d_f2.finish + timedelta(days=3)
    selection = retention.select(ordered, retention.Rules(log_days=1, daily=1), now)
    assert selection.keep == {points[n].id for n in ("F2", "G", "D_F2")}
    kept = [p for p in ordered if p.id in selection.keep]
    plan = planner.plan_restore(kept, planner.AtRecoveryPoint(points["D_F2"].id))
    assert [p.record for p in plan.steps] == [f2, d_f2]
    assert accepts([p.record for p in plan.steps]) is None


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), log_days=st.integers(1, 3))
def test_real_shaped_histories_keep_the_window_and_drop_empty_logs_before_it(
    seed: int, log_days: int
) -> None:
    """Runs of empty logs, forks, copy-only fulls and logs during fulls: every second of
    the window that was restorable before pruning still is, and no empty log that
    finished before the window is kept."""
    points = random_history(seed, events=120)
    now = max(p.record.finish for p in points)
    span = now - min(p.record.finish for p in points)
    start = now - span / (log_days + 1)  # the window covers part of the history
    rules = retention.Rules(log_days=1)
    chosen = retention.select(points, rules, start + timedelta(days=1))
    kept = [p for p in points if p.id in chosen.keep]
    before = planner.recovery_window(points)
    for window in before:
        for moment in (window.start, window.end):
            if moment >= start:
                assert _restorable(kept, moment), moment
    empties = [p for p in kept if p.record.is_empty_log and p.record.finish < start]
    assert empties == []
