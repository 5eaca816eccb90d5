"""``Runtime``: what every controller module shares — the async API client, the in-memory
state, the settings and the clock — plus the one way the operator posts an Event.

Built by ``handlers`` at start-up and handed to each concern of the tick (``tick``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlharbor.api import ProtectedDatabase
from sqlharbor.errors import NotLeader
from sqlharbor_operator.offload import Offloader
from sqlharbor_operator.settings import OperatorSettings
from sqlharbor_operator.state import State


def utcnow() -> datetime:
    return datetime.now(UTC)


class Api(Protocol):
    """The operator's API calls (``sqlharbor.kube.aio.AsyncKubeClient``; fakes in tests)."""

    async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def patch_status(
        self,
        kind: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]: ...

    async def patch_metadata(
        self, kind: str, namespace: str, name: str, metadata: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def delete(self, kind: str, namespace: str, name: str) -> None: ...

    async def secret_value(self, namespace: str, name: str, key: str) -> bytes: ...

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
    ) -> None: ...


class FencedApi:
    """``Api`` whose every write first asks ``holds()`` (``leadership.Leadership``) and is
    not sent when this replica does not lead: a deposed leader writes nothing."""

    def __init__(self, api: Api, holds: Callable[[], bool]) -> None:
        self._api, self._holds = api, holds

    def _fence(self, what: str) -> None:
        if not self._holds():
            raise NotLeader(f"{what}: not sent, this replica does not hold the leader lease")

    async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._fence(f"create {kind} in {namespace}")
        return await self._api.create(kind, namespace, body)

    async def patch_status(
        self,
        kind: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        self._fence(f"update status of {kind} {namespace}/{name}")
        return await self._api.patch_status(
            kind, namespace, name, status, resource_version=resource_version
        )

    async def patch_metadata(
        self, kind: str, namespace: str, name: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        self._fence(f"update {kind} {namespace}/{name}")
        return await self._api.patch_metadata(kind, namespace, name, metadata)

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        self._fence(f"delete {kind} {namespace}/{name}")
        await self._api.delete(kind, namespace, name)

    async def secret_value(self, namespace: str, name: str, key: str) -> bytes:
        return await self._api.secret_value(namespace, name, key)

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
        if not self._holds():
            return  # an Event is never worth an error
        await self._api.post_event(
            namespace=namespace,
            regarding=regarding,
            reason=reason,
            note=note,
            type_=type_,
            action=action,
            reporter=reporter,
        )


def always_leads() -> bool:
    """``holds`` for an operator run without leader election (one replica, dev, tests)."""
    return True


@dataclass
class Runtime:
    api: Api
    state: State
    settings: OperatorSettings = field(default_factory=OperatorSettings)
    clock: Callable[[], datetime] = utcnow
    #: Whether this replica may write now (``Leadership.holds``); checked by the tick and,
    #: through ``FencedApi`` and the retention pass, before every write.
    leads: Callable[[], bool] = always_leads
    #: Where blocking vault work runs (``offload``): never the loop's default executor.
    offload: Offloader = field(default_factory=Offloader)

    async def event(self, pd: ProtectedDatabase, reason: str, note: str, type_: str) -> None:
        regarding = {
            "apiVersion": pd.api_version,
            "kind": "ProtectedDatabase",
            "name": pd.metadata.name,
            "namespace": pd.metadata.namespace,
            "uid": pd.metadata.uid,
        }
        await self.api.post_event(
            namespace=pd.metadata.namespace or "",
            regarding=regarding,
            reason=reason,
            note=note,
            type_=type_,
            reporter="operator",
        )
