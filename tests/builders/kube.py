"""``FakeClient``: a stand-in for ``sqlharbor.kube.KubeClient`` that records what the
operator writes and reads nothing."""

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

    def patch_status(
        self, kind: str, ns: str, name: str, body: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        self.patches.append((kind, name, body))
        return {}

    def create(self, kind: str, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        assert kind in self.creatable, f"unexpected create of a {kind}"
        name = f"job-{len(self.created)}"
        self.created.append(body)
        return {**body, "metadata": {**body["metadata"], "name": name, "namespace": ns}}

    def post_event(self, **event: Any) -> None:
        self.events.append(event)

    def secret_value(self, *_: Any) -> bytes:
        raise AssertionError("not used")
