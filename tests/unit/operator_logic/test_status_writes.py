"""The controller writes a ProtectedDatabase's status only when it changed (API writes per
database per hour are a budget), and clears removed fields on the server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlharbor_operator.controller import Controller
from sqlharbor_operator.state import State

from .builders import T0


class FakeClient:
    def __init__(self) -> None:
        self.patches: list[tuple[str, str, dict[str, Any]]] = []

    def patch_status(
        self, kind: str, ns: str, name: str, body: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        self.patches.append((kind, name, body))
        return {}

    def post_event(self, **_: Any) -> None:
        return None

    def secret_value(self, *_: Any) -> bytes:
        raise AssertionError("not used")


def test_unchanged_status_is_not_written_again() -> None:
    state = State()
    state.upsert(
        "ProtectedDatabase",
        {
            "kind": "ProtectedDatabase",
            "metadata": {"name": "sales", "namespace": "ns", "generation": 1},
            "spec": {
                "instanceRef": {"name": "i"},
                "databaseName": "sales",
                "policyRef": {"name": "missing"},
            },
        },
    )
    client = FakeClient()
    now = [T0]
    controller = Controller(client, state, clock=lambda: now[0])

    async def ticks(n: int) -> None:
        for _ in range(n):
            await controller._refresh_status(now[0])
            now[0] += timedelta(seconds=1)

    asyncio.run(ticks(5))
    writes = [p for p in client.patches if p[0] == "ProtectedDatabase"]
    assert len(writes) == 1, "five ticks, nothing changed after the first: one write"
    body = writes[0][2]
    assert body["health"] == "Unhealthy"
    assert body["conditions"][0]["reason"] == "PolicyNotFound"
    assert body["lastError"] is None, "absent fields are sent as null (merge patch clears them)"
