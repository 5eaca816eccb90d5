"""Assignment labels every claimable job with its instance's agent (the fence policy lets
only that agent write the job), relabels unclaimed jobs after a reassignment, and leaves
claimed and finished jobs, and jobs of instances without an agent, alone."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlharbor_operator.assignment import Assigner
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.state import State

from sqlharbor.api import JobPhase, RestorePhase, contract
from tests.builders.kube import FakeClient
from tests.builders.operator import T0


def _instance(state: State, name: str, agent: str | None) -> None:
    spec: dict[str, Any] = {"host": name, "engine": "simulated"}
    if agent:
        spec["agent"] = agent
    state.upsert(
        "SqlInstance",
        {"kind": "SqlInstance", "metadata": {"name": name, "namespace": "ns"}, "spec": spec},
    )


def _backup_job(
    state: State, name: str, instance: str, *, agent: str | None = None, status: Any = None
) -> None:
    body: dict[str, Any] = {
        "kind": "BackupJob",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "labels": {contract.LABEL_AGENT: agent} if agent else {},
        },
        "spec": {
            "instanceRef": {"name": instance},
            "vaultRef": {"name": "v"},
            "type": "Full",
            "databases": [{"name": "sales", "protectedDatabase": "sales"}],
        },
    }
    if status:
        body["status"] = status
    state.upsert("BackupJob", body)


def _run(state: State) -> list[tuple[str, str, dict[str, Any]]]:
    client = FakeClient()
    asyncio.run(Assigner(Runtime(client, state, clock=lambda: T0)).tick())
    return client.patches


def test_unassigned_and_reassigned_claimable_jobs_get_the_instances_agent() -> None:
    state = State()
    _instance(state, "i", "vm2")
    _instance(state, "lonely", None)
    _backup_job(state, "user-made", "i")
    _backup_job(state, "before-reassign", "i", agent="vm1")
    _backup_job(state, "right", "i", agent="vm2")
    _backup_job(state, "lonely-job", "lonely")
    _backup_job(
        state,
        "running",
        "i",
        agent="vm1",
        status={"phase": JobPhase.RUNNING, "agentSession": "vm1/s"},
    )
    _backup_job(state, "done", "i", agent="vm1", status={"phase": JobPhase.SUCCEEDED})

    patches = _run(state)

    assert sorted(name for _, name, _ in patches) == ["before-reassign", "user-made"]
    for kind, _, body in patches:
        assert kind == "BackupJob"
        assert body == {"metadata": {"labels": {contract.LABEL_AGENT: "vm2"}}}
    assert state.jobs[("ns", "user-made")].metadata.labels == {contract.LABEL_AGENT: "vm2"}
    assert _run(state) == [], "labelled jobs are not patched again"


def test_the_label_is_written_against_the_version_read() -> None:
    """An agent that claimed the job since keeps it: the patch carries the resourceVersion
    (the API server answers 409 and the job stays with the agent that runs it)."""
    state = State()
    _instance(state, "i", "vm2")
    _backup_job(state, "j", "i", agent="vm1")
    state.jobs[("ns", "j")].metadata.resource_version = "41"
    [(_, _, body)] = _run(state)
    assert body["metadata"]["resourceVersion"] == "41"


def test_a_planned_restore_follows_its_target_instance() -> None:
    state = State()
    _instance(state, "target", "vm3")
    state.upsert(
        "RestoreJob",
        {
            "kind": "RestoreJob",
            "metadata": {
                "name": "r",
                "namespace": "ns",
                "labels": {contract.LABEL_TARGET_INSTANCE: "target"},
            },
            "spec": {
                "source": {"protectedDatabase": "sales"},
                "target": {
                    "database": {"instanceRef": {"name": "target"}, "databaseName": "Sales2"}
                },
                "pointInTime": {"time": "2026-11-24T09:15:30Z"},
            },
            "status": {"phase": RestorePhase.PLANNED},
        },
    )
    assert _run(state) == [
        ("RestoreJob", "r", {"metadata": {"labels": {contract.LABEL_AGENT: "vm3"}}})
    ]
