"""The restore planner: which recovery points to restore, in order, and where to stop.

Pure, no I/O.  The operator calls ``plan_restore`` for a RestoreJob (and the CLI for a
dry run); the agent turns the plan into ``RestoreStep``s and a ``StopAt``.  The rules
are those of ``sqlharbor.domain.chain``: a full finished at or before the target (copy-only
fulls count), then that full's latest differential finished at or before the target,
then the logs from the one that covers the base's end to the first that ends at or
after the target, with the stop point on every log.  When several bases work, the plan
with the fewest steps, then the fewest bytes, wins.  Built on ``ChainIndex``, so a year
of one-minute logs plans in well under a second.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlharbor.domain.backupset import BackupRecord, BackupType, RecoveryPoint
from sqlharbor.domain.chain import (
    ChainIndex,
    Lineage,
    LsnRange,
    TimeWindow,
    lsn_ranges_of,
    restoring_logs,
    windows_of,
)
from sqlharbor.errors import ErrorCode, PlanError


@dataclass(frozen=True)
class AtTime:
    """A point in time (timezone-aware)."""

    time: datetime


@dataclass(frozen=True)
class AtLsn:
    """An exact LSN position (STOPATMARK 'lsn:<n>'): every transaction at or before it.

    ``database_guid`` picks the incarnation; None means the newest one in the history.
    ``recovery_fork`` picks the fork when the database was restored in place and the LSN
    exists on more than one; None means the only fork that holds it."""

    lsn: int
    database_guid: str | None = None
    recovery_fork: str | None = None


@dataclass(frozen=True)
class AtRecoveryPoint:
    """The end of one recovery point."""

    id: str


@dataclass(frozen=True)
class Latest:
    """The latest restorable moment."""


RestoreTarget = datetime | AtTime | AtLsn | AtRecoveryPoint | Latest


@dataclass(frozen=True)
class RestorePlan:
    """The recovery points to restore, in order, and the stop point for every log."""

    steps: tuple[RecoveryPoint, ...]
    stop_time: datetime | None
    stop_lsn: int | None
    database_guid: str
    #: where the restored database ends up: a time (time targets) or an LSN position
    target_time: datetime | None = None
    target_lsn: int | None = None

    @property
    def full(self) -> RecoveryPoint:
        return self.steps[0]

    @property
    def differential(self) -> RecoveryPoint | None:
        return next(
            (p for p in self.steps if p.record.backup_type is BackupType.DIFFERENTIAL), None
        )

    @property
    def logs(self) -> tuple[RecoveryPoint, ...]:
        return tuple(p for p in self.steps if p.record.backup_type is BackupType.LOG)

    @property
    def total_bytes(self) -> int:
        return sum(p.record.size_bytes for p in self.steps)


class RestorePlanner:
    """Plans over one history; the index is built once, so each further plan is a few
    bisections (keep one per database while its catalog does not change)."""

    def __init__(self, points: Sequence[RecoveryPoint]) -> None:
        self._points = points
        self._index = _index(points)

    def window(self) -> list[TimeWindow]:
        return windows_of(self._index)

    def lsn_ranges(self) -> list[LsnRange]:
        return lsn_ranges_of(self._index)

    def plan(self, target: RestoreTarget) -> RestorePlan:
        """The cheapest plan that restores exactly to ``target``; ``PlanError`` if none can."""
        index, points = self._index, self._points
        if isinstance(target, datetime):
            target = AtTime(target)
        if isinstance(target, AtTime):
            if target.time.tzinfo is None:
                raise ValueError("restore target times must be timezone-aware")
            return _at_time(index, target.time, None, stop=True)
        if isinstance(target, AtLsn):
            return _at_lsn(index, target, points)
        if isinstance(target, AtRecoveryPoint):
            return _at_point(index, target.id, points)
        windows = windows_of(index)
        if not windows:
            raise PlanError(
                "There are no restorable recovery points.", code=ErrorCode.NO_RECOVERY_POINTS
            )
        return _at_time(index, windows[-1].end, None, stop=False)


def recovery_window(points: Sequence[RecoveryPoint]) -> list[TimeWindow]:
    """The restorable time intervals, oldest first; a log gap splits them."""
    return RestorePlanner(points).window()


def recovery_lsn_ranges(points: Sequence[RecoveryPoint]) -> list[LsnRange]:
    """The restorable LSN positions per database incarnation."""
    return RestorePlanner(points).lsn_ranges()


def plan_restore(points: Sequence[RecoveryPoint], target: RestoreTarget) -> RestorePlan:
    """The cheapest plan that restores exactly to ``target``; ``PlanError`` if none can."""
    return RestorePlanner(points).plan(target)


def _index(points: Sequence[RecoveryPoint]) -> ChainIndex[RecoveryPoint]:
    return ChainIndex(points, _record_of)


_record_of: Callable[[RecoveryPoint], BackupRecord] = operator.attrgetter("record")


_Cost = tuple[int, int, float]


@dataclass(frozen=True)
class _Candidate:
    """A base and the run of logs after it, costed without building the plan."""

    cost: _Cost
    steps: tuple[RecoveryPoint, ...]
    base: BackupRecord
    lineage: Lineage
    logs: tuple[int, int] | None  # log indexes, inclusive (before leaving out empty logs)


def _candidate(
    index: ChainIndex[RecoveryPoint],
    steps: tuple[RecoveryPoint, ...],
    base: BackupRecord,
    logs: tuple[int, int] | None,
) -> _Candidate:
    size = sum(p.record.size_bytes for p in steps)
    count = len(steps)
    lineage = index.lineage(base)
    if logs is not None:
        run = index.logs[lineage]
        size += run.size_prefix[logs[1] + 1] - run.size_prefix[logs[0]]
        count += run.restoring(logs[0], logs[1], base.last_lsn)
    return _Candidate((count, size, -base.finish.timestamp()), steps, base, lineage, logs)


def _logs(index: ChainIndex[RecoveryPoint], best: _Candidate) -> tuple[RecoveryPoint, ...]:
    """The logs a plan applies: the candidate's run without the logs that restore nothing."""
    if best.logs is None:
        return ()
    items = index.logs[best.lineage].items[best.logs[0] : best.logs[1] + 1]
    return tuple(items[i] for i in restoring_logs([p.record for p in items], best.base))


