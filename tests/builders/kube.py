"""``FakeClient``: a stand-in for the operator's API client (``sqlharbor_operator.runtime.Api``,
in production ``sqlharbor.kube.aio.AsyncKubeClient``) that records what the operator writes
and reads nothing."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


class FakeClient:
    """Records status patches (``patches``: kind, name, body), created objects
    (``created``: bodies) and events (``events``: keyword arguments).

    Only the kinds in ``creatable`` may be created (none by default); a created object is
    answered with the name ``job-<n>`` in the namespace asked for.  Reading a Secret is an
    error: the code under test must not need one.
    """

    def __init__(self, *, creatable: Collection[str] = ()) -> None:
        self.creatable = creatable
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.created: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str]] = []

    async def patch_status(
        self, kind: str, ns: str, name: str, body: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        self.patches.append((kind, name, body))
        return {}

    async def create(self, kind: str, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        assert kind in self.creatable, f"unexpected create of a {kind}"
        name = f"job-{len(self.created)}"
        self.created.append(body)
        return {**body, "metadata": {**body["metadata"], "name": name, "namespace": ns}}

    async def post_event(self, **event: Any) -> None:
        self.events.append(event)

    async def patch_metadata(
        self, kind: str, ns: str, name: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        self.patches.append((kind, name, {"metadata": metadata}))
        return {"metadata": {**metadata, "name": name, "namespace": ns, "resourceVersion": "2"}}

    async def delete(self, kind: str, ns: str, name: str) -> None:
        self.deleted.append((kind, name))

    async def secret_value(self, *_: Any) -> bytes:
        raise AssertionError("not used")
