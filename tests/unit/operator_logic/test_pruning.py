"""The operator's retention pass against an in-memory catalog."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlharbor_operator.pruning import RetentionPass
from sqlharbor_operator.state import State

from sqlharbor.backupset import BackupRecord, BackupType, RecoveryModel, RecoveryPoint

from .builders import GUID, T0


class FakeCatalog:
    def __init__(self, points: list[RecoveryPoint]) -> None:
        self.points = {p.id: p for p in points}
        self.deleted: list[str] = []

    def list_points(self, instance: str, guid: str) -> list[RecoveryPoint]:
        assert (instance, guid) == ("vm1", GUID)
        return list(self.points.values())

    def delete_point(self, instance: str, guid: str, point_id: str) -> bool:
        self.deleted.append(point_id)
        return self.points.pop(point_id, None) is not None


def _point(i: int, kind: BackupType, finish: datetime, first: int, last: int) -> RecoveryPoint:
    record = BackupRecord(
        "sales",
        GUID,
        kind,
        False,
        first,
        last,
        first,
        0,
        first if kind is BackupType.DIFFERENTIAL else None,
        finish,
        finish,
        RecoveryModel.FULL,
    )
    return RecoveryPoint(f"p{i:04d}", record)


def _state() -> State:
    state = State()
    meta = {"namespace": "ns"}
    state.upsert(
        "BackupPolicy",
        {
            "kind": "BackupPolicy",
            "metadata": {**meta, "name": "p"},
            "spec": {
                "vaultRef": {"name": "v"},
                "schedules": {"full": {"schedule": "@daily"}, "log": {"interval": "1h"}},
                "retention": {"daily": {"count": 2}, "logDays": 1},
            },
        },
    )
    state.upsert(
        "BackupVault",
        {
            "kind": "BackupVault",
            "metadata": {**meta, "name": "v"},
            "spec": {
                "azureBlob": {
                    "container": "abc",
                    "credentials": {"secretRef": {"name": "s", "key": "k"}},
                },
                "encryption": {"keySecretRef": {"name": "k", "key": "k"}},
            },
        },
    )
    state.upsert(
        "SqlInstance",
        {"kind": "SqlInstance", "metadata": {**meta, "name": "i"}, "spec": {"host": "vm1"}},
    )
    state.upsert(
        "ProtectedDatabase",
        {
            "kind": "ProtectedDatabase",
            "metadata": {**meta, "name": "sales"},
            "spec": {
                "instanceRef": {"name": "i"},
                "databaseName": "sales",
                "policyRef": {"name": "p"},
            },
            "status": {"databaseGuid": GUID},
        },
    )
    return state


def test_old_points_are_pruned_and_status_learns_the_new_earliest() -> None:
    points, lsn = [], 100
    for day in range(10):  # a daily full and hourly logs for ten days
        at = T0 + timedelta(days=day)
        points.append(_point(len(points), BackupType.FULL, at, lsn, lsn + 1))
        for hour in range(1, 24):
            points.append(
                _point(len(points), BackupType.LOG, at + timedelta(hours=hour), lsn, lsn + 10)
            )
            lsn += 10
    catalog = FakeCatalog(points)
    reports: list[tuple[object, ...]] = []
    pass_ = RetentionPass(
        lambda vault: catalog,  # type: ignore[arg-type,return-value]
        timedelta(minutes=10),
        lambda *args: reports.append(args),
    )
    now = points[-1].record.finish + timedelta(minutes=1)

    async def tick_and_wait(at: datetime) -> None:
        task = await pass_.tick(_state(), at)
        if task is not None:
            await task

    asyncio.run(tick_and_wait(now))
    assert catalog.deleted, "ten days of points with two days of retention: old ones go"
    oldest_kept = min(p.record.finish for p in catalog.points.values())
    assert oldest_kept >= now - timedelta(days=2, hours=1)
    ((key, earliest, kept, deleted),) = reports
    assert key == ("ns", "sales")
    assert kept == len(catalog.points)
    assert deleted == len(catalog.deleted)
    assert earliest is not None
    assert earliest >= oldest_kept
    # the pass runs again only after its interval
    catalog.deleted.clear()
    asyncio.run(tick_and_wait(now + timedelta(minutes=1)))
    assert catalog.deleted == []
