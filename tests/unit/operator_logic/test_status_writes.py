"""The operator writes a ProtectedDatabase's status only when it changed (API writes per
database per hour are a budget), and clears removed fields on the server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlharbor_operator.pruning import fold_pruning
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.settings import OperatorSettings
from sqlharbor_operator.state import State
from sqlharbor_operator.status_writes import StatusWriter

from sqlharbor.api import Health, JobPhase
from sqlharbor.errors import ErrorCode
from tests.builders.kube import FakeClient
from tests.builders.operator import T0


def _body(status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    """The ProtectedDatabase "sales" as the watch delivers it (its policy is missing)."""
    body: dict[str, Any] = {
        "kind": "ProtectedDatabase",
        "metadata": {"name": "sales", "namespace": "ns", "generation": generation},
        "spec": {
            "instanceRef": {"name": "i"},
            "databaseName": "sales",
            "policyRef": {"name": "missing"},
        },
    }
    if status is not None:
        body["status"] = status
    return body


def _state(status: dict[str, Any] | None = None) -> State:
    state = State()
    state.upsert("ProtectedDatabase", _body(status))
    return state


def test_a_restarted_operator_does_not_rewrite_what_the_server_holds() -> None:
    first = FakeClient()
    asyncio.run(StatusWriter(Runtime(first, _state(), clock=lambda: T0)).tick(T0))
    [(_, _, written)] = first.patches
    held = {k: v for k, v in written.items() if v is not None}  # as the server keeps it
    later = T0 + timedelta(minutes=5)
    again = FakeClient()
    asyncio.run(StatusWriter(Runtime(again, _state(held), clock=lambda: later)).tick(later))
    assert again.patches == [], "same status (transition time and RPO aside): no write"
    changed = FakeClient()
    held["observedGeneration"] = 0
    asyncio.run(StatusWriter(Runtime(changed, _state(held), clock=lambda: later)).tick(later))
    assert len(changed.patches) == 1, "a status that differs is written"


def test_unchanged_status_is_not_written_again() -> None:
    state = _state()
    client = FakeClient()
    now = [T0]
    controller = StatusWriter(Runtime(client, state, clock=lambda: now[0]))

    async def ticks(n: int) -> None:
        for _ in range(n):
            await controller.tick(now[0])
            now[0] += timedelta(seconds=1)

    asyncio.run(ticks(5))
    writes = [p for p in client.patches if p[0] == "ProtectedDatabase"]
    assert len(writes) == 1, "five ticks, nothing changed after the first: one write"
    body = writes[0][2]
    assert body["health"] == "Unhealthy"
    assert body["conditions"][0]["reason"] == ErrorCode.POLICY_NOT_FOUND
    assert body["lastError"] is None, "absent fields are sent as null (merge patch clears them)"


def test_a_change_not_yet_written_survives_an_older_watch_event() -> None:
    """A folded backup lives only in memory until its write; the echo of an earlier write
    arriving meanwhile must not undo it (the job is accounted once, never again)."""
    from sqlharbor.api import ProtectedDatabaseStatus

    state = _state()
    key = ("ns", "sales")
    echo = _body({"health": Health.PENDING})
    client = FakeClient()
    controller = StatusWriter(Runtime(client, state, clock=lambda: T0))
    state.set_status(key, ProtectedDatabaseStatus(recovery_points=7))
    state.upsert("ProtectedDatabase", echo)
    status = state.databases[key].status
    assert status is not None
    assert status.recovery_points == 7
    asyncio.run(controller.tick(T0))
    [(_, _, body)] = client.patches
    assert body["recoveryPoints"] == 7
    assert key not in state.unwritten, "written: the server's events count again"
    state.upsert("ProtectedDatabase", echo)
    status = state.databases[key].status
    assert status is not None
    assert status.recovery_points is None


def test_a_create_answer_never_replaces_what_the_watch_delivered_meanwhile() -> None:
    """The agent may finish a job before the operator's create call returns: the watch's
    Succeeded version must win over the create answer (else the job is never accounted)."""
    state = State()
    job: dict[str, Any] = {
        "kind": "BackupJob",
        "metadata": {"name": "i-full-x", "namespace": "ns", "uid": "u1"},
        "spec": {
            "instanceRef": {"name": "i"},
            "vaultRef": {"name": "v"},
            "type": "Full",
            "databases": [{"name": "sales", "protectedDatabase": "sales"}],
        },
    }
    state.upsert("BackupJob", {**job, "status": {"phase": JobPhase.SUCCEEDED}})  # from the watch
    state.add_created("BackupJob", job)  # the create call's answer, older
    status = state.jobs[("ns", "i-full-x")].status
    assert status is not None
    assert status.phase is not None
    assert status.phase is JobPhase.SUCCEEDED
    state.add_created("BackupJob", {**job, "metadata": {**job["metadata"], "name": "new"}})
    assert ("ns", "new") in state.jobs, "a create the watch has not delivered yet is added"


def test_what_retention_moves_rides_along_with_the_next_write() -> None:
    """A retention pass every 10 minutes moves the point count (and the earliest
    restorable time) of nearly every database: that alone must not cost a write each."""
    defer_at_most = OperatorSettings().defer_at_most
    key = ("ns", "sales")
    first = FakeClient()
    asyncio.run(StatusWriter(Runtime(first, _state(), clock=lambda: T0)).tick(T0))
    held = {k: v for k, v in first.patches[0][2].items() if v is not None}
    state, client = _state(held), FakeClient()
    now = T0 + timedelta(minutes=1)
    controller = StatusWriter(Runtime(client, state, clock=lambda: now))
    asyncio.run(controller.tick(now))
    fold_pruning(state, key, None, 7, 3)
    asyncio.run(controller.tick(now + timedelta(minutes=10)))
    assert client.patches == [], "only the point count changed: no write of its own"
    assert key in state.unwritten, "still to be written"
    # something that matters: a new generation to observe
    state.upsert("ProtectedDatabase", _body(held, generation=2))
    asyncio.run(controller.tick(now + timedelta(minutes=11)))
    [(_, _, body)] = client.patches
    assert (body["observedGeneration"], body["recoveryPoints"]) == (2, 7), "rode along"
    fold_pruning(state, key, None, 5, 2)
    asyncio.run(controller.tick(now + timedelta(minutes=12)))
    assert len(client.patches) == 1
    asyncio.run(controller.tick(now + timedelta(minutes=11) + defer_at_most))
    assert len(client.patches) == 2, "waited long enough: written alone"
    assert client.patches[1][2]["recoveryPoints"] == 5
