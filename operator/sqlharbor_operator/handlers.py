"""kopf registration: watch events feed ``State``; start-up connects the async API client and
starts the controller loop (``tick``).

``registry()`` builds a kopf registry with these handlers; ``main`` runs kopf with it and a
``Memo`` carrying the settings and the state (no module globals).  Only ``@kopf.on.event``
handlers are used, all ``async`` so that they run on the event loop's thread, never
concurrently with the controller (kopf runs sync handlers on a thread pool).  They write
nothing (no finalizers, no last-handled-configuration annotations, no handler progress),
so the operator's API writes are exactly the ones the controller makes on purpose.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from sqlharbor import __version__
from sqlharbor.api import GROUP, KINDS, VERSION, contract
from sqlharbor.azure_access import AzureAccess
from sqlharbor.kube.aio import AsyncKubeClient, load_configuration
from sqlharbor_operator import preflight
from sqlharbor_operator.leadership import Leadership
from sqlharbor_operator.offload import Offloader
from sqlharbor_operator.runtime import FencedApi, Runtime
from sqlharbor_operator.settings import OperatorSettings
from sqlharbor_operator.state import State
from sqlharbor_operator.tick import Controller
from sqlharbor_operator.vaults import VaultOpener


class Memo(kopf.Memo):
    """What kopf hands every handler (``memo``): built by ``main``."""

    settings: OperatorSettings
    state: State
    tasks: list[asyncio.Task[None]]
    api: AsyncKubeClient
    leadership: Leadership | None
    offload: Offloader


def memo(settings: OperatorSettings) -> Memo:
    m = Memo()
    m.settings, m.state, m.tasks, m.leadership = settings, State(), [], None
    m.offload = Offloader()
    return m


def registry() -> kopf.OperatorRegistry:
    reg = kopf.OperatorRegistry()
    kopf.on.startup(registry=reg)(configure)
    kopf.on.login(registry=reg)(login)
    kopf.on.cleanup(registry=reg)(stop)
    for kind in KINDS:
        kopf.on.event(GROUP, VERSION, kind.plural, registry=reg)(_watcher(kind.kind))
    kopf.on.event(
        "coordination.k8s.io",
        "v1",
        "leases",
        labels={contract.LABEL_AGENT: kopf.PRESENT},
        registry=reg,
    )(watch_leases)
    return reg


async def configure(settings: kopf.OperatorSettings, memo: Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    # kopf's own API needs are switched off rather than granted (config/rbac/role.yaml):
    # no Events of kopf's (the operator posts its own through events.k8s.io: Runtime.event),
    # no scanning of CRDs or namespaces (the kinds are known; the namespaces are given or
    # all), no peering
    settings.posting.enabled = False
    settings.scanning.disabled = True
    settings.peering.standalone = True
    # a per-object worker holds its last event body while it idles: with 10,000 databases
    # written in a burst, kopf's default 5 s keeps thousands of them alive at once
    settings.queueing.idle_timeout = 0.5
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    ours = memo.settings
    # blocking vault work on a pool of its own: the loop's default executor stays free for
    # the API client's per-request lookups (``offload``)
    offload = memo.offload = Offloader(ours.retention_concurrency + 4)
    kubeconfig = str(ours.kubeconfig) if ours.kubeconfig else None
    agent = f"sqlharbor-operator/{__version__}"
    if ours.election is not None:
        agent += f" ({ours.election.identity})"
    memo.api = await AsyncKubeClient.connect(
        kubeconfig, pool=ours.api_connections, user_agent=agent
    )
    # kopf resolves its kinds once (no scanning): start only when they are all served
    problem = await preflight.not_served(memo.api)
    if problem is not None:
        await memo.api.close()
        raise kopf.PermanentError(problem)
    memo.state.wakeup = asyncio.Event()
    reader = memo.api.blocking_secret_reader(asyncio.get_running_loop())
    if ours.election is None:
        rt = Runtime(memo.api, memo.state, ours, offload=offload)
    else:
        wakeup = memo.state.wakeup
        memo.leadership = Leadership(memo.api, ours.election, lambda _: wakeup.set())
        holds = memo.leadership.holds
        rt = Runtime(FencedApi(memo.api, holds), memo.state, ours, leads=holds, offload=offload)
        memo.tasks.append(asyncio.create_task(memo.leadership.run(), name="sqlharbor-election"))
    controller = Controller(rt, VaultOpener(reader, azure=AzureAccess(ours.azure)))
    task = asyncio.create_task(controller.run(memo.api.list_pages), name="sqlharbor-controller")
    memo.tasks.append(task)


async def login(memo: Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own connection: the same credentials as the controller's client (the
    ``--kubeconfig`` file, $KUBECONFIG, or in a cluster the pod's ServiceAccount)."""
    path = memo.settings.kubeconfig
    c = await load_configuration(str(path) if path else None)
    token = (c.api_key or {}).get("authorization") or (c.api_key or {}).get("BearerToken")
    return kopf.ConnectionInfo(
        server=c.host,
        ca_path=c.ssl_ca_cert,
        insecure=not c.verify_ssl,
        certificate_path=c.cert_file,
        private_key_path=c.key_file,
        token=token.removeprefix("Bearer ").strip() if token else None,
    )


async def stop(memo: Memo, **_: Any) -> None:
    """Shutdown (SIGTERM): hand the lease over at once (this replica's writes are fenced
    from that moment: ``runtime.FencedApi``), then stop the controller and its background
    work (indexing, retention), whose vault calls may take a while to give up."""
    leadership = getattr(memo, "leadership", None)
    if leadership is not None:
        await leadership.release()
    for task in memo.tasks:
        task.cancel()
    memo.offload.shutdown()
    if getattr(memo, "api", None) is not None:
        await memo.api.close()


def _watcher(kind: str) -> Any:
    async def on_event(event: kopf.RawEvent, body: kopf.Body, memo: Memo, **_: Any) -> None:
        meta = body.get("metadata", {})
        if event.get("type") == "DELETED":
            memo.state.remove(kind, meta.get("namespace", ""), meta.get("name", ""))
        else:
            memo.state.upsert(kind, dict(body))

    on_event.__name__ = f"watch_{kind.lower()}"
    return on_event


async def watch_leases(event: kopf.RawEvent, body: kopf.Body, memo: Memo, **_: Any) -> None:
    state = memo.state
    meta = body.get("metadata", {})
    key = (meta.get("namespace", ""), (meta.get("labels") or {}).get(contract.LABEL_AGENT, ""))
    if event.get("type") == "DELETED":
        state.leases.pop(key, None)
        return
    lease = contract.lease_from_object(body)
    if lease is None:
        return
    state.leases[key] = lease[1]
    state.wakeup.set()
