"""The contract between the operator and the agent: every label, annotation and finalizer
name, the agent session and Lease format, the job phase state machines (which the API server
enforces through CEL rules generated from them), and typed builders for every status body
either side writes.

Imported by the operator, the agent, the CLI, the benchmarks and the tests; nothing else
spells these names (``tests/unit/api/test_contract_literals.py`` fails on a stray literal).

Who writes which status field (one writer per field):

* ``BackupJob``: the agent that claimed the job writes everything, from the claim
  (``Running`` + ``agentSession``, carrying the resourceVersion it read) to ``Succeeded`` or
  ``Failed``.  The operator writes only ``agent_lost``: a non-finished job moved to
  ``Failed`` with reason ``AgentLost`` once the claiming session's Lease expired, carrying
  the resourceVersion it read.  A restarted agent fails the jobs of its own earlier session
  (``agent_restarted``), also against the version it read.  A late write of the lost agent
  is refused by the server (a finished status never changes).
* ``RestoreJob``: the operator plans (``Pending`` while it waits, ``Planned`` with the plan,
  or ``Failed`` when it refuses), each write against the version it decided on; from the
  claim on (``Planned`` → ``Running``) the agent writes everything, except ``agent_lost``.

A write refused because of this contract (409 on a stale resourceVersion, 422 from a
transition rule) is a lost race (``errors.Conflict``), never an error to retry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlharbor.api._base import GROUP, ErrorInfo, StatusModel
from sqlharbor.api.jobs import (
    BackupJobStatus,
    DatabaseResult,
    JobPhase,
    RestoreJobStatus,
    RestorePhase,
)
from sqlharbor.api.jobs import RestorePlan as PlanStatus
from sqlharbor.errors import ErrorCode

# -- labels, annotations, finalizers ------------------------------------------------------

#: BackupJob, auto-protected ProtectedDatabase: the SqlInstance it belongs to.
LABEL_INSTANCE = f"{GROUP}/instance"
#: BackupJob: Full, Differential or Log.
LABEL_BACKUP_TYPE = f"{GROUP}/type"
#: BackupJob: created by the operator's scheduler ("true").
LABEL_SCHEDULED = f"{GROUP}/scheduled"
#: ProtectedDatabase: created by auto-protection ("true").
LABEL_AUTO_PROTECTED = f"{GROUP}/auto-protected"
#: RestoreJob: the SqlInstance whose agent runs the planned restore (set by the operator).
LABEL_TARGET_INSTANCE = f"{GROUP}/target-instance"
#: Lease: the agent id whose sessions renew it.
LABEL_AGENT = f"{GROUP}/agent"
#: RestoreJob: the BackupVault the plan reads from (agents cannot read ProtectedDatabases).
ANNOTATION_VAULT = f"{GROUP}/vault"
#: sqlharbor adds no finalizer to any object (its delete handlers are optional).
FINALIZERS: tuple[str, ...] = ()


def reporting_controller(component: str) -> str:
    """``reportingController`` of the Events a component posts (``sqlharbor.io/operator``)."""
    return f"{GROUP}/{component}"


def truthy_label(value: bool = True) -> str:
    return "true" if value else "false"


# -- agent session and Lease ---------------------------------------------------------------

LEASE_PREFIX = "sqlharbor-agent-"
#: A Running job whose session's Lease the operator has not seen yet is left alone this long
#: (the operator just started and its Lease watch has not caught up).
LEASE_UNSEEN_GRACE = dt.timedelta(seconds=30)


def lease_name(agent_id: str) -> str:
    """The Lease one agent (all its sessions, all its instances) renews."""
    return f"{LEASE_PREFIX}{agent_id}"


@dataclass(frozen=True)
class AgentSession:
    """``<agentId>/<sessionId>``: a stable id per VM and a fresh one per process start."""

    agent_id: str
    session_id: str

    @property
    def token(self) -> str:
        """What jobs record as ``status.agentSession`` and SqlInstances as ``agent.sessionId``."""
        return f"{self.agent_id}/{self.session_id}"

    @classmethod
    def parse(cls, token: str | None) -> AgentSession | None:
        if not token or "/" not in token:
            return None
        agent_id, _, session_id = token.partition("/")
        return cls(agent_id, session_id)


@dataclass(frozen=True)
class LeaseInfo:
    """What the operator keeps of an agent's Lease."""

    holder: str  # the session id of the agent process renewing it
    renew_time: dt.datetime
    duration_seconds: int

    def expired(self, now: dt.datetime) -> bool:
        return now > self.renew_time + dt.timedelta(seconds=self.duration_seconds)

    def held_by(self, session: AgentSession, now: dt.datetime) -> bool:
        return self.holder == session.session_id and not self.expired(now)


