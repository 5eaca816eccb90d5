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


@dataclass
class Runtime:
    api: Api
    state: State
    settings: OperatorSettings = field(default_factory=OperatorSettings)
    clock: Callable[[], datetime] = utcnow

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