def _single_fork(candidates: list[_Candidate], label: str) -> None:
    """Refuse a target that two forks of one database both reach (after an in-place
    restore they share times and LSNs) instead of guessing."""
    forks: dict[str, set[str]] = {}
    for c in candidates:
        forks.setdefault(c.lineage[0], set()).add(c.lineage[1])
    for guid, names in forks.items():
        if len(names) > 1:
            raise PlanError(
                f"The restore point {label} exists on {len(names)} recovery forks of database "
                f"{guid} (it was restored in place): {', '.join(sorted(names))}.",
                code=ErrorCode.RESTORE_POINT_AMBIGUOUS,
                remediation="Restore to an LSN and name its recovery fork "
                "(pointInTime.recoveryFork), or to a recovery point id.",
            )


def _best_at_time(
    index: ChainIndex[RecoveryPoint], when: datetime, lineage: Lineage | None
) -> _Candidate | None:
    candidates = []
    for steps, base in index.bases():
        if base.finish > when or (lineage is not None and index.lineage(base) != lineage):
            continue
        reach = index.reach(base)
        if when > reach.end:
            continue
        logs = None
        if when > base.finish and reach.first_log is not None and reach.last_log is not None:
            run = index.logs[index.lineage(base)]
            last = bisect.bisect_left(run.finishes, when, reach.first_log, reach.last_log + 1)
            logs = (reach.first_log, last)
        candidates.append(_candidate(index, steps, base, logs))
    _single_fork(candidates, when.isoformat())
    return min(candidates, key=lambda c: c.cost, default=None)


def _at_time(
    index: ChainIndex[RecoveryPoint], when: datetime, lineage: Lineage | None, *, stop: bool
) -> RestorePlan:
    best = _best_at_time(index, when, lineage)
    if best is None:
        spans = [(w.start, w.end) for w in windows_of(index)]
        raise _outside(spans, when, when.isoformat(), "time")
    logs = _logs(index, best)
    # The log that reaches the target restores something: stop in it.  If it is empty (the
    # database was idle), the state at the target is the end of the last log applied.
    target_log = None if best.logs is None else index.logs[best.lineage].items[best.logs[1]]
    stops = stop and bool(logs) and logs[-1] is target_log
    return RestorePlan(
        steps=(*best.steps, *logs),
        stop_time=when if stops else None,
        stop_lsn=None,
        database_guid=best.lineage[0],
        target_time=when,
    )