def lease_spec(session: AgentSession, duration_seconds: int, now: dt.datetime) -> dict[str, Any]:
    """The Lease ``spec`` the agent writes at every heartbeat."""
    return {
        "holderIdentity": session.session_id,
        "leaseDurationSeconds": duration_seconds,
        "renewTime": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def lease_object(session: AgentSession, duration_seconds: int, now: dt.datetime) -> dict[str, Any]:
    """The whole Lease, for its first heartbeat."""
    spec = lease_spec(session, duration_seconds, now)
    spec["acquireTime"] = spec["renewTime"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": lease_name(session.agent_id),
            "labels": {LABEL_AGENT: session.agent_id},
        },
        "spec": spec,
    }


def lease_from_object(obj: Mapping[str, Any]) -> tuple[str, LeaseInfo] | None:
    """(agent id, lease) of a Lease object as watched, or None when it is not renewed yet."""
    agent_id = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_AGENT, "")
    spec = obj.get("spec") or {}
    renew = spec.get("renewTime")
    if not agent_id or not renew:
        return None
    when = renew if isinstance(renew, dt.datetime) else _parse_time(str(renew))
    return agent_id, LeaseInfo(
        holder=spec.get("holderIdentity") or "",
        renew_time=when,
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
    )


def session_lost(
    leases: Mapping[tuple[str, str], LeaseInfo],
    namespace: str,
    token: str | None,
    started: dt.datetime | None,
    now: dt.datetime,
) -> bool:
    """Whether the agent session ``token`` is gone: its Lease is held by another session,
    expired, or (past ``LEASE_UNSEEN_GRACE`` after ``started``) absent."""
    session = AgentSession.parse(token)
    if session is None:
        return False
    lease = leases.get((namespace, session.agent_id))
    if lease is None:
        return now - (started or now) >= LEASE_UNSEEN_GRACE
    return not lease.held_by(session, now)


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- phase state machines --------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseMachine:
    """Which phase may follow which; the API server enforces it (``cel_rules``)."""

    kind: str
    moves: Mapping[str, frozenset[str]]  # phase -> phases it may move to (itself excluded)
    finished: frozenset[str]
    claimed: frozenset[str]  # phases in which status.agentSession must be set

    def allows(self, old: str | None, new: str | None) -> bool:
        if old is None or old == new:
            return True
        return new is not None and new in self.moves.get(old, frozenset())

    def cel_rules(self) -> list[dict[str, str]]:
        """``x-kubernetes-validations`` for the status schema (transition rules use
        ``oldSelf``: the first status write is checked only by the non-transition ones)."""
        finished = _cel_list(self.finished)
        pairs = " || ".join(
            f"(oldSelf.phase == '{old}' && self.phase in {_cel_list(new)})"
            for old, new in sorted(self.moves.items())
            if new
        )
        order = " -> ".join(_order(self))
        return [
            {
                "rule": f"!has(oldSelf.phase) || !(oldSelf.phase in {finished}) || self == oldSelf",
                "message": FINISHED_MESSAGE,
            },
            {
                "rule": "!has(oldSelf.phase) || (has(self.phase) && "
                f"(self.phase == oldSelf.phase || {pairs}))",
                "message": f"{FORWARD_MESSAGE}: {order}",
            },
            {
                "rule": "!has(oldSelf.agentSession) || "
                "(has(self.agentSession) && self.agentSession == oldSelf.agentSession)",
                "message": SESSION_MESSAGE,
            },
            {
                "rule": f"!has(self.phase) || !(self.phase in {_cel_list(self.claimed)}) "
                "|| has(self.agentSession)",
                "message": UNCLAIMED_MESSAGE,
            },
        ]


FINISHED_MESSAGE = "a finished job (Succeeded or Failed) never changes: create a new job"
FORWARD_MESSAGE = "status.phase only moves forward"
SESSION_MESSAGE = "status.agentSession never changes once the job is claimed"
UNCLAIMED_MESSAGE = "a Running or Succeeded job names the agent session that claimed it"
#: What the API server says when it refuses a write under this contract.
TRANSITION_MESSAGES = (FINISHED_MESSAGE, FORWARD_MESSAGE, SESSION_MESSAGE, UNCLAIMED_MESSAGE)


