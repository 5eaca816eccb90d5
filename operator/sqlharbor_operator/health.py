"""Health, the ``Ready`` condition and the one-line message of a ProtectedDatabase.  Pure.

``Ready`` is True only when the database is Healthy: never while backups fail, while the
chain is broken and waiting for a full, or while log backups are overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlharbor.api import ChainHealth, Health, ProtectedDatabaseStatus
from sqlharbor.domain.backupset import RecoveryModel
from sqlharbor.errors import ErrorCode


@dataclass(frozen=True)
class Verdict:
    health: Health
    reason: str
    message: str

    @property
    def ready(self) -> bool:
        return self.health is Health.HEALTHY


def assess(
    status: ProtectedDatabaseStatus,
    *,
    now: datetime,
    suspended: bool,
    problem: tuple[str, str] | None,
    log_interval: timedelta | None,
    recovery_model: RecoveryModel | None,
) -> Verdict:
    """``problem`` is a (reason, message) that blocks protection (missing references, no
    agent); it wins over everything but suspension."""
    if suspended:
        return Verdict(Health.SUSPENDED, "Suspended", "spec.suspend is true: no backups run")
    if problem is not None:
        return Verdict(Health.UNHEALTHY, problem[0], problem[1])
    if status.last_error is not None and (status.consecutive_failures or 0) > 0:
        err = status.last_error
        return Verdict(
            Health.UNHEALTHY,
            err.code,
            f"{err.message}" + (f" — {err.remediation}" if err.remediation else ""),
        )
    if status.chain and status.chain.full_required:
        return Verdict(
            Health.WARNING,
            status.chain.full_required,
            f"auto-heal: next backup is a full ({status.chain.full_required_message})",
        )
    if status.last_full is None:
        return Verdict(Health.PENDING, "NoFullBackup", "waiting for the first full backup")
    if recovery_model is RecoveryModel.SIMPLE:
        return Verdict(
            Health.HEALTHY,
            "SimpleRecovery",
            "database uses SIMPLE recovery: log backups are skipped, fulls and "
            "differentials only (no point-in-time restore)",
        )
    if status.unreadable_points:
        return Verdict(
            Health.WARNING,
            ErrorCode.KEY_NOT_LISTED,
            f"{status.unreadable_points} recovery point(s) are unreadable and outside the "
            f"recovery window: wrapped with {', '.join(status.unreadable_keys)}, which the "
            "vault no longer lists (add it to spec.encryption.previousKeys)",
        )
    overdue = _log_overdue(status, now, log_interval)
    if overdue:
        return Verdict(Health.UNHEALTHY, "LogBackupOverdue", overdue)
    if status.log_chain is ChainHealth.BROKEN:
        return Verdict(Health.WARNING, "LogChainBroken", "log chain broken")
    return Verdict(Health.HEALTHY, "Protected", "backups are running on schedule")


def _log_overdue(
    status: ProtectedDatabaseStatus, now: datetime, interval: timedelta | None
) -> str | None:
    if interval is None or status.recovery_window is None or status.recovery_window.latest is None:
        return None
    age = now - status.recovery_window.latest
    allowed = interval * 3 + timedelta(seconds=60)
    if age > allowed:
        return (
            f"no log backup for {int(age.total_seconds())}s (interval "
            f"{int(interval.total_seconds())}s): check the agent and the BackupJobs"
        )
    return None
