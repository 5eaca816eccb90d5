"""``KubeClient``: custom objects, Secrets, Leases and Events over the official client.

Called by the agent (threads), by the operator (through ``asyncio.to_thread``) and by the
CLI.  Every method translates ``ApiException`` at this boundary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from pydantic import BaseModel

from sqlharbor.api import GROUP, KINDS_BY_NAME, VERSION, Resource
from sqlharbor.errors import NotFound
from sqlharbor.kube.objects import event_body, secret_key
from sqlharbor.kube.translate import translate

R = TypeVar("R", bound=Resource[Any, Any])
_NETWORK = (urllib3.exceptions.HTTPError,)


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: dict[str, Any]


class KubeClient:
    """One API client; cheap to share between threads."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._api = api_client
        self.custom = k8s.CustomObjectsApi(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.coordination = k8s.CoordinationV1Api(api_client)
        self.events = k8s.EventsV1Api(api_client)

    @classmethod
    def from_kubeconfig(cls, path: str | None = None) -> KubeClient:
        configuration = k8s.Configuration()
        if path is None:
            with contextlib.suppress(k8s_config.ConfigException):
                k8s_config.load_incluster_config(client_configuration=configuration)
                return cls(k8s.ApiClient(configuration))
        k8s_config.load_kube_config(config_file=path, client_configuration=configuration)
        return cls(k8s.ApiClient(configuration))

    def close(self) -> None:
        self._api.close()

    @property
    def api_client(self) -> k8s.ApiClient:
        return self._api

    # -- the credential -----------------------------------------------------------------
    def bearer_token(self) -> str | None:
        """The token this client authenticates with, if it uses one."""
        keys = self._api.configuration.api_key
        header = keys.get("BearerToken") or keys.get("authorization") or ""
        return header.removeprefix("Bearer ").strip() or None

    def use_bearer_token(self, token: str) -> None:
        """Authenticate every later request (watches included) with ``token``.  The
        kubeconfig loader's refresh hook would put the file's first token back before each
        request, so it goes."""
        configuration = self._api.configuration
        configuration.refresh_api_key_hook = None
        configuration.api_key.pop("authorization", None)
        configuration.api_key["BearerToken"] = f"Bearer {token}"

    # -- custom objects -------------------------------------------------------------
    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(exc, what, _NETWORK) from exc

    def get(self, model: type[R], namespace: str, name: str) -> R:
        kind = _kind_of(model)
        raw = self.get_raw(kind, namespace, name)
        return model.model_validate(raw)

    def get_raw(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        plural = KINDS_BY_NAME[kind].plural
        result: dict[str, Any] = self.call(
            f"{kind} {namespace}/{name}",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
        )
        return result

    def list_raw(
        self,
        kind: str,
        namespace: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        plural = KINDS_BY_NAME[kind].plural
        kwargs = _present(label_selector=label_selector, field_selector=field_selector)
        result = self.call(
            f"list {kind} in {namespace}",
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            **kwargs,
        )
        return list(result.get("items", [])), str(result["metadata"].get("resourceVersion", ""))

    def list(self, model: type[R], namespace: str, **selectors: str | None) -> list[R]:
        items, _ = self.list_raw(_kind_of(model), namespace, **selectors)
        return [model.model_validate(item) for item in items]

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        plural = KINDS_BY_NAME[kind].plural
        name = body.get("metadata", {}).get("name") or body["metadata"].get("generateName", "")
        result: dict[str, Any] = self.call(
            f"create {kind} {namespace}/{name}",
            self.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            body,
        )
        return result

    def patch_status(
        self,
        kind: str,
        namespace: str,
        name: str,
        status: dict[str, Any] | BaseModel,
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """JSON merge patch of ``.status``; with ``resource_version`` it only applies to that
        version of the object (a ``Conflict`` otherwise)."""
        if isinstance(status, BaseModel):
            status = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        plural = KINDS_BY_NAME[kind].plural
        result: dict[str, Any] = self.call(
            f"update status of {kind} {namespace}/{name}",
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            body,
            _content_type="application/merge-patch+json",
        )
        return result

    def patch_spec(
        self,
        kind: str,
        namespace: str,
        name: str,
        spec: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """JSON merge patch of ``.spec`` (an admin's change, e.g. ``agent enroll``); with
        ``resource_version`` it only applies to that version (``Conflict`` otherwise)."""
        body: dict[str, Any] = {"spec": spec}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        plural = KINDS_BY_NAME[kind].plural
        result: dict[str, Any] = self.call(
            f"update {kind} {namespace}/{name}",
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            body,
            _content_type="application/merge-patch+json",
        )
        return result

    def patch_metadata(
        self, kind: str, namespace: str, name: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        plural = KINDS_BY_NAME[kind].plural
        result: dict[str, Any] = self.call(
            f"update {kind} {namespace}/{name}",
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"metadata": metadata},
        )
        return result

    def delete(self, kind: str, namespace: str, name: str) -> None:
        plural = KINDS_BY_NAME[kind].plural
        with contextlib.suppress(NotFound):
            self.call(
                f"delete {kind} {namespace}/{name}",
                self.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
            )

    def watch(
        self,
        kind: str,
        namespace: str,
        *,
        resource_version: str | None = None,
        field_selector: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int = 60,
    ) -> Iterator[WatchEvent]:
        """Yield events until the server closes the watch (then list again and re-watch)."""
        plural = KINDS_BY_NAME[kind].plural
        kwargs = _present(
            resource_version=resource_version,
            field_selector=field_selector,
            label_selector=label_selector,
        )
        kwargs.update(timeout_seconds=timeout_seconds, allow_watch_bookmarks=True)
        w = k8s_watch.Watch()
        try:
            for event in w.stream(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                **kwargs,
            ):
                yield WatchEvent(type=str(event["type"]), object=event["object"])
        except Exception as exc:
            raise translate(exc, f"watch {kind} in {namespace}", _NETWORK) from exc
        finally:
            w.stop()

    # -- secrets ----------------------------------------------------------------------
    def secret_value(self, namespace: str, name: str, key: str) -> bytes:
        """One key of a Secret, decoded.  The value never appears in an error message."""
        secret = self.call(
            f"Secret {namespace}/{name}", self.core.read_namespaced_secret, name, namespace
        )
        return secret_key(secret.data, namespace, name, key)

    # -- events -----------------------------------------------------------------------
    def post_event(
        self,
        *,
        namespace: str,
        regarding: dict[str, Any],
        reason: str,
        note: str,
        type_: str = "Normal",
        action: str = "Reconcile",
        reporter: str = "sqlharbor",
    ) -> None:
        """Post a Kubernetes Event; failures to post are not fatal (and not raised)."""
        body: Any = event_body(  # the client serialises a plain dict as it is
            namespace=namespace,
            regarding=regarding,
            reason=reason,
            note=note,
            type_=type_,
            action=action,
            reporter=reporter,
        )
        with contextlib.suppress(Exception):
            self.events.create_namespaced_event(namespace, body)


def _present(**options: str | None) -> dict[str, Any]:
    """The options that were given (empty or None ones are left out of the API call)."""
    return {name: value for name, value in options.items() if value}


def _kind_of(model: type[Resource[Any, Any]]) -> str:
    spec_type = model.model_fields["spec"].annotation
    for kind in KINDS_BY_NAME.values():
        if kind.spec is spec_type:
            return kind.kind
    raise ValueError(f"unknown resource model {model}")
