"""Typed builders for every job status body the operator or the agent writes (part of
``sqlharbor.api.contract``); each returns the merge patch of exactly the fields it sets."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlharbor.api._base import ErrorInfo, StatusModel
from sqlharbor.api.contract.sessions import AgentSession
from sqlharbor.api.jobs import (
    BackupJobStatus,
    DatabaseResult,
    JobPhase,
    RestoreJobStatus,
    RestorePhase,
)
from sqlharbor.api.jobs import RestorePlanStatus as PlanStatus
from sqlharbor.errors import ErrorCode


def patch(status: StatusModel) -> dict[str, Any]:
    """The merge patch of a status model: only the fields its builder set."""
    return status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True)


def claim(kind: str, session: AgentSession, agent_key: str, now: dt.datetime) -> dict[str, Any]:
    """The agent's claim (sent with the resourceVersion it read), with the session's public
    key the operator seals the job's grant to."""
    model = BackupJobStatus if kind == "BackupJob" else RestoreJobStatus
    return patch(
        model(
            phase=JobPhase.RUNNING.value,
            agent_session=session.token,
            agent_key=agent_key,
            start_time=now,
            message=f"claimed by agent {session.agent_id}",
        )
    )


def failed(
    kind: str, error: ErrorInfo, now: dt.datetime, message: str | None = None
) -> dict[str, Any]:
    """A job's terminal failure as a whole (its per-database results are kept)."""
    model = BackupJobStatus if kind == "BackupJob" else RestoreJobStatus
    return patch(
        model(
            phase=JobPhase.FAILED.value,
            completion_time=now,
            error=_stamped(error, now),
            message=message or error.message,
        )
    )


def agent_lost(kind: str, token: str, now: dt.datetime) -> dict[str, Any]:
    """The operator's only write to a claimed job: its session's Lease expired."""
    if kind == "BackupJob":
        what = "the job was running; the backup is scheduled again"
        fix = ErrorCode.AGENT_LOST.remediation
    else:
        what = "the restore was running; the target is left RESTORING (never ONLINE half-done)"
        fix = (
            "Check that sqlharbor-agent runs on the VM, then create a new RestoreJob with "
            "overwrite: true."
        )
    message = f"agent session {token} stopped renewing its lease while {what}"
    error = ErrorInfo(code=ErrorCode.AGENT_LOST, message=message, remediation=fix)
    return failed(kind, error, now)


def agent_restarted(kind: str, token: str | None, now: dt.datetime) -> dict[str, Any]:
    """A restarted agent fails what its earlier session left Running."""
    code = ErrorCode.AGENT_RESTARTED
    message = (
        f"the agent restarted (session {token} ended) while this job was running; nothing "
        "it wrote is visible (a recovery point exists only once its manifest is committed); "
        "backups are scheduled again, restores can be re-applied"
    )
    error = ErrorInfo(code=code, message=message, remediation=code.remediation)
    return failed(kind, error, now, f"agent session {token} ended while the job was running")


def backup_finished(
    results: list[DatabaseResult], error: ErrorInfo | None, now: dt.datetime
) -> dict[str, Any]:
    """The agent's last write of a backup job: Succeeded only when every database did."""
    failures = [r for r in results if r.phase is not JobPhase.SUCCEEDED]
    if error is not None:
        message = error.message
    elif failures:
        code = ErrorCode.JOB_FAILED
        error = failures[0].error or ErrorInfo(
            code=code, message=f"{failures[0].name}: not backed up", remediation=code.remediation
        )
        message = f"{len(failures)} of {len(results)} failed: {error.message}"
    else:
        message = f"{len(results)} database(s) backed up"
    status = BackupJobStatus(
        phase=JobPhase.FAILED if error is not None else JobPhase.SUCCEEDED,
        completion_time=now,
        message=message,
        databases=results,
        succeeded=len(results) - len(failures),
        failed=len(failures),
    )
    if error is not None:
        status.error = error
    return patch(status)


def restore_finished(message: str, error: ErrorInfo | None, now: dt.datetime) -> dict[str, Any]:
    """The agent's last write of a restore job."""
    status = RestoreJobStatus(
        phase=RestorePhase.FAILED if error is not None else RestorePhase.SUCCEEDED,
        completion_time=now,
        message=message,
    )
    if error is not None:
        status.error = _stamped(error, now)
    return patch(status)


def restore_waiting(message: str) -> dict[str, Any]:
    """The operator cannot plan yet (vault unreachable, target's agent not seen yet)."""
    return patch(RestoreJobStatus(phase=RestorePhase.PENDING, message=message))


def restore_planned(plan: PlanStatus, message: str, generation: int | None) -> dict[str, Any]:
    """The operator's plan; the target instance's agent claims the job from here."""
    return patch(
        RestoreJobStatus(
            phase=RestorePhase.PLANNED,
            plan=plan,
            message=message,
            observed_generation=generation,
        )
    )


def _stamped(error: ErrorInfo, now: dt.datetime) -> ErrorInfo:
    """``error`` with the time it was observed (``now`` unless it says)."""
    return error if error.time else error.model_copy(update={"time": now})
