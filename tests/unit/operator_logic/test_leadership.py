"""Leader election rules (``leadership``) on an in-memory Lease with resourceVersions and a
clock the test moves: who leads, when a candidate may take over, that a leader that cannot
renew stops writing before anyone else may start, and that a released lease is taken at
once.  Also the fenced API and what a takeover rebuilds."""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

import pytest
from sqlharbor_operator.accounting import apply_failure, apply_success
from sqlharbor_operator.leadership import ElectionSettings, Leadership
from sqlharbor_operator.runtime import FencedApi
from sqlharbor_operator.state import State

from sqlharbor.api import JobPhase, ProtectedDatabaseStatus
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import Conflict, ErrorCode, NotLeader, TemporaryError
from tests.builders.kube import FakeClient
from tests.builders.operator import T0, failure, result


class MemoryLeases:
    """One Lease store with the API server's optimistic concurrency."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.down:
            raise TemporaryError("the API server is unreachable")
        return copy.deepcopy(self.lease)

    async def write_lease(
        self, namespace: str, name: str, spec: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        if self.down:
            raise TemporaryError("the API server is unreachable")
        current = None if self.lease is None else self.lease["metadata"]["resourceVersion"]
        if resource_version != current:
            raise Conflict("the Lease changed")
        self.version += 1
        self.lease = {"metadata": {"resourceVersion": str(self.version)}, "spec": dict(spec)}
        return copy.deepcopy(self.lease)

    @property
    def holder(self) -> str | None:
        return None if self.lease is None else self.lease["spec"].get("holderIdentity")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _replica(leases: MemoryLeases, clock: Clock, identity: str) -> Leadership:
    settings = ElectionSettings(namespace="ops", identity=identity, lease_seconds=9.0)
    return Leadership(leases, settings, monotonic=clock)


def test_the_first_candidate_leads_and_the_second_waits() -> None:
    leases, clock = MemoryLeases(), Clock()
    a, b = _replica(leases, clock, "a"), _replica(leases, clock, "b")
    asyncio.run(a.step())
    asyncio.run(b.step())
    assert (a.holds(), b.holds(), leases.holder) == (True, False, "a")
    for _ in range(10):  # a renews every 2 s: b never takes over
        clock.now += 2
        asyncio.run(a.step())
        asyncio.run(b.step())
        assert (a.holds(), b.holds(), leases.holder) == (True, False, "a")


def test_a_leader_that_cannot_renew_stops_writing_before_another_may_take_over() -> None:
    leases, clock = MemoryLeases(), Clock()
    a, b = _replica(leases, clock, "a"), _replica(leases, clock, "b")
    asyncio.run(a.step())
    asyncio.run(b.step())  # b observes a's record now
    leases.down = True
    with pytest.raises(TemporaryError):
        asyncio.run(a.step())
    clock.now += 6.0  # the deadline is two thirds of 9 s: a stops writing here
    assert not a.holds()
    leases.down = False
    clock.now += 2.9  # 8.9 s since b saw a's last renewal: not expired yet
    asyncio.run(b.step())
    assert (b.holds(), leases.holder) == (False, "a")
    clock.now += 0.2
    asyncio.run(b.step())
    assert (b.holds(), leases.holder) == (True, "b")
    assert leases.lease is not None
    assert leases.lease["spec"]["leaseTransitions"] == 1
    asyncio.run(a.step())  # a, back, sees b hold it
    assert not a.holds()


def test_expiry_is_measured_from_when_the_candidate_saw_the_record_change() -> None:
    """Timestamps in the Lease are another machine's clock: a record written "long ago" by
    that clock is still fresh until this replica saw it unchanged for a whole duration."""
    leases, clock = MemoryLeases(), Clock()
    old = {"holderIdentity": "x", "renewTime": "2001-01-01T00:00:00.000000Z"}
    asyncio.run(leases.write_lease("ops", "l", {**old, "leaseDurationSeconds": 9}, None))
    b = _replica(leases, clock, "b")
    asyncio.run(b.step())
    assert not b.holds()
    clock.now += 9.5
    asyncio.run(b.step())
    assert b.holds()


def test_a_released_lease_is_taken_at_once() -> None:
    leases, clock = MemoryLeases(), Clock()
    a, b = _replica(leases, clock, "a"), _replica(leases, clock, "b")
    asyncio.run(a.step())
    asyncio.run(b.step())
    asyncio.run(a.release())
    assert not a.holds(), "a stops writing before it tells anyone"
    assert leases.holder is None
    clock.now += 0.5
    asyncio.run(b.step())
    assert (b.holds(), leases.holder) == (True, "b")


def test_two_candidates_racing_for_an_expired_lease_cannot_both_win() -> None:
    leases, clock = MemoryLeases(), Clock()
    a, b, c = (_replica(leases, clock, n) for n in "abc")
    asyncio.run(a.step())
    asyncio.run(b.step())
    asyncio.run(c.step())
    clock.now += 10

    async def race() -> None:
        await asyncio.gather(b.step(), c.step())

    asyncio.run(race())
    assert [b.holds(), c.holds()].count(True) == 1
    assert leases.holder in ("b", "c")


def test_the_fenced_api_sends_no_write_when_the_replica_does_not_lead() -> None:
    client = FakeClient(creatable=["BackupJob"])
    leads = [True]
    api = FencedApi(client, lambda: leads[0])
    body = {"metadata": {"generateName": "x-"}}
    asyncio.run(api.create("BackupJob", "ns", body))
    leads[0] = False
    with pytest.raises(NotLeader):
        asyncio.run(api.create("BackupJob", "ns", body))
    with pytest.raises(NotLeader):
        asyncio.run(api.patch_status("ProtectedDatabase", "ns", "pd", {}))
    with pytest.raises(NotLeader):
        asyncio.run(api.delete("BackupJob", "ns", "job-0"))
    with pytest.raises(NotLeader):
        asyncio.run(api.patch_metadata("BackupJob", "ns", "job-0", {}))
    asyncio.run(api.post_event(namespace="ns", regarding={}, reason="r", note="n"))
    assert (len(client.created), client.patches, client.deleted, client.events) == (1, [], [], [])


def _job(name: str, phase: str | None, databases: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "BackupJob",
        "metadata": {"name": name, "namespace": "ns", "uid": name},
        "spec": {
            "instanceRef": {"name": "i"},
            "vaultRef": {"name": "v"},
            "type": "Log",
            "databases": [{"name": d, "protectedDatabase": f"i-{d}"} for d in databases],
        },
    }
    if phase is not None:
        body["status"] = {"phase": phase}
    return body


def test_after_a_takeover_the_databases_of_unfinished_jobs_are_busy() -> None:
    state = State()
    state.upsert("BackupJob", _job("new", None, ["sales"]))
    state.upsert("BackupJob", _job("running", JobPhase.RUNNING, ["orders", "hr"]))
    state.upsert("BackupJob", _job("done", JobPhase.SUCCEEDED, ["finance"]))
    state.mark_busy()
    assert state.busy == {
        ("ns", "i-sales"): "new",
        ("ns", "i-orders"): "running",
        ("ns", "i-hr"): "running",
    }


def test_a_failure_older_than_the_newest_backup_is_not_folded_again() -> None:
    """After a restart or takeover every finished job is folded again: a chain-breaking
    failure that a later full already healed must not ask for another full."""
    broken = failure(ErrorCode.SQL_LSN_VALIDATION_FAILURE, "the log chain is broken")
    healed = apply_success(
        ProtectedDatabaseStatus(),
        result(BackupType.FULL, T0 + timedelta(minutes=5), rp="full-2"),
        "full-2",
        copy_only=False,
    )
    again = apply_failure(healed, broken, completed=T0 + timedelta(minutes=1))
    assert again is healed
    assert healed.chain is not None
    assert healed.chain.full_required is None
    fresh = apply_failure(healed, broken, completed=T0 + timedelta(minutes=6))
    assert fresh.chain is not None
    assert fresh.chain.full_required == "LogChainBroken"
