"""The accountant folds a finished job into its databases' status once, then keeps only what
garbage collection reads of it (the per-database lists are most of a job's memory)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlharbor_operator.accounting import Accountant
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.state import State

from sqlharbor.api import JobPhase
from sqlharbor.domain.backupset import BackupType
from tests.builders.kube import FakeClient
from tests.builders.operator import T0, result


def _state() -> State:
    state = State()
    state.upsert(
        "ProtectedDatabase",
        {
            "kind": "ProtectedDatabase",
            "metadata": {"name": "i-sales", "namespace": "ns"},
            "spec": {
                "instanceRef": {"name": "i"},
                "databaseName": "sales",
                "policyRef": {"name": "p"},
            },
        },
    )
    done = result(BackupType.FULL, T0 + timedelta(minutes=1), rp="full-1")
    state.upsert(
        "BackupJob",
        {
            "kind": "BackupJob",
            "metadata": {"name": "i-full-1", "namespace": "ns", "uid": "u1"},
            "spec": {
                "instanceRef": {"name": "i"},
                "vaultRef": {"name": "v"},
                "type": "Full",
                "databases": [{"name": "sales", "protectedDatabase": "i-sales"}],
            },
            "status": {
                "phase": JobPhase.SUCCEEDED,
                "agentSession": "vm/s1",
                "completionTime": (T0 + timedelta(minutes=1)).isoformat(),
                "databases": [done.to_wire()],
            },
        },
    )
    return state


def test_a_finished_job_is_folded_once_and_then_kept_slim() -> None:
    state = _state()
    accountant = Accountant(Runtime(FakeClient(), state, clock=lambda: T0))
    asyncio.run(accountant.tick())
    status = state.databases[("ns", "i-sales")].status
    assert status is not None
    assert status.last_full is not None
    assert (status.last_full.recovery_point_id, status.last_full.job) == ("full-1", "i-full-1")
    job = state.jobs[("ns", "i-full-1")]
    assert job.status is not None
    assert (job.spec.databases, job.status.databases) == ([], [])
    assert job.status.phase is JobPhase.SUCCEEDED, "what garbage collection reads stays"
    assert state.unwritten[("ns", "i-sales")] is status
    asyncio.run(accountant.tick())
    assert state.databases[("ns", "i-sales")].status is status, "accounted once"
