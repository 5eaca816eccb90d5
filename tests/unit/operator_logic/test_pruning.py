"""The operator's retention pass against an in-memory catalog."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import pytest
from sqlharbor_operator.health import assess
from sqlharbor_operator.pruning import RetentionPass, fold_pruning
from sqlharbor_operator.state import State

from sqlharbor.api import Health, LastBackup
from sqlharbor.domain.backupset import BackupType, PointKey, RecoveryPoint
from sqlharbor.errors import BlobNotFound, ContainerNotFound, ErrorCode, VaultAccessDenied
from tests.builders.operator import GUID, T0
from tests.builders.records import backup_record


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
    record = backup_record(
        kind,
        name="sales",
        guid=GUID,
        first_lsn=first,
        last_lsn=last,
        checkpoint_lsn=first,
        database_backup_lsn=0,
        differential_base_lsn=first if kind is BackupType.DIFFERENTIAL else None,
        start=finish,
        finish=finish,
        size_bytes=0,
    )
    return RecoveryPoint(f"p{i:04d}", record)


def _pass(
    catalog: object, reports: list[tuple[object, ...]], concurrency: int = 1
) -> RetentionPass:
    """A pass over ``catalog`` (for every vault) every ten minutes, reports collected."""
    return RetentionPass(
        lambda vault: catalog,  # type: ignore[arg-type,return-value]
        timedelta(minutes=10),
        lambda *args: reports.append(args),
        concurrency,
    )


def _state() -> State:
    state = State(loaded=True)
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
    pass_ = _pass(catalog, reports)
    now = points[-1].record.finish + timedelta(minutes=1)

    async def tick_and_wait(at: datetime) -> None:
        task = await pass_.tick(_state(), at)
        if task is not None:
            await task

    asyncio.run(tick_and_wait(now))
    assert catalog.deleted, "ten days of points with two days of retention: old ones go"
    oldest_kept = min(p.record.finish for p in catalog.points.values())
    assert oldest_kept >= now - timedelta(days=2, hours=1)
    ((key, earliest, kept, deleted, unreadable),) = reports
    assert unreadable == []
    assert key == ("ns", "sales")
    assert kept == len(catalog.points)
    assert deleted == len(catalog.deleted)
    assert earliest is not None
    assert earliest >= oldest_kept
    # the pass runs again only after its interval
    catalog.deleted.clear()
    asyncio.run(tick_and_wait(now + timedelta(minutes=1)))
    assert catalog.deleted == []


class FailingCatalog:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def list_points(self, instance: str, guid: str) -> list[RecoveryPoint]:
        self.calls += 1
        raise self.error


def _three_databases_on_one_vault(more: int = 0) -> State:
    state = _state()
    for name in ("hr", "ops", *(f"db{i}" for i in range(more))):
        state.upsert(
            "ProtectedDatabase",
            {
                "kind": "ProtectedDatabase",
                "metadata": {"namespace": "ns", "name": name},
                "spec": {
                    "instanceRef": {"name": "i"},
                    "databaseName": name,
                    "policyRef": {"name": "p"},
                },
                "status": {"databaseGuid": GUID},
            },
        )
    return state


@pytest.mark.parametrize(
    ("error", "level"),
    [
        (ContainerNotFound("list 'x': the container does not exist"), logging.INFO),
        (VaultAccessDenied("list 'x': access denied (HTTP 403)"), logging.WARNING),
    ],
)
def test_a_vault_wide_failure_is_told_once_and_its_other_databases_skipped(
    error: Exception, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = FailingCatalog(error)
    reports: list[tuple[object, ...]] = []
    pass_ = _pass(catalog, reports)
    caplog.set_level(logging.INFO, logger="sqlharbor_operator.pruning")
    asyncio.run(pass_.run(_three_databases_on_one_vault(), T0))
    assert catalog.calls == 1, "the other two databases on the vault would fail the same way"
    assert reports == []
    *told, summary = [r for r in caplog.records if r.name == "sqlharbor_operator.pruning"]
    (entry,) = told
    assert entry.levelno == level
    assert "ns/v" in entry.getMessage()
    assert "1 database(s)" in summary.getMessage()
    assert "1 vault(s) skipped" in summary.getMessage()


def test_a_database_failure_does_not_skip_the_others(caplog: pytest.LogCaptureFixture) -> None:
    catalog = FailingCatalog(BlobNotFound("read 'segment': not found"))
    pass_ = _pass(catalog, [])
    asyncio.run(pass_.run(_three_databases_on_one_vault(), T0))
    assert catalog.calls == 3
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3


def test_with_catalogs_read_at_once_a_failing_vault_still_costs_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    catalog = FailingCatalog(ContainerNotFound("list 'x': the container does not exist"))
    caplog.set_level(logging.INFO, logger="sqlharbor_operator.pruning")
    asyncio.run(_pass(catalog, [], concurrency=4).run(_three_databases_on_one_vault(30), T0))
    assert catalog.calls <= 4, "only the reads already in flight meet the failure"
    told = [r for r in caplog.records if "no container" in r.getMessage()]
    assert len(told) == 1


def test_no_pass_starts_before_the_state_is_loaded() -> None:
    catalog = FailingCatalog(BlobNotFound("read 'segment': not found"))
    pass_ = _pass(catalog, [])
    state = _three_databases_on_one_vault()
    state.loaded = False

    async def ticks() -> None:
        assert await pass_.tick(state, T0) is None
        assert catalog.calls == 0
        state.loaded = True
        task = await pass_.tick(state, T0)
        assert task is not None, "loaded: the first pass starts at once"
        await task

    asyncio.run(ticks())
    assert catalog.calls == 3


class _OnlyKey:
    """A keyring that opens the points wrapped with key ``k-new`` only."""

    def opens(self, point: RecoveryPoint) -> bool:
        return point.key is not None and point.key.key_id == "k-new"


def test_points_under_a_key_the_vault_dropped_are_unreadable_and_out_of_the_window() -> None:
    old, new = PointKey("RSA-OAEP-256", "k-old", "v1"), PointKey("RSA-OAEP-256", "k-new", "v2")
    at = T0 + timedelta(days=1)
    points = []
    for number, key in enumerate((old, old, new, new)):  # full, log under each key
        kind = BackupType.FULL if number % 2 == 0 else BackupType.LOG
        point = _point(number, kind, at + timedelta(hours=number), 100 + number, 101 + number)
        points.append(RecoveryPoint(point.id, point.record, key=key))
    catalog = FakeCatalog(points)
    reports: list[tuple[object, ...]] = []
    pass_ = RetentionPass(
        lambda vault: catalog,  # type: ignore[arg-type,return-value]
        timedelta(minutes=10),
        lambda *args: reports.append(args),
        1,
        open_keys=lambda vault: _OnlyKey(),
    )
    state = _state()

    async def run() -> None:
        task = await pass_.tick(state, at + timedelta(hours=5))
        assert task is not None
        await task

    asyncio.run(run())
    ((key, earliest, kept, _, unreadable),) = reports
    assert [p.id for p in unreadable] == ["p0000", "p0001"]
    assert earliest == points[2].record.finish  # the window starts at the readable full
    fold_pruning(state, key, earliest, kept, 0, unreadable)
    status = state.unwritten[key]
    assert status.unreadable_points == 2
    assert status.unreadable_keys == ["key k-old version v1 (RSA-OAEP-256)"]
    verdict = assess(
        status.model_copy(update={"last_full": LastBackup(time=at, recovery_point_id="p0002")}),
        now=at,
        suspended=False,
        problem=None,
        log_interval=None,
        recovery_model=None,
    )
    assert (verdict.health, verdict.reason) == (Health.WARNING, ErrorCode.KEY_NOT_LISTED)
    assert "k-old" in verdict.message
