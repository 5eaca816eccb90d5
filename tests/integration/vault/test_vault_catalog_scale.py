"""The catalog at scale on Azurite: planning reads only the segments it needs.

About 20,000 synthetic recovery points over four weeks (a log every two minutes, a
weekly full, daily differentials); planning a point-in-time restore must read a
handful of blobs and finish well inside two seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from sqlharbor.backupset import BackupRecord, BackupType, RecoveryModel, RecoveryPoint
from sqlharbor.vault import AzureBlobStore, BlobInfo, Catalog, Layout
from sqlharbor.vault.layout import new_recovery_point_id

pytestmark = pytest.mark.integration

INSTANCE = "VM01\\SQL2022"
GUID = "0b3c9d7e-1111-4222-8333-944455556666"
START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 28
LOG_EVERY = timedelta(minutes=2)


class CountingStore:
    """Delegates to a real store and counts the reads the catalog makes."""

    def __init__(self, inner: AzureBlobStore):
        self.inner = inner
        self.gets: list[str] = []
        self.lists: list[str] = []

    def reset(self) -> None:
        self.gets.clear()
        self.lists.clear()

    def stage_block(self, name: str, block_id: str, data: bytes | bytearray | memoryview) -> None:
        self.inner.stage_block(name, block_id, data)

    def commit_blocks(self, name: str, block_ids: Sequence[str]) -> None:
        self.inner.commit_blocks(name, block_ids)

    def put(
        self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False
    ) -> None:
        self.inner.put(name, data, if_absent=if_absent)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        self.gets.append(name)
        return self.inner.get(name, offset, length)

    def exists(self, name: str) -> bool:
        self.gets.append(name)
        return self.inner.exists(name)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        self.lists.append(prefix)
        return self.inner.list(prefix)

    def delete(self, name: str) -> None:
        self.inner.delete(name)

    def append(self, name: str, data: bytes | bytearray | memoryview) -> None:
        self.inner.append(name, data)


def _point(kind: BackupType, start: datetime, first: int, last: int, base: int) -> RecoveryPoint:
    finish = start + (timedelta(minutes=20) if kind is not BackupType.LOG else timedelta(seconds=3))
    record = BackupRecord(
        database_name="Orders",
        database_guid=GUID,
        backup_type=kind,
        is_copy_only=False,
        first_lsn=first,
        last_lsn=last,
        checkpoint_lsn=first + 5,
        database_backup_lsn=base,
        differential_base_lsn=None if kind is BackupType.FULL else base + 5,
        start=start,
        finish=finish,
        recovery_model=RecoveryModel.FULL,
        size_bytes=1 << 20,
    )
    return RecoveryPoint(new_recovery_point_id(kind, start), record)


def synthetic_history() -> list[RecoveryPoint]:
    points: list[RecoveryPoint] = []
    lsn = 1_000_000_000_000_000_000_000  # numeric(25,0) territory
    full_lsn = lsn
    moment = START
    while moment < START + timedelta(days=DAYS):
        if moment.hour == 1 and moment.minute == 0:
            day = (moment - START).days
            kind = BackupType.FULL if day % 7 == 0 else BackupType.DIFFERENTIAL
            if kind is BackupType.FULL:
                full_lsn = lsn
            points.append(_point(kind, moment, lsn, lsn + 10, full_lsn))
        points.append(_point(BackupType.LOG, moment, lsn, lsn + 100, full_lsn))
        lsn += 100
        moment += LOG_EVERY
    return points


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
    assert len(store.gets) <= 3, store.gets
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
    assert len(store.gets) == 7
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
    assert len(store.gets) == 2
    first_full = next(p for p in history if p.record.backup_type is BackupType.FULL)
    assert window.earliest_full == first_full
    assert window.latest == max(history, key=lambda p: (p.record.finish, p.id))
    assert [(d.instance, d.database_name) for d in catalog.databases()] == [(INSTANCE, "Orders")]
