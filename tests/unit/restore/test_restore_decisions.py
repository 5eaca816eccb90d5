"""The operator's restore planning decisions (``restore_decisions.decide_restore``): what is
refused before any data moves, what the error names, and vault sources.  No I/O: the state
is built in memory and the catalog is a fake holding a few recovery points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlharbor_operator.restore_decisions import (
    CatalogReader,
    Planned,
    Refused,
    Wait,
    decide_restore,
)
from sqlharbor_operator.state import State

from sqlharbor.api import API_VERSION, BackupVault, RestoreJob, RestorePhase
from sqlharbor.api.contract import LeaseInfo
from sqlharbor.domain.backupset import BackupRecord, BackupType, RecoveryPoint
from sqlharbor.errors import ErrorCode
from sqlharbor.vault import DatabaseEntry
from tests.builders.kube import FakeClient
from tests.builders.records import backup_record

NS = "db"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
GUID = "11111111-2222-3333-4444-555555555555"


def _record(kind: BackupType, first: int, last: int, finish: datetime) -> BackupRecord:
    return backup_record(
        kind,
        name="sales",
        guid=GUID,
        first_lsn=first,
        last_lsn=last,
        checkpoint_lsn=first + 10 if kind is BackupType.FULL else 0,
        database_backup_lsn=0,
        differential_base_lsn=None,
        start=finish - timedelta(seconds=5),
        finish=finish,
        size_bytes=1000,
    )


POINTS = [
    RecoveryPoint("F1", _record(BackupType.FULL, 100, 200, T0)),
    RecoveryPoint("L1", _record(BackupType.LOG, 150, 300, T0 + timedelta(minutes=1))),
    RecoveryPoint("L2", _record(BackupType.LOG, 300, 400, T0 + timedelta(minutes=2))),
]


class FakeCatalog:
    def __init__(self) -> None:
        self.reads = 0

    def databases(self) -> list[DatabaseEntry]:
        self.reads += 1
        return [DatabaseEntry("vm1", "sales", GUID), DatabaseEntry("vm1", "stock", "X" * 36)]

    def list_points(
        self,
        instance: str,
        database_guid: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        verify: bool = False,
    ) -> list[RecoveryPoint]:
        self.reads += 1
        return list(POINTS) if (instance, database_guid) == ("vm1", GUID) else []


def _obj(kind: str, name: str, spec: dict[str, Any], status: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


def _state(*, served: bool = True) -> State:
    state = State()
    vault_spec = {
        "azureBlob": {
            "container": "backups",
            "credentials": {"secretRef": {"name": "s", "key": "k"}},
        },
        "encryption": {"keySecretRef": {"name": "kek", "key": "kek"}},
    }
    state.upsert("BackupVault", _obj("BackupVault", "vault", vault_spec))
    state.upsert(
        "BackupPolicy",
        _obj(
            "BackupPolicy",
            "p",
            {
                "vaultRef": {"name": "vault"},
                "schedules": {"full": {"schedule": "0 1 * * 0"}},
                "retention": {"daily": {"count": 7}},
            },
        ),
    )
    for name, host in (("sim-a", "vm1"), ("sim-b", "vm2")):
        status = {
            "agent": {"sessionId": "agent/s1"},
            "databases": [
                {
                    "name": "Existing",
                    "databaseGuid": GUID,
                    "recoveryModel": "FULL",
                    "state": "ONLINE",
                }
            ],
        }
        state.upsert(
            "SqlInstance", _obj("SqlInstance", name, {"host": host, "agent": "agent"}, status)
        )
    state.upsert(
        "ProtectedDatabase",
        _obj(
            "ProtectedDatabase",
            "sim-a-sales",
            {
                "instanceRef": {"name": "sim-a"},
                "databaseName": "sales",
                "policyRef": {"name": "p"},
            },
            {"chain": {"databaseGuid": GUID}},
        ),
    )
    assert not state.invalid
    if served:
        state.leases[(NS, "agent")] = LeaseInfo("s1", NOW, 90)
    return state


def _job(
    *,
    target: dict[str, Any] | None = None,
    point: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> RestoreJob:
    spec = {
        "source": source or {"protectedDatabase": "sim-a-sales"},
        "target": target
        or {"database": {"instanceRef": {"name": "sim-b"}, "databaseName": "sales_copy"}},
        "pointInTime": point or {"time": "2025-03-01T10:01:30Z"},
    }
    body = _obj("RestoreJob", "r", spec)
    body["metadata"]["creationTimestamp"] = NOW.isoformat()
    return RestoreJob.model_validate(body)


def _opener(catalog: CatalogReader) -> Any:
    return lambda vault: catalog


def _never(vault: BackupVault) -> CatalogReader:
    raise AssertionError("the vault must not be read")


def test_existing_target_without_overwrite_is_refused_before_reading_the_vault() -> None:
    job = _job(target={"database": {"instanceRef": {"name": "sim-b"}, "databaseName": "existing"}})
    decision = decide_restore(_state(), job, NOW, _never)
    assert isinstance(decision, Refused)
    assert decision.error.code == ErrorCode.TARGET_EXISTS
    assert "Existing" in decision.error.message
    assert "overwrite" in decision.error.remediation


def test_existing_target_with_overwrite_is_planned() -> None:
    job = _job(
        target={
            "database": {
                "instanceRef": {"name": "sim-b"},
                "databaseName": "Existing",
                "overwrite": True,
            }
        }
    )
    decision = decide_restore(_state(), job, NOW, _opener(FakeCatalog()))
    assert isinstance(decision, Planned)
    assert decision.target_instance == "sim-b"


def test_time_plan_uses_the_chain_and_stops_on_the_logs() -> None:
    decision = decide_restore(_state(), _job(), NOW, _opener(FakeCatalog()))
    assert isinstance(decision, Planned)
    plan = decision.plan
    assert [s.recovery_point_id for s in plan.steps] == ["F1", "L1", "L2"]
    assert plan.stop_at == datetime(2025, 3, 1, 10, 1, 30, tzinfo=UTC)
    assert (plan.instance, plan.database_guid, plan.database_name) == ("vm1", GUID, "sales")
    assert plan.bytes_total == 3000
    assert decision.vault == "vault"


@pytest.mark.parametrize(
    ("when", "nearest"),
    [
        ("2025-03-01T09:00:00Z", "2025-03-01T10:00:00+00:00"),
        ("2025-03-01T11:00:00Z", "2025-03-01T10:02:00+00:00"),
    ],
)
def test_target_outside_the_window_names_the_nearest_time(when: str, nearest: str) -> None:
    decision = decide_restore(_state(), _job(point={"time": when}), NOW, _opener(FakeCatalog()))
    assert isinstance(decision, Refused)
    assert decision.error.code == ErrorCode.RESTORE_POINT_OUTSIDE_WINDOW
    assert nearest in decision.error.message


def test_vault_source_by_name_needs_no_protected_database() -> None:
    state = _state()
    state.databases.clear()
    source = {"vault": {"vaultRef": {"name": "vault"}, "instance": "vm1", "databaseName": "sales"}}
    files = {"files": {"instanceRef": {"name": "sim-a"}, "path": "/restore/here"}}
    decision = decide_restore(state, _job(source=source, target=files), NOW, _opener(FakeCatalog()))
    assert isinstance(decision, Planned)
    assert decision.plan.database_guid == GUID
    assert decision.target_instance == "sim-a"


def test_vault_source_that_the_vault_does_not_hold_is_refused_with_what_it_holds() -> None:
    source = {"vault": {"vaultRef": {"name": "vault"}, "instance": "vm1", "databaseName": "nope"}}
    decision = decide_restore(_state(), _job(source=source), NOW, _opener(FakeCatalog()))
    assert isinstance(decision, Refused)
    assert decision.error.code == ErrorCode.RESTORE_SOURCE_NOT_FOUND
    assert "sales" in decision.error.message


def test_latest_and_lsn_targets() -> None:
    latest = decide_restore(_state(), _job(point={"latest": True}), NOW, _opener(FakeCatalog()))
    assert isinstance(latest, Planned)
    assert latest.plan.steps[-1].recovery_point_id == "L2"
    at_lsn = decide_restore(_state(), _job(point={"lsn": "250"}), NOW, _opener(FakeCatalog()))
    assert isinstance(at_lsn, Planned)
    assert at_lsn.plan.stop_at_lsn == "250"
    assert [s.recovery_point_id for s in at_lsn.plan.steps] == ["F1", "L1"]


def test_a_target_whose_agent_version_is_unsupported_waits_with_the_reason() -> None:
    state = _state()
    instance = state.instances[(NS, "sim-b")]  # the target
    assert instance.status is not None
    assert instance.status.agent is not None
    instance.status.agent.version = "99.0.0"
    decision = decide_restore(state, _job(), NOW, _opener(FakeCatalog()))
    assert isinstance(decision, Wait)
    assert decision.reason is ErrorCode.AGENT_VERSION_UNSUPPORTED
    assert "99.0.0" in decision.message
    assert isinstance(decide_restore(_state(), _job(), NOW, _opener(FakeCatalog())), Planned)


def test_unserved_target_waits_then_fails() -> None:
    decision = decide_restore(_state(served=False), _job(), NOW, _opener(FakeCatalog()))
    assert isinstance(decision, Wait)
    later = decide_restore(
        _state(served=False), _job(), NOW + timedelta(minutes=10), _opener(FakeCatalog())
    )
    assert isinstance(later, Refused)


def test_missing_target_instance_is_refused() -> None:
    job = _job(target={"database": {"instanceRef": {"name": "nope"}, "databaseName": "x"}})
    decision = decide_restore(_state(), job, NOW, _never)
    assert isinstance(decision, Refused)
    assert decision.error.code == ErrorCode.TARGET_INSTANCE_NOT_FOUND


def test_running_restore_of_a_dead_agent_is_failed_once() -> None:
    import asyncio

    from sqlharbor_operator.liveness import Liveness
    from sqlharbor_operator.runtime import Runtime

    state = _state(served=False)
    body = _job().to_wire()
    body["status"] = {
        "phase": RestorePhase.RUNNING,
        "agentSession": "agent/s1",
        "startTime": (NOW - timedelta(minutes=5)).isoformat(),
    }
    state.upsert("RestoreJob", body)
    client = FakeClient()
    liveness = Liveness(Runtime(client, state, clock=lambda: NOW))
    asyncio.run(liveness.tick(NOW))
    asyncio.run(liveness.tick(NOW))
    assert len(client.patches) == 1
    kind, _, patch = client.patches[0]
    assert kind == "RestoreJob"
    assert patch["phase"] == RestorePhase.FAILED
    assert patch["error"]["code"] == ErrorCode.AGENT_LOST
