"""Agent heartbeats through ``coordination.k8s.io`` Leases (format: ``api.contract``).

The agent calls ``renew`` every few seconds; one Lease per agent (``contract.lease_name``),
held by the agent's current session.  The operator watches the Leases and decides liveness
with ``contract.session_lost``.
"""

from __future__ import annotations

import datetime as dt

from sqlharbor.api.contract import AgentSession, lease_name, lease_object, lease_spec
from sqlharbor.errors import NotFound
from sqlharbor.kube.client import KubeClient


def renew(client: KubeClient, namespace: str, session: AgentSession, duration_seconds: int) -> None:
    now = dt.datetime.now(dt.UTC)
    name = lease_name(session.agent_id)
    try:
        client.call(
            f"Lease {namespace}/{name}",
            client.coordination.patch_namespaced_lease,
            name,
            namespace,
            {"spec": lease_spec(session, duration_seconds, now)},
        )
    except NotFound:
        body = lease_object(session, duration_seconds, now)
        body["metadata"]["namespace"] = namespace
        client.call(
            f"Lease {namespace}/{name}",
            client.coordination.create_namespaced_lease,
            namespace,
            body,
        )