def _at_lsn(
    index: ChainIndex[RecoveryPoint], target: AtLsn, points: Sequence[RecoveryPoint]
) -> RestorePlan:
    guid = target.database_guid
    if guid is None:
        if not points:
            raise PlanError(
                "There are no restorable recovery points.", code=ErrorCode.NO_RECOVERY_POINTS
            )
        guid = max(points, key=lambda p: p.record.finish).record.database_guid
    fork = target.recovery_fork
    candidates = []
    for steps, base in index.bases():
        lineage = index.lineage(base)
        position = base.last_lsn - 1
        if lineage[0] != guid or (fork is not None and lineage[1] != fork):
            continue
        if position > target.lsn:
            continue
        reach = index.reach(base)
        if target.lsn > reach.end_position:
            continue
        logs = None
        if target.lsn > position and reach.first_log is not None and reach.last_log is not None:
            run = index.logs[lineage]
            last = bisect.bisect_right(run.last_lsns, target.lsn, reach.first_log, reach.last_log)
            logs = (reach.first_log, last)
        candidates.append(_candidate(index, steps, base, logs))
    _single_fork(candidates, f"LSN {target.lsn}")
    best = min(candidates, key=lambda c: c.cost, default=None)
    if best is None:
        spans = sorted(
            (r.first, r.last)
            for r in lsn_ranges_of(index)
            if r.database_guid == guid and (fork is None or r.recovery_fork == fork)
        )
        raise _outside(spans, target.lsn, f"LSN {target.lsn}", "LSN")
    applied = _logs(index, best)
    return RestorePlan(
        steps=(*best.steps, *applied),
        stop_time=None,
        stop_lsn=target.lsn if applied else None,
        database_guid=guid,
        target_lsn=target.lsn,
    )


def _at_point(
    index: ChainIndex[RecoveryPoint], point_id: str, points: Sequence[RecoveryPoint]
) -> RestorePlan:
    point = next((p for p in points if p.id == point_id), None)
    if point is None:
        raise PlanError(
            f"Recovery point '{point_id}' does not exist.", code=ErrorCode.RECOVERY_POINT_NOT_FOUND
        )
    record = point.record
    if record.backup_type is BackupType.LOG and record.is_copy_only:
        raise PlanError(
            f"Recovery point '{point_id}' is a copy-only log backup, outside the log chain; "
            "choose a point in time instead.",
            code=ErrorCode.RECOVERY_POINT_NOT_FOUND,
        )
    for steps, base in index.bases():
        if steps[-1] is point:
            return RestorePlan(steps, None, None, base.database_guid, target_time=base.finish)
    if record.backup_type is not BackupType.LOG:
        raise PlanError(
            f"Recovery point '{point_id}' is a differential whose full backup is missing.",
            code=ErrorCode.PARENT_FULL_BACKUP_MISSING,
        )
    lineage = index.lineage(record)
    best = _best_at_time(index, record.finish, lineage)
    reached = (
        ()
        if best is None or best.logs is None
        else (index.logs[lineage].items[best.logs[0] : best.logs[1] + 1])
    )
    if not any(p is point for p in reached):
        raise PlanError(
            f"Recovery point '{point_id}' cannot be reached.",
            code=ErrorCode.RESTORE_POINT_IN_LOG_GAP,
        )
    return _at_time(index, record.finish, lineage, stop=False)


_V = TypeVar("_V", datetime, int)


def _outside(spans: Sequence[tuple[_V, _V]], target: _V, label: str, unit: str) -> PlanError:
    """The error for an unreachable target, naming the nearest restorable points."""
    if not spans:
        return PlanError(
            "There are no restorable recovery points.", code=ErrorCode.NO_RECOVERY_POINTS
        )
    starts = [start for start, _ in spans]
    i = bisect.bisect_right(starts, target)
    before = spans[i - 1][1] if i > 0 else None
    after = spans[i][0] if i < len(spans) else None
    if before is None or after is None:
        return PlanError(
            f"The restore point {label} is outside the recovery window "
            f"({_show(spans[0][0])} .. {_show(spans[-1][1])}); the nearest restorable "
            f"{unit} is {_show(after if before is None else before)}.",
            code=ErrorCode.RESTORE_POINT_OUTSIDE_WINDOW,
        )
    return PlanError(
        f"The restore point {label} falls in a gap of the log chain: the nearest restorable "
        f"{unit}s are {_show(before)} (before) and {_show(after)} (after).",
        code=ErrorCode.RESTORE_POINT_IN_LOG_GAP,
        remediation="Choose a point on either side of the gap; a full backup after a chain "
        "break starts a new window.",
    )


def _show(value: datetime | int | None) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return f"LSN {value}"
