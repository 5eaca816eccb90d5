"""kopf registration: watch events feed ``State``; start-up configures kopf and starts the
controller loop.

Only ``@kopf.on.event`` handlers are used, all ``async`` so that they run on the event
loop's thread, never concurrently with the controller (kopf runs sync handlers on a thread
pool).  They write nothing (no finalizers, no
last-handled-configuration annotations, no handler progress), so the operator's API writes
are exactly the ones the controller makes on purpose.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import kopf

from sqlharbor.api import GROUP, KINDS, VERSION, contract
from sqlharbor.kube import KubeClient
from sqlharbor_operator.controller import Controller
from sqlharbor_operator.state import State

STATE = State()
_tasks: list[asyncio.Task[None]] = []


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.peering.standalone = True
    # a per-object worker holds its last event body while it idles: with 10,000 databases
    # written in a burst, kopf's default 5 s keeps thousands of them alive at once
    settings.queueing.idle_timeout = 0.5
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    # the controller's API calls run on the default pool (asyncio.to_thread); its default
    # size on a 2-core VM is 6, fewer than the status writes it keeps in flight
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=16, thread_name_prefix="sqlharbor-api")
    )
    client = KubeClient.from_kubeconfig(os.environ.get("KUBECONFIG"))
    tick = float(os.environ.get("SQLHARBOR_TICK_SECONDS", "1"))
    STATE.wakeup = asyncio.Event()
    retention = timedelta(seconds=float(os.environ.get("SQLHARBOR_RETENTION_SECONDS", "600")))
    controller = Controller(client, STATE, tick_seconds=tick, retention_interval=retention)
    _tasks.append(asyncio.create_task(controller.run(), name="sqlharbor-controller"))


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a cluster: the pod's service account; elsewhere: $KUBECONFIG."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    for task in _tasks:
        task.cancel()


def _register(kind: str, plural: str) -> None:
    async def on_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        meta = body.get("metadata", {})
        if event.get("type") == "DELETED":
            STATE.remove(kind, meta.get("namespace", ""), meta.get("name", ""))
        else:
            STATE.upsert(kind, dict(body))

    on_event.__name__ = f"watch_{plural}"
    kopf.on.event(GROUP, VERSION, plural)(on_event)


for _kind in KINDS:
    _register(_kind.kind, _kind.plural)


@kopf.on.event("coordination.k8s.io", "v1", "leases", labels={contract.LABEL_AGENT: kopf.PRESENT})
async def watch_leases(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    meta = body.get("metadata", {})
    key = (meta.get("namespace", ""), (meta.get("labels") or {}).get(contract.LABEL_AGENT, ""))
    if event.get("type") == "DELETED":
        STATE.leases.pop(key, None)
        return
    lease = contract.lease_from_object(body)
    if lease is None:
        return
    STATE.leases[key] = lease[1]
    STATE.wakeup.set()
