"""The catalog at scale on Azurite: planning reads only the segments it needs.

About 20,000 synthetic recovery points over four weeks (a log every two minutes, a
weekly full, daily differentials); planning a point-in-time restore must read a
handful of blobs and finish well inside two seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sqlharbor.domain.backupset import BackupType, RecoveryPoint
from sqlharbor.vault import AzureBlobStore, Catalog, Layout
from tests.builders.records import catalog_history
from tests.builders.stores import CountingStore

pytestmark = pytest.mark.integration

INSTANCE = "VM01\\SQL2022"
GUID = "0b3c9d7e-1111-4222-8333-944455556666"
START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 28
LOG_EVERY = timedelta(minutes=2)


def _base_at(moment: datetime) -> BackupType | None:
    """A full on days 0, 7, 14, ... at 01:00; a differential at 01:00 on the others."""
    if (moment.hour, moment.minute) != (1, 0):
        return None
    return BackupType.FULL if (moment - START).days % 7 == 0 else BackupType.DIFFERENTIAL


def synthetic_history() -> list[RecoveryPoint]:
    return catalog_history(
        start=START,
        end=START + timedelta(days=DAYS),
        step=LOG_EVERY,
        base_at=_base_at,
        base_lsns=10,
        name="Orders",
        guid=GUID,
    )


@pytest.fixture(scope="module")
def big_catalog(vault_azurite: str) -> tuple[CountingStore, Catalog, list[RecoveryPoint]]:
    inner = AzureBlobStore.from_connection_string(vault_azurite, "catalog-scale")
    store = CountingStore(inner)
    catalog = Catalog(store, Layout("scale"))
    history = synthetic_history()
    catalog.register(INSTANCE, "Orders", GUID)
    catalog.add_points(INSTANCE, history)
    return store, catalog, history


def test_history_is_large(big_catalog: tuple[CountingStore, Catalog, list[RecoveryPoint]]) -> None:
    _, _, history = big_catalog
    assert len(history) > 20_000


def test_planning_a_point_in_time_restore_reads_few_blobs(
    big_catalog: tuple[CountingStore, Catalog, list[RecoveryPoint]],
) -> None:
    store, catalog, history = big_catalog
    target = START + timedelta(days=19, hours=13, minutes=37, seconds=5)
    store.reset()
    base = catalog.base_before(INSTANCE, GUID, target)
    assert base is not None
    logs = [
        p
        for p in catalog.list_points(
            INSTANCE, GUID, base.record.finish, target + timedelta(minutes=5)
        )
        if p.record.backup_type is BackupType.LOG
    ]
    assert len(store.reads) <= 3, store.reads
    assert len(store.lists) == 2
    expected_base = max(
        (p for p in history if p.record.is_base and p.record.finish <= target),
        key=lambda p: p.record.finish,
    )
    assert base == expected_base
    assert base.record.backup_type is BackupType.DIFFERENTIAL
    expected_logs = [
        p
        for p in history
        if p.record.backup_type is BackupType.LOG
        and base.record.finish <= p.record.finish <= target + timedelta(minutes=5)
    ]
    assert sorted(logs, key=lambda p: p.id) == sorted(expected_logs, key=lambda p: p.id)


def test_a_week_reads_a_week_of_segments(
    big_catalog: tuple[CountingStore, Catalog, list[RecoveryPoint]],
) -> None:
    store, catalog, history = big_catalog
    since = START + timedelta(days=7, hours=12)
    until = since + timedelta(days=6)
    store.reset()
    points = catalog.list_points(INSTANCE, GUID, since, until)
    assert len(store.reads) == 7
    assert points == sorted(
        (p for p in history if since <= p.record.finish <= until),
        key=lambda p: (p.record.finish, p.id),
    )


def test_window_and_databases_are_cheap(
    big_catalog: tuple[CountingStore, Catalog, list[RecoveryPoint]],
) -> None:
    store, catalog, history = big_catalog
    store.reset()
    window = catalog.window(INSTANCE, GUID)
    assert len(store.reads) == 2
    first_full = next(p for p in history if p.record.backup_type is BackupType.FULL)
    assert window.earliest_full == first_full
    assert window.latest == max(history, key=lambda p: (p.record.finish, p.id))
    assert [(d.instance, d.database_name) for d in catalog.databases()] == [(INSTANCE, "Orders")]
