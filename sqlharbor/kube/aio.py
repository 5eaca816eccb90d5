"""``AsyncKubeClient``: the operator's API access on its one event loop (kubernetes_asyncio,
aiohttp underneath like kopf's own watches): custom objects, Secrets and Events.

Called by the operator's controller modules; the agent and the CLI use the sync
``KubeClient``.  Failures are translated here (``kube.translate``), as in the sync client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from sqlharbor.api import GROUP, KINDS_BY_NAME, VERSION
from sqlharbor.errors import NotFound, TemporaryError
from sqlharbor.kube.objects import event_body, secret_key
from sqlharbor.kube.translate import translate

T = TypeVar("T")
#: how long a worker thread waits for a Secret read on the event loop
SECRET_READ_TIMEOUT = 30.0
_NETWORK = (aiohttp.ClientError, asyncio.TimeoutError)


async def load_configuration(kubeconfig: str | None) -> Any:
    """The client ``Configuration`` (server, CA, credentials): in a cluster (no
    ``kubeconfig``) the pod's ServiceAccount, else that file (or $KUBECONFIG)."""
    configuration = k8s.Configuration()
    if kubeconfig is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return configuration
        except k8s_config.ConfigException:
            pass
    await k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return configuration


class AsyncKubeClient:
    """One API client (one aiohttp connection pool); share it across the operator."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._api = api_client
        self.custom = k8s.CustomObjectsApi(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.events = k8s.EventsV1Api(api_client)
        self.coordination = k8s.CoordinationV1Api(api_client)

    @classmethod
    async def connect(
        cls, kubeconfig: str | None = None, *, pool: int = 32, user_agent: str | None = None
    ) -> AsyncKubeClient:
        """In a cluster (no ``kubeconfig``): the pod's ServiceAccount; else the file.
        ``user_agent`` names this process in the API server's audit log."""
        configuration = await load_configuration(kubeconfig)
        configuration.connection_pool_maxsize = pool
        api_client = k8s.ApiClient(configuration)
        if user_agent:
            api_client.user_agent = user_agent
        return cls(api_client)

    async def close(self) -> None:
        await self._api.close()

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except Exception as exc:
            raise translate(exc, what, _NETWORK) from exc

    # -- custom objects -------------------------------------------------------------
    async def get_raw(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        plural = KINDS_BY_NAME[kind].plural
        call = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        result: dict[str, Any] = await self._call(f"{kind} {namespace}/{name}", call)
        return result

    async def list_pages(
        self, kind: str, namespace: str | None, *, limit: int = 500
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every object of ``kind`` in ``namespace`` (None: all namespaces), ``limit`` at a
        time (10,000 ProtectedDatabases in one answer are 26 MB of JSON to hold at once)."""
        plural = KINDS_BY_NAME[kind].plural
        token: str | None = None
        while True:
            options: dict[str, Any] = {"limit": limit}
            if token:
                options["_continue"] = token
            call: Coroutine[Any, Any, Any]
            if namespace is None:
                call = self.custom.list_cluster_custom_object(GROUP, VERSION, plural, **options)
            else:
                call = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, **options
                )
            result = await self._call(f"list {kind} in {namespace or 'all namespaces'}", call)
            yield list(result.get("items", []))
            token = (result.get("metadata") or {}).get("continue")
            if not token:
                return

    async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        plural = KINDS_BY_NAME[kind].plural
        meta = body.get("metadata", {})
        name = meta.get("name") or meta.get("generateName", "")
        call = self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        result: dict[str, Any] = await self._call(f"create {kind} {namespace}/{name}", call)
        return result

    async def patch_status(
        self,
        kind: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """JSON merge patch of ``.status``; with ``resource_version`` it only applies to that
        version of the object (a ``Conflict`` otherwise)."""
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        plural = KINDS_BY_NAME[kind].plural
        call = self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            body,
            _content_type="application/merge-patch+json",
        )
        result: dict[str, Any] = await self._call(
            f"update status of {kind} {namespace}/{name}", call
        )
        return result

    async def patch_metadata(
        self, kind: str, namespace: str, name: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        plural = KINDS_BY_NAME[kind].plural
        call = self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"metadata": metadata},
            _content_type="application/merge-patch+json",
        )
        result: dict[str, Any] = await self._call(f"update {kind} {namespace}/{name}", call)
        return result

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        plural = KINDS_BY_NAME[kind].plural
        call = self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        with contextlib.suppress(NotFound):
            await self._call(f"delete {kind} {namespace}/{name}", call)

    async def served_plurals(self) -> set[str]:
        """The resources the API server serves in group sqlharbor.io at our version
        (discovery: every authenticated user may ask); empty when the group is not served."""
        call = self.custom.get_api_resources(GROUP, VERSION)
        try:
            result = await self._call(f"discovery of {GROUP}/{VERSION}", call)
        except NotFound:
            return set()
        return {str(r.name) for r in result.resources or [] if "/" not in str(r.name)}

    # -- secrets ----------------------------------------------------------------------
    async def secret_value(self, namespace: str, name: str, key: str) -> bytes:
        """One key of a Secret, decoded.  The value never appears in an error message."""
        secret = await self._call(
            f"Secret {namespace}/{name}", self.core.read_namespaced_secret(name, namespace)
        )
        return secret_key(secret.data, namespace, name, key)

    def blocking_secret_reader(
        self, loop: asyncio.AbstractEventLoop
    ) -> Callable[[str, str, str], bytes]:
        """``secret_value`` for code running on a worker thread (the vault catalog opener):
        the read runs on ``loop``; never call the result on the loop's own thread."""

        def read(namespace: str, name: str, key: str) -> bytes:
            future = asyncio.run_coroutine_threadsafe(self.secret_value(namespace, name, key), loop)
            try:
                return future.result(timeout=SECRET_READ_TIMEOUT)
            except TimeoutError:  # the loop is shutting down or the API server hangs
                future.cancel()
                raise TemporaryError(
                    f"reading Secret {namespace}/{name} took over {SECRET_READ_TIMEOUT:.0f}s"
                ) from None

        return read

    # -- leases ---------------------------------------------------------------------
    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Lease ``namespace``/``name`` as a plain object, or None when there is none."""
        try:
            call = self.coordination.read_namespaced_lease(name, namespace)
            lease = await self._call(f"Lease {namespace}/{name}", call)
        except NotFound:
            return None
        result: dict[str, Any] = self._api.sanitize_for_serialization(lease)
        return result

    async def write_lease(
        self, namespace: str, name: str, spec: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """Create the Lease (``resource_version`` None) or replace it only if it is still at
        ``resource_version`` (``Conflict`` otherwise: someone else wrote it first)."""
        what = f"Lease {namespace}/{name}"
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        call: Coroutine[Any, Any, Any]
        if resource_version is None:
            call = self.coordination.create_namespaced_lease(namespace, body)
        else:
            body["metadata"]["resourceVersion"] = resource_version
            call = self.coordination.replace_namespaced_lease(name, namespace, body)
        result: dict[str, Any] = self._api.sanitize_for_serialization(await self._call(what, call))
        return result

    # -- events -----------------------------------------------------------------------
    async def post_event(
        self,
        *,
        namespace: str,
        regarding: dict[str, Any],
        reason: str,
        note: str,
        type_: str = "Normal",
        action: str = "Reconcile",
        reporter: str = "operator",
    ) -> None:
        """Post a Kubernetes Event; failures to post are not fatal (and not raised)."""
        body = event_body(
            namespace=namespace,
            regarding=regarding,
            reason=reason,
            note=note,
            type_=type_,
            action=action,
            reporter=reporter,
        )
        with contextlib.suppress(Exception):
            await self.events.create_namespaced_event(namespace, body)
