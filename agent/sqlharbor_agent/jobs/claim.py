"""Claiming jobs with optimistic concurrency, and failing jobs an earlier session left behind.

A claim is a status merge patch that carries the ``resourceVersion`` the agent read: if
another agent (or anyone) changed the job in between, the API server answers 409 and this
agent does not run it.  So two agents serving the same instance never run the same job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlharbor.kube import Conflict, KubeClient
from sqlharbor_agent.session import Session


def phase_of(obj: dict[str, Any]) -> str | None:
    status = obj.get("status") or {}
    phase = status.get("phase")
    return str(phase) if phase else None


def try_claim(
    client: KubeClient,
    kind: str,
    obj: dict[str, Any],
    session: Session,
    *,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Claim a Pending job; the updated object, or None when someone else got it first."""
    meta = obj["metadata"]
    status: dict[str, Any] = {
        "phase": "Running",
        "agentSession": session.token,
        "startTime": datetime.now(UTC).isoformat(),
        "message": f"claimed by agent {session.agent_id}",
        **(extra or {}),
    }
    try:
        return client.patch_status(
            kind, meta["namespace"], meta["name"], status, resource_version=meta["resourceVersion"]
        )
    except Conflict:
        return None


def fail_orphan(client: KubeClient, kind: str, obj: dict[str, Any], session: Session) -> bool:
    """Fail a job our previous session left Running (the process died mid-job)."""
    meta = obj["metadata"]
    previous = (obj.get("status") or {}).get("agentSession")
    now = datetime.now(UTC).isoformat()
    status = {
        "phase": "Failed",
        "completionTime": now,
        "message": f"agent session {previous} ended while the job was running",
        "error": {
            "code": "AgentRestarted",
            "message": f"the agent restarted (session {previous} ended) while this job was "
            "running; nothing it wrote is visible (a recovery point exists only once its "
            "manifest is committed); backups are scheduled again, restores can be re-applied",
            "remediation": "None needed; check the agent's logs if this repeats.",
            "time": now,
        },
    }
    try:
        client.patch_status(
            kind, meta["namespace"], meta["name"], status, resource_version=meta["resourceVersion"]
        )
    except Conflict:
        return False
    return True
