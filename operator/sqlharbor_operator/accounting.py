"""Accounting: fold each finished BackupJob's per-database results into ``ProtectedDatabase``
status, once (``Accountant``, called by the tick), with failures backed off and announced
as Events.

The folds themselves (``apply_success``, ``apply_failure``) are pure and idempotent:
applying the same result twice (after an operator restart re-lists finished jobs) changes
nothing, because a result is applied only when it is newer than what the status records.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlharbor.api import (
    BackupJob,
    ChainHealth,
    ChainState,
    DatabaseResult,
    ErrorInfo,
    JobPhase,
    LastBackup,
    ProtectedDatabaseStatus,
    RecoveryWindow,
)
from sqlharbor.domain.backupset import BackupType, RecoveryModel
from sqlharbor.errors import ErrorCode
from sqlharbor_operator import metrics
from sqlharbor_operator.logs import fields
from sqlharbor_operator.runtime import Runtime

#: Failure codes after which only a full can continue protection.
FULL_REQUIRED_CODES: dict[str, str] = {
    ErrorCode.SQL_LSN_VALIDATION_FAILURE: "LogChainBroken",
    ErrorCode.PARENT_FULL_BACKUP_MISSING: "NoFullBackup",
}
SIMPLE_CODE = ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE

log = logging.getLogger(__name__)


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def humanize_seconds(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _last(result: DatabaseResult, job: str) -> LastBackup:
    assert result.finish is not None
    assert result.recovery_point_id is not None
    return LastBackup(
        time=result.finish,
        recovery_point_id=result.recovery_point_id,
        job=job,
        first_lsn=result.first_lsn or "0",
        last_lsn=result.last_lsn or "0",
        checkpoint_lsn=result.checkpoint_lsn or "0",
        bytes_stored=result.bytes_stored or 0,
    )


def _newer(candidate: datetime | None, current: LastBackup | None) -> bool:
    return candidate is not None and (current is None or candidate > current.time)


def apply_success(
    status: ProtectedDatabaseStatus, result: DatabaseResult, job: str, copy_only: bool
) -> ProtectedDatabaseStatus:
    kind = result.backup_type
    s = status.model_copy(deep=True)
    chain = s.chain or ChainState()
    current = (
        {
            BackupType.FULL: s.last_full,
            BackupType.DIFFERENTIAL: s.last_differential,
            BackupType.LOG: s.last_log,
        }.get(kind)
        if kind
        else None
    )
    if kind is None or result.finish is None:
        return status
    if copy_only:
        # outside the chain: counted, never a differential base, never moves the window
        if s.last_backup_time is not None and result.finish <= s.last_backup_time:
            return status
        s.recovery_points = (s.recovery_points or 0) + 1
        s.last_backup_time = result.finish
        return s
    if not _newer(result.finish, current):
        return status
    last = _last(result, job)
    assert result.finish is not None
    window = s.recovery_window or RecoveryWindow()
    if kind is BackupType.FULL:
        starts_new_chain = chain.full_required is not None or window.earliest is None
        s.last_full = last
        chain.base_checkpoint_lsn = last.checkpoint_lsn
        if starts_new_chain:
            window.earliest = result.finish
            chain.last_lsn = None  # the next log starts a fresh chain after this full
        chain.full_required = None
        chain.full_required_message = None
    elif kind is BackupType.DIFFERENTIAL:
        s.last_differential = last
    else:
        s.last_log = last
        chain.last_lsn = last.last_lsn
    window.latest = max(filter(None, [window.latest, result.finish]))
    window.earliest_text = rfc3339(window.earliest) if window.earliest else None
    window.latest_text = rfc3339(window.latest)
    if result.database_guid and result.database_guid != chain.database_guid:
        chain.recovery_fork_guid = None  # another incarnation: its forks are its own
    chain.database_guid = result.database_guid or chain.database_guid
    chain.recovery_fork_guid = result.recovery_fork_guid or chain.recovery_fork_guid
    if result.recovery_model:
        chain.recovery_model = RecoveryModel(result.recovery_model)
    s.chain = chain
    s.recovery_window = window
    s.recovery_points = (s.recovery_points or 0) + 1
    s.last_backup_time = max(filter(None, [s.last_backup_time, result.finish]))
    s.consecutive_failures = 0
    s.last_error = None
    if chain.recovery_model is RecoveryModel.SIMPLE:
        s.log_chain = ChainHealth.NOT_APPLICABLE
    else:
        s.log_chain = ChainHealth.HEALTHY
    return s


def apply_failure(
    status: ProtectedDatabaseStatus, result: DatabaseResult, completed: datetime
) -> ProtectedDatabaseStatus:
    error = result.error or ErrorInfo(code=ErrorCode.UNKNOWN, message="the job failed")
    if status.last_error and status.last_error.time and status.last_error.time >= completed:
        return status
    if status.last_backup_time is not None and status.last_backup_time >= completed:
        return status  # a backup succeeded after it: folded again after a restart or takeover
    s = status.model_copy(deep=True)
    s.last_error = error.model_copy(update={"time": completed})
    s.consecutive_failures = (s.consecutive_failures or 0) + 1
    reason = FULL_REQUIRED_CODES.get(error.code)
    if reason:
        chain = s.chain or ChainState()
        chain.full_required = reason
        chain.full_required_message = error.message
        s.chain = chain
        s.log_chain = ChainHealth.BROKEN
    elif error.code == SIMPLE_CODE:
        s.log_chain = ChainHealth.NOT_APPLICABLE
    return s


def refresh_rpo(status: ProtectedDatabaseStatus, now: datetime) -> ProtectedDatabaseStatus:
    latest = status.recovery_window.latest if status.recovery_window else None
    if latest is None:
        return status
    seconds = max(0, int((now - latest).total_seconds()))
    s = status.model_copy()
    s.rpo_seconds = seconds
    s.rpo = humanize_seconds(seconds)
    return s


def accounted_only(job: BackupJob) -> BackupJob:
    """What the operator still needs of an accounted job (garbage collection: instance,
    type, phase, completion): its per-database lists go — a 20-database log job is 58 KB
    as a model, 20 KB without them, and 3,000 of them are kept at 10,000 databases."""
    assert job.status is not None
    return job.model_copy(
        update={
            "spec": job.spec.model_copy(update={"databases": []}),
            "status": job.status.model_copy(update={"databases": []}),
        }
    )


class Accountant:
    """Folds every finished job into status exactly once (``State.accounted``), then keeps
    only what garbage collection reads of it (``accounted_only``)."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def tick(self) -> None:
        state = self._rt.state
        for (ns, name), job in list(state.jobs.items()):
            status = job.status
            uid = job.metadata.uid or name
            if status is None or status.phase is None or not status.phase.finished:
                continue
            if uid not in state.accounted:
                await self._account(ns, name, job)
                state.accounted.add(uid)
            if job.spec.databases or status.databases:
                state.jobs[(ns, name)] = accounted_only(job)

    async def _account(self, ns: str, name: str, job: BackupJob) -> None:
        assert job.status is not None
        state, clock = self._rt.state, self._rt.clock
        completed = job.status.completion_time or clock()
        results = {r.name: r for r in job.status.databases}
        for entry in job.spec.databases:
            if not entry.protected_database:
                continue
            key = (ns, entry.protected_database)
            if state.busy.get(key) == name:
                del state.busy[key]
            pd = state.databases.get(key)
            if pd is None:
                continue
            current = pd.status or ProtectedDatabaseStatus()
            result = results.get(entry.name)
            if result is not None and result.phase is JobPhase.SUCCEEDED:
                new = apply_success(current, result, name, job.spec.copy_only)
                metrics.observe_result(ns, job.spec.type.value, succeeded=True)
                state.retry_after.pop(key, None)
            else:
                if result is None or result.error is None:
                    code = ErrorCode.JOB_FAILED
                    error = job.status.error or ErrorInfo(
                        code=code,
                        message=job.status.message or "failed",
                        remediation=code.remediation,
                    )
                    result = DatabaseResult(name=entry.name, phase=JobPhase.FAILED, error=error)
                new = apply_failure(current, result, completed)
                metrics.observe_result(ns, job.spec.type.value, succeeded=False)
                failures = new.consecutive_failures or 1
                state.retry_after[key] = clock() + timedelta(
                    seconds=min(300, 5 * 2 ** min(failures, 6))
                )
                if new is not current and result.error is not None:
                    log.warning(
                        "%s backup of %s/%s failed in BackupJob %s: %s: %s",
                        job.spec.type.value,
                        ns,
                        entry.protected_database,
                        name,
                        result.error.code,
                        result.error.message,
                        extra=fields(namespace=ns, job=name, database=entry.protected_database),
                    )
                    await self._rt.event(
                        pd,
                        "BackupFailed",
                        f"{job.spec.type.value} backup failed: "
                        f"{result.error.code}: {result.error.message}",
                        "Warning",
                    )
            state.set_status(key, new)
