"""Chain-aware grandfather-father-son retention.  Pure: recovery points + rules + now →
what to keep and what may be deleted.  Called by the operator's retention pass.

What is kept:
- point-in-time coverage: every second from ``now - logDays`` to the latest restorable
  second stays restorable — the plan for the window's first second (its full, differential
  and logs) and every point finished at or after it; empty log backups (an idle
  database's) that finished before the window restore nothing and are not kept;
- daily: the last full or differential of each of the last ``daily.count`` days;
- weekly / monthly / yearly: the last full of each of the last N weeks / months / years;
- copy-only fulls for as long as daily (or, without daily, log) retention lasts;
- the newest full, always.
Then dependencies: a kept differential keeps the full it is based on (by its
``differential_base_guid`` when known: ``sqlharbor.domain.diffbase``).  Nothing a retained
recovery point needs is ever selected for deletion.  Days, weeks, months and years are
counted in the policy's time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlharbor.domain import planner
from sqlharbor.domain.backupset import BackupRecord, BackupType, RecoveryPoint
from sqlharbor.domain.diffbase import DifferentialBases
from sqlharbor.errors import PermanentError


@dataclass(frozen=True)
class Rules:
    log_days: int
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None
    yearly: int | None = None
    zone: str = "UTC"


@dataclass(frozen=True)
class Selection:
    keep: frozenset[str]
    delete: tuple[RecoveryPoint, ...]


def select(points: Sequence[RecoveryPoint], rules: Rules, now: datetime) -> Selection:
    if not points:
        return Selection(frozenset(), ())
    ordered = sorted(points, key=lambda p: (p.record.finish, p.id))
    keep: set[str] = set()
    keep |= _point_in_time(ordered, now - timedelta(days=rules.log_days))
    keep |= _gfs(ordered, rules, now)
    keep |= _copy_only(ordered, rules, now)
    fulls = [
        p for p in ordered if p.record.backup_type is BackupType.FULL and not p.record.is_copy_only
    ]
    if fulls:
        keep.add(fulls[-1].id)
    keep |= _bases_of(ordered, keep)
    return Selection(frozenset(keep), tuple(p for p in ordered if p.id not in keep))


def _point_in_time(ordered: list[RecoveryPoint], start: datetime) -> set[str]:
    keep = {p.id for p in ordered if p.record.finish >= start}
    try:
        plan = planner.plan_restore(ordered, start)
    except PermanentError:
        # the window starts before the first backup or inside a gap: keep from the latest
        # base before it (conservative: never cut a chain that reaches into the window)
        bases = [
            p
            for p in ordered
            if p.record.is_base and not p.record.is_copy_only and p.record.finish <= start
        ]
        if bases:
            keep |= {
                p.id
                for p in ordered
                if p.record.finish >= bases[-1].record.finish and not p.record.is_empty_log
            }
        return keep
    keep |= {p.id for p in plan.steps}
    return keep


def _period_keys(zone: ZoneInfo) -> dict[str, Callable[[datetime], tuple[int, ...]]]:
    def local(t: datetime) -> datetime:
        return t.astimezone(zone)

    return {
        "daily": lambda t: (local(t).year, local(t).month, local(t).day),
        "weekly": lambda t: tuple(local(t).isocalendar()[:2]),
        "monthly": lambda t: (local(t).year, local(t).month),
        "yearly": lambda t: (local(t).year,),
    }


def _gfs(ordered: list[RecoveryPoint], rules: Rules, now: datetime) -> set[str]:
    keys = _period_keys(ZoneInfo(rules.zone))
    keep: set[str] = set()
    counts = {
        "daily": rules.daily,
        "weekly": rules.weekly,
        "monthly": rules.monthly,
        "yearly": rules.yearly,
    }
    for period, count in counts.items():
        if not count:
            continue
        key = keys[period]
        candidates = [
            p
            for p in ordered
            if not p.record.is_copy_only
            and (
                p.record.backup_type is BackupType.FULL
                or (period == "daily" and p.record.backup_type is BackupType.DIFFERENTIAL)
            )
        ]
        last_of: dict[tuple[int, ...], RecoveryPoint] = {}
        for p in candidates:
            last_of[key(p.record.finish)] = p  # ordered: the last one wins
        recent = sorted(last_of)[-count:]
        # only periods that are still inside the count, measured back from now
        horizon = _horizon(period, count, now)
        keep |= {last_of[k].id for k in recent if last_of[k].record.finish >= horizon}
    return keep


def _horizon(period: str, count: int, now: datetime) -> datetime:
    days = {"daily": 1, "weekly": 7, "monthly": 31, "yearly": 366}[period]
    return now - timedelta(days=days * count)


def _copy_only(ordered: list[RecoveryPoint], rules: Rules, now: datetime) -> set[str]:
    days = rules.daily or rules.log_days
    horizon = now - timedelta(days=days)
    return {
        p.id
        for p in ordered
        if p.record.is_copy_only
        and p.record.backup_type is BackupType.FULL
        and p.record.finish >= horizon
    }


def _bases_of(ordered: list[RecoveryPoint], keep: set[str]) -> set[str]:
    """The fulls the kept differentials are based on (the pairing rule of ``diffbase``)."""
    fulls = DifferentialBases(ordered, _record)
    extra = set()
    for p in ordered:
        if p.id in keep and p.record.backup_type is BackupType.DIFFERENTIAL:
            base = fulls.base_of(p.record)
            if base is not None:
                extra.add(base.id)
    return extra


def _record(point: RecoveryPoint) -> BackupRecord:
    return point.record
