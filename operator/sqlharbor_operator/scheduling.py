"""When is each backup type of a database due?  Pure: policy + status + now → answer.

Cron schedules are evaluated with ``croniter`` in the policy's time zone; the log interval is
a Go-style duration.  Called by the controller's tick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from sqlharbor.api import BackupPolicySpec, ProtectedDatabaseStatus
from sqlharbor.domain.backupset import BackupType, RecoveryModel
from sqlharbor.errors import InvalidPolicy

_DURATION = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """Go-style durations as the CRD pattern admits them ("30s", "1h30m")."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def validate_policy(spec: BackupPolicySpec) -> None:
    _zone(spec.time_zone)
    for name, schedule in (
        ("full", spec.schedules.full),
        ("differential", spec.schedules.differential),
    ):
        if schedule is not None and not _cron_valid(schedule.schedule):
            raise InvalidPolicy(
                f"spec.schedules.{name}.schedule {schedule.schedule!r} is not a valid cron "
                "expression (minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-6)"
            )


# The controller asks these for every database on every tick; croniter parses the
# expression anew on each call (most of a 10,000-database tick in cProfile), while the
# answers only change when a policy or a database's last backup does.
@lru_cache(maxsize=1024)
def _cron_valid(expression: str) -> bool:
    return bool(croniter.is_valid(expression))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidPolicy(f"spec.timeZone {name!r} is not a known IANA time zone") from exc


@lru_cache(maxsize=65536)
def next_cron(expression: str, after: datetime, zone: str) -> datetime:
    """The first time ``expression`` fires after ``after``, in ``zone`` (cached: a
    database's answer is asked every tick until its next backup moves ``after``)."""
    local = after.astimezone(_zone(zone))
    result: datetime = croniter(expression, local).get_next(datetime)
    return result


#: A log backup may be taken this share of the interval early, in the job of a log backup
#: of the same instance that is due now.
LOG_ALIGNMENT_SHARE = 0.5


def log_alignment(spec: BackupPolicySpec) -> timedelta:
    """How early a log backup may be taken to share a job with another database's.

    Databases protected at different moments would otherwise each get a job of their own
    per interval (N jobs, N times the API writes); taking a log backup up to half an
    interval early puts the databases of an instance into step after one round, and never
    backs a database up more often than every half interval.  Zero without log backups.
    """
    if spec.schedules.log is None:
        return timedelta(0)
    return parse_duration(spec.schedules.log.interval) * LOG_ALIGNMENT_SHARE


@dataclass(frozen=True)
class Due:
    """The backup type the schedule asks for now (before auto-heal), and when the next
    thing is due if nothing is due now."""

    backup_type: BackupType | None
    next_time: datetime


def due(
    spec: BackupPolicySpec,
    status: ProtectedDatabaseStatus | None,
    recovery_model: RecoveryModel | None,
    now: datetime,
) -> Due:
    last_full = status.last_full.time if status and status.last_full else None
    if last_full is None:
        return Due(BackupType.FULL, now)
    tz = spec.time_zone
    full_at = next_cron(spec.schedules.full.schedule, last_full, tz)
    if full_at <= now:
        return Due(BackupType.FULL, now)
    candidates = [full_at]
    if spec.schedules.differential is not None:
        last_diff = status.last_differential.time if status and status.last_differential else None
        base = max(last_full, last_diff) if last_diff else last_full
        diff_at = next_cron(spec.schedules.differential.schedule, base, tz)
        if diff_at <= now:
            return Due(BackupType.DIFFERENTIAL, now)
        candidates.append(diff_at)
    if spec.schedules.log is not None and recovery_model is not RecoveryModel.SIMPLE:
        last_log = status.last_log.time if status and status.last_log else None
        anchor = max(last_full, last_log) if last_log else last_full
        log_at = anchor + parse_duration(spec.schedules.log.interval)
        if log_at <= now:
            return Due(BackupType.LOG, now)
        candidates.append(log_at)
    return Due(None, min(candidates))
