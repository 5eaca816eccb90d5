"""Claiming jobs with optimistic concurrency, and failing jobs an earlier session left behind.

A claim is a status merge patch (``contract.claim``) that carries the ``resourceVersion``
the agent read: if another agent (or the operator) changed the job in between, the API
server answers 409 and this agent does not run it.  So two agents serving the same instance
never run the same job.  Every write here is against the version read; a refusal is a lost
race (``errors.Conflict``), never retried.  A job the API server's fence refuses
(``AccessDenied``: not assigned to this agent yet, or any more) is not this agent's: it is
skipped, and the other jobs are still considered.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlharbor.api import contract
from sqlharbor.errors import AccessDenied, Conflict
from sqlharbor.kube import KubeClient
from sqlharbor_agent.session import Session

log = logging.getLogger(__name__)


def try_claim(
    client: KubeClient, kind: str, obj: dict[str, Any], session: Session
) -> dict[str, Any] | None:
    """Claim a job; the updated object, or None when someone else got it first."""
    body = contract.claim(kind, session.identity, session.key.public_text, datetime.now(UTC))
    return _write_read_version(client, kind, obj, body)


def fail_orphan(client: KubeClient, kind: str, obj: dict[str, Any]) -> bool:
    """Fail a job our previous session left Running (the process died mid-job)."""
    body = contract.agent_restarted(kind, contract.session_of(obj), datetime.now(UTC))
    return _write_read_version(client, kind, obj, body) is not None


def _write_read_version(
    client: KubeClient, kind: str, obj: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any] | None:
    meta = obj["metadata"]
    try:
        return client.patch_status(
            kind, meta["namespace"], meta["name"], body, resource_version=meta["resourceVersion"]
        )
    except Conflict:
        return None
    except AccessDenied as refused:
        log.info("%s %s is not this agent's to claim: %s", kind, meta["name"], refused.message)
        return None