def _cel_list(values: frozenset[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in sorted(values)) + "]"


def _order(machine: PhaseMachine) -> list[str]:
    seen: list[str] = []
    for old in machine.moves:
        if old not in seen:
            seen.append(old)
    return [*seen, " or ".join(sorted(machine.finished))]


_DONE = frozenset({JobPhase.SUCCEEDED.value, JobPhase.FAILED.value})

BACKUP_JOB = PhaseMachine(
    kind="BackupJob",
    moves={
        JobPhase.PENDING.value: frozenset({JobPhase.RUNNING.value, JobPhase.FAILED.value}),
        JobPhase.RUNNING.value: _DONE,
    },
    finished=_DONE,
    claimed=frozenset({JobPhase.RUNNING.value, JobPhase.SUCCEEDED.value}),
)
RESTORE_JOB = PhaseMachine(
    kind="RestoreJob",
    moves={
        RestorePhase.PENDING.value: frozenset(
            {RestorePhase.PLANNED.value, RestorePhase.FAILED.value}
        ),
        RestorePhase.PLANNED.value: frozenset(
            {RestorePhase.RUNNING.value, RestorePhase.FAILED.value}
        ),
        RestorePhase.RUNNING.value: _DONE,
    },
    finished=_DONE,
    claimed=frozenset({RestorePhase.RUNNING.value, RestorePhase.SUCCEEDED.value}),
)
MACHINES = {m.kind: m for m in (BACKUP_JOB, RESTORE_JOB)}
#: Phases in which an agent may claim a job of each kind.
CLAIMABLE: Mapping[str, tuple[str | None, ...]] = {
    "BackupJob": (None, JobPhase.PENDING.value),
    "RestoreJob": (RestorePhase.PLANNED.value,),
}


def phase_of(obj: Mapping[str, Any]) -> str | None:
    """``status.phase`` of a job object as the API server returned it."""
    phase = (obj.get("status") or {}).get("phase")
    return str(phase) if phase else None


def session_of(obj: Mapping[str, Any]) -> str | None:
    token = (obj.get("status") or {}).get("agentSession")
    return str(token) if token else None


def is_finished(obj: Mapping[str, Any]) -> bool:
    return phase_of(obj) in _DONE


# -- status bodies ---------------------------------------------------------------------------


def patch(status: StatusModel) -> dict[str, Any]:
    """The merge patch of a status model: only the fields its builder set."""
    return status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True)


def claim(kind: str, session: AgentSession, now: dt.datetime) -> dict[str, Any]:
    """The agent's claim (sent with the resourceVersion it read)."""
    model = BackupJobStatus if kind == "BackupJob" else RestoreJobStatus
    return patch(
        model(
            phase=JobPhase.RUNNING.value,
            agent_session=session.token,
            start_time=now,
            message=f"claimed by agent {session.agent_id}",
        )
    )


def failed(
    kind: str, error: ErrorInfo, now: dt.datetime, message: str | None = None
) -> dict[str, Any]:
    """A job's terminal failure as a whole (its per-database results are kept)."""
    model = BackupJobStatus if kind == "BackupJob" else RestoreJobStatus
    if error.time is None:
        error = error.model_copy(update={"time": now})
    return patch(
        model(
            phase=JobPhase.FAILED.value,
            completion_time=now,
            error=error,
            message=message or error.message,
        )
    )


def agent_lost(kind: str, token: str, now: dt.datetime) -> dict[str, Any]:
    """The operator's only write to a claimed job: its session's Lease expired."""
    if kind == "BackupJob":
        what = "the job was running; the backup is scheduled again"
        fix = "Check that sqlharbor-agent runs on the VM."
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
        status.error = error if error.time else error.model_copy(update={"time": now})
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


__all__ = [
    "ANNOTATION_VAULT",
    "BACKUP_JOB",
    "CLAIMABLE",
    "FINALIZERS",
    "LABEL_AGENT",
    "LABEL_AUTO_PROTECTED",
    "LABEL_BACKUP_TYPE",
    "LABEL_INSTANCE",
    "LABEL_SCHEDULED",
    "LABEL_TARGET_INSTANCE",
    "RESTORE_JOB",
    "TRANSITION_MESSAGES",
    "AgentSession",
    "LeaseInfo",
    "PhaseMachine",
]
