"""The agent session token and the Lease format, and the liveness rule the operator applies
(part of ``sqlharbor.api.contract``)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlharbor.api.contract.names import LABEL_AGENT

LEASE_PREFIX = "sqlharbor-agent-"
#: An enrolled agent's ServiceAccount is ``sqlharbor-agent-<agentId>``: the fence policy
#: (config/policy/agent_fence.yaml) reads the agent id from the requesting user's name.
ACCOUNT_PREFIX = "sqlharbor-agent-"
#: A Running job whose session's Lease the operator has not seen yet is left alone this long
#: (the operator just started and its Lease watch has not caught up).
LEASE_UNSEEN_GRACE = dt.timedelta(seconds=30)


def lease_name(agent_id: str) -> str:
    """The Lease one agent (all its sessions, all its instances) renews."""
    return f"{LEASE_PREFIX}{agent_id}"


def agent_account(agent_id: str) -> str:
    """The ServiceAccount of the enrolled agent ``agent_id``."""
    return f"{ACCOUNT_PREFIX}{agent_id}"


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


_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?(?:[-+.]?\w*)*$")


def unsupported_agent_version(operator_version: str, agent_version: str) -> str | None:
    """Why an agent reporting ``agent_version`` may not serve this operator, or None.

    Supported: the operator's major version, and its minor version or the one before (the
    operator is upgraded first, then the agents, one minor version at a time).  An agent
    newer than its operator speaks a contract the operator may not know.  A version that is
    not ``MAJOR.MINOR[.PATCH]`` (a development build) is not judged."""
    ours, theirs = _VERSION.match(operator_version), _VERSION.match(agent_version)
    if ours is None or theirs is None:
        return None
    major, minor = int(ours[1]), int(ours[2])
    agent_major, agent_minor = int(theirs[1]), int(theirs[2])
    if agent_major == major and minor - 1 <= agent_minor <= minor:
        return None
    return (
        f"the agent runs sqlharbor {agent_version}; this operator ({operator_version}) "
        f"supports agents {major}.{max(minor - 1, 0)} and {major}.{minor}"
    )


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
