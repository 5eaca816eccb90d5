"""Agent heartbeats through ``coordination.k8s.io`` Leases.

The agent calls ``renew`` every few seconds with its session id as holder; the operator
calls ``read`` to decide whether an agent session is alive.  One Lease per SqlInstance,
named ``sqlharbor-agent-<instance>``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kubernetes import client as k8s

from sqlharbor.kube.client import KubeClient, NotFound


def lease_name(instance: str) -> str:
    return f"sqlharbor-agent-{instance}"


@dataclass(frozen=True)
class LeaseInfo:
    holder: str
    renew_time: dt.datetime
    duration_seconds: int

    def expired(self, now: dt.datetime) -> bool:
        return now > self.renew_time + dt.timedelta(seconds=self.duration_seconds)


def read(client: KubeClient, namespace: str, instance: str) -> LeaseInfo | None:
    try:
        lease = client._call(
            f"Lease {namespace}/{lease_name(instance)}",
            client.coordination.read_namespaced_lease,
            lease_name(instance),
            namespace,
        )
    except NotFound:
        return None
    spec = lease.spec
    if spec is None or spec.renew_time is None:
        return None
    return LeaseInfo(
        holder=spec.holder_identity or "",
        renew_time=spec.renew_time,
        duration_seconds=spec.lease_duration_seconds or 0,
    )


def renew(
    client: KubeClient, namespace: str, instance: str, holder: str, duration_seconds: int
) -> None:
    now = dt.datetime.now(dt.UTC)
    name = lease_name(instance)
    body = k8s.V1Lease(
        metadata=k8s.V1ObjectMeta(
            name=name, namespace=namespace, labels={"sqlharbor.io/agent": instance}
        ),
        spec=k8s.V1LeaseSpec(
            holder_identity=holder,
            lease_duration_seconds=duration_seconds,
            renew_time=now,
            acquire_time=now,
        ),
    )
    try:
        client._call(
            f"Lease {namespace}/{name}",
            client.coordination.patch_namespaced_lease,
            name,
            namespace,
            {
                "spec": {
                    "holderIdentity": holder,
                    "leaseDurationSeconds": duration_seconds,
                    "renewTime": _micro(now),
                }
            },
        )
    except NotFound:
        client._call(
            f"Lease {namespace}/{name}",
            client.coordination.create_namespaced_lease,
            namespace,
            body,
        )


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
