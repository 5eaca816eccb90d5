"""Log backups of an instance's databases fall into step: one due now takes along the ones
due within half an interval, so N databases cost one job per interval, not N."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlharbor_operator.dispatch import Dispatcher
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.scheduling import log_alignment
from sqlharbor_operator.state import State

from sqlharbor.api.contract import LeaseInfo
from tests.builders.kube import FakeClient
from tests.builders.operator import T0, policy

NS = "ns"
SESSION = "agent1/s1"


def _obj(kind: str, name: str, spec: dict[str, Any], status: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "metadata": {"name": name, "namespace": NS}}
    body["spec"] = spec
    if status is not None:
        body["status"] = status
    return body


def _state(last_logs: dict[tuple[str, str], datetime]) -> State:
    """Instances i1/i2 served by a live agent; one ProtectedDatabase per (instance, db)
    with a full an hour ago and its last log at the given time."""
    state = State()
    vault_spec = {
        "azureBlob": {
            "container": "vault1",
            "credentials": {"secretRef": {"name": "s", "key": "k"}},
        },
        "encryption": {"keySecretRef": {"name": "k", "key": "k"}},
    }
    state.upsert("BackupVault", _obj("BackupVault", "v", vault_spec, {"phase": "Available"}))
    state.upsert(
        "BackupPolicy", policy(differential=None, log="15m").model_dump(mode="json", by_alias=True)
    )
    state.leases[(NS, "agent1")] = LeaseInfo(holder="s1", renew_time=T0, duration_seconds=30)
    for instance in sorted({i for i, _ in last_logs}):
        databases = [
            {
                "name": db,
                "databaseGuid": f"00000000-0000-0000-0000-{n:012d}",
                "recoveryModel": "FULL",
                "state": "ONLINE",
            }
            for n, (i, db) in enumerate(sorted(last_logs))
            if i == instance
        ]
        agent = {
            "sessionId": SESSION,
            "version": "t",
            "hostname": "h",
            "leaseName": "l",
            "started": T0.isoformat(),
        }
        state.upsert(
            "SqlInstance",
            _obj(
                "SqlInstance",
                instance,
                {"host": "vm", "agent": "vm"},
                {"agent": agent, "databases": databases},
            ),
        )
    for (instance, db), last_log in last_logs.items():
        backup = {"recoveryPointId": "rp", "lastLsn": "100"}
        status = {
            "lastFull": {**backup, "time": (T0 - timedelta(hours=1)).isoformat()},
            "lastLog": {**backup, "time": last_log.isoformat()},
        }
        spec = {"instanceRef": {"name": instance}, "databaseName": db, "policyRef": {"name": "p"}}
        state.upsert(
            "ProtectedDatabase", _obj("ProtectedDatabase", f"{instance}-{db}", spec, status)
        )
    return state


def _jobs(state: State) -> list[tuple[str, list[str]]]:
    client = FakeClient(creatable={"BackupJob"})
    asyncio.run(Dispatcher(Runtime(client, state, clock=lambda: T0)).tick(T0))
    return [
        (body["spec"]["type"], sorted(d["protectedDatabase"] for d in body["spec"]["databases"]))
        for body in client.created
    ]


def test_half_an_interval_early_shares_the_job_of_one_due_now() -> None:
    minute = timedelta(minutes=1)
    state = _state(
        {
            ("i1", "due"): T0 - 16 * minute,  # due a minute ago
            ("i1", "soon"): T0 - 10 * minute,  # due in 5 min: within 7.5, taken along
            ("i1", "edge"): T0 - 8 * minute,  # due in 7 min: still within
            ("i1", "later"): T0 - 5 * minute,  # due in 10 min: waits its turn
            ("i2", "other"): T0 - 10 * minute,  # due in 5 min, but on another instance
        }
    )
    assert _jobs(state) == [("Log", ["i1-due", "i1-edge", "i1-soon"])]


def test_nothing_is_taken_early_when_nothing_is_due() -> None:
    minute = timedelta(minutes=1)
    state = _state({("i1", "a"): T0 - 14 * minute, ("i1", "b"): T0 - 10 * minute})
    assert _jobs(state) == []


def test_a_full_that_would_come_due_is_not_pulled_forward() -> None:
    """Only log backups are aligned: the early pass never starts a full or differential."""
    minute = timedelta(minutes=1)
    state = _state({("i1", "due"): T0 - 16 * minute, ("i1", "nofull"): T0 - 10 * minute})
    key = (NS, "i1-nofull")
    pd = state.databases[key]
    assert pd.status is not None
    state.databases[key] = pd.model_copy(
        update={"status": pd.status.model_copy(update={"last_full": None, "last_log": None})}
    )
    # "nofull" has no full: due now as a full of its own, not taken along as a log
    jobs = sorted(_jobs(state))
    assert jobs == [("Full", ["i1-nofull"]), ("Log", ["i1-due"])]


def test_alignment_is_half_the_log_interval_and_zero_without_logs() -> None:
    assert log_alignment(policy(log="15m").spec) == timedelta(minutes=7, seconds=30)
    assert log_alignment(policy(log=None).spec) == timedelta(0)
