"""The vault against a real Azurite: streams, visibility, create-only, catalog, errors."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sqlharbor.domain.backupset import BackupRecord, BackupType, RecoveryPoint
from sqlharbor.errors import (
    AlreadyExists,
    BlobNotFound,
    ContainerNotFound,
    ErrorCode,
    PermanentError,
    RecoveryPointNotFound,
    TemporaryError,
)
from sqlharbor.vault import (
    AzureBlobStore,
    Layout,
    Manifest,
    RetryPolicy,
    Vault,
    VaultSettings,
)
from sqlharbor.vault.codec import AssociatedData
from tests.builders.golden import load_into
from tests.builders.keys import keyring
from tests.builders.records import backup_record

pytestmark = pytest.mark.integration

INSTANCE = "VM01\\SQL2022"
GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
CHUNK = 256 * 1024
T0 = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def record(
    backup_type: BackupType, start: datetime, first: int, last: int, *, copy_only: bool = False
) -> BackupRecord:
    return backup_record(
        backup_type,
        guid=GUID,
        copy_only=copy_only,
        first_lsn=first,
        last_lsn=last,
        checkpoint_lsn=first + 1,
        database_backup_lsn=first,
        differential_base_lsn=None if backup_type is BackupType.FULL else 1001,
        start=start,
        duration=timedelta(seconds=20),
        size_bytes=0,
    )


def backup(
    vault: Vault, data: bytes, rec: BackupRecord | None = None, **kwargs: object
) -> Manifest:
    rec = rec or record(BackupType.FULL, T0, 1000, 2000)
    writer = vault.open_writer(INSTANCE, "Sales", GUID, rec.backup_type, **kwargs)  # type: ignore[arg-type]
    view = memoryview(data)
    for offset in range(0, len(data), 100_000):
        writer.write(view[offset : offset + 100_000])
    return writer.commit(rec)


def restore(vault: Vault, manifest: Manifest) -> bytes:
    out = bytearray()
    buffer = bytearray(64 * 1024)
    with vault.open_reader(manifest) as reader:
        while count := reader.readinto(buffer):
            out += buffer[:count]
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * 1024 * 1024 + 17])
def test_stream_round_trip(azure_vault: Vault, size: int) -> None:
    data = (os.urandom(size // 3 + 1) + bytes(size))[:size]
    manifest = backup(azure_vault, data)
    loaded = azure_vault.manifest(INSTANCE, GUID, manifest.identity.recovery_point_id)
    assert loaded == manifest
    assert loaded.integrity.raw_sha256 == hashlib.sha256(data).hexdigest()
    assert restore(azure_vault, loaded) == data


def test_a_point_without_manifest_is_invisible(azure_vault: Vault) -> None:
    manifest = backup(azure_vault, b"x" * 1000)
    store, layout = azure_vault.store, azure_vault.layout
    store.delete(layout.manifest_blob(INSTANCE, GUID, manifest.identity.recovery_point_id))
    with pytest.raises(RecoveryPointNotFound):
        azure_vault.manifest(INSTANCE, GUID, manifest.identity.recovery_point_id)
    assert azure_vault.catalog.list_points(INSTANCE, GUID, verify=True) == []
    assert azure_vault.catalog.rebuild(INSTANCE, GUID).points == 0
    assert azure_vault.catalog.list_points(INSTANCE, GUID) == []


def test_an_aborted_writer_leaves_no_visible_point(azure_vault: Vault) -> None:
    writer = azure_vault.open_writer(INSTANCE, "Sales", GUID, BackupType.FULL)
    writer.write(os.urandom(3 * CHUNK))
    point = writer.target.recovery_point_id
    writer.abort()
    prefix = azure_vault.layout.point_dir(INSTANCE, GUID, point)
    assert list(azure_vault.store.list(prefix)) == []  # staged blocks are not blobs
    with pytest.raises(RecoveryPointNotFound):
        azure_vault.manifest(INSTANCE, GUID, point)
    assert azure_vault.catalog.rebuild(INSTANCE, GUID).points == 0


def test_create_only_refuses_a_second_writer(azure_vault: Vault) -> None:
    first = backup(azure_vault, b"first writer")
    with pytest.raises(AlreadyExists):
        backup(azure_vault, b"second writer", recovery_point_id=first.identity.recovery_point_id)
    assert restore(azure_vault, first) == b"first writer"
    name = azure_vault.layout.manifest_blob(INSTANCE, GUID, first.identity.recovery_point_id)
    with pytest.raises(AlreadyExists):
        azure_vault.store.put(name, b"{}", if_absent=True)


def test_catalog_append_list_and_rebuild_agree(azure_vault: Vault) -> None:
    catalog = azure_vault.catalog
    full = backup(azure_vault, b"full", record(BackupType.FULL, T0, 1000, 2000))
    logs = [
        backup(
            azure_vault,
            b"log %d" % i,
            record(BackupType.LOG, T0 + timedelta(hours=10 * i), 2000 + i, 2001 + i),
        )
        for i in range(1, 5)
    ]
    diff = backup(
        azure_vault, b"diff", record(BackupType.DIFFERENTIAL, T0 + timedelta(days=2), 3000, 3100)
    )
    expected = sorted(
        [m.recovery_point() for m in [full, *logs, diff]], key=lambda p: (p.record.finish, p.id)
    )
    assert catalog.list_points(INSTANCE, GUID) == expected
    window = catalog.window(INSTANCE, GUID)
    assert window.earliest_full == full.recovery_point()
    assert window.latest == expected[-1]
    assert catalog.base_before(INSTANCE, GUID, T0 + timedelta(days=3)) == diff.recovery_point()
    assert catalog.base_before(INSTANCE, GUID, T0 + timedelta(days=1)) == full.recovery_point()
    assert catalog.base_before(INSTANCE, GUID, T0) is None
    [entry] = catalog.databases()
    assert (entry.instance, entry.database_name, entry.database_guid) == (INSTANCE, "Sales", GUID)

    # Lose the index, add a stale entry, rebuild from the manifests: equal again.
    store = azure_vault.store
    for blob in list(store.list(azure_vault.layout.catalog_dir(INSTANCE, GUID))):
        store.delete(blob.name)
    ghost = record(BackupType.LOG, T0 + timedelta(hours=5), 2500, 2501)
    catalog.add_points(INSTANCE, [RecoveryPoint("20261124T230000Z-L-0000dead", ghost)])
    report = catalog.rebuild(INSTANCE, GUID)
    assert report.points == len(expected)
    assert catalog.list_points(INSTANCE, GUID) == expected

    # A new cluster (a fresh Vault over the same container) finds the database.
    fresh = Vault(store, azure_vault.layout, azure_vault.keys)
    assert [e.database_guid for e in fresh.catalog.databases()] == [GUID]

    azure_vault.delete_recovery_point(INSTANCE, GUID, logs[0].identity.recovery_point_id)
    assert logs[0].recovery_point() not in catalog.list_points(INSTANCE, GUID)


def test_from_settings_and_wrong_credentials(vault_azurite: str) -> None:
    container = f"v-{uuid.uuid4().hex[:12]}"
    settings = VaultSettings(container=container, keys=keyring(), connection_string=vault_azurite)
    assert "AccountKey" not in repr(settings)
    vault = Vault.from_settings(settings)
    manifest = backup(vault, b"via settings")
    assert restore(vault, manifest) == b"via settings"

    bad = vault_azurite.replace("AccountKey=Eby8", "AccountKey=AAAA")
    with pytest.raises(PermanentError) as caught:
        AzureBlobStore.from_connection_string(bad, container).get("nothing")
    assert "AccountKey" not in str(caught.value)
    assert "AAAA" not in str(caught.value)
    with pytest.raises(PermanentError, match="malformed"):
        AzureBlobStore.from_connection_string("garbage;;", container)


def test_missing_blob_and_unreachable_service(azure_store: AzureBlobStore) -> None:
    with pytest.raises(BlobNotFound):
        azure_store.get("no/such/blob")
    assert not azure_store.exists("no/such/blob")
    azure_store.delete("no/such/blob")  # not an error
    port_closed = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=AAAA;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    dead = AzureBlobStore.from_connection_string(
        port_closed, "c", create=False, retry=RetryPolicy(attempts=2, initial_wait=0.01)
    )
    with pytest.raises(TemporaryError, match="cannot reach") as caught:
        dead.get("x")
    assert "AccountKey" not in str(caught.value)


def test_a_missing_container_is_told_apart_from_a_missing_blob(
    vault_azurite: str, azure_store: AzureBlobStore
) -> None:
    with pytest.raises(BlobNotFound) as caught:
        azure_store.get("no/such/blob")
    assert not isinstance(caught.value, ContainerNotFound)
    absent = AzureBlobStore.from_connection_string(
        vault_azurite, f"absent-{uuid.uuid4().hex[:12]}", create=False
    )
    with pytest.raises(ContainerNotFound, match="container does not exist") as missing:
        list(absent.list("points/"))
    assert missing.value.code == ErrorCode.VAULT_CONTAINER_NOT_FOUND


def test_the_golden_v1_point_restores_from_azurite(azure_store: AzureBlobStore) -> None:
    """The version-1 fixture, committed block by block with its recorded block ids into a
    real blob service, is read, restored, rebuilt into the catalog and deleted."""
    golden = load_into(azure_store)
    vault = Vault(azure_store, Layout(golden.prefix), golden.kek)
    instance, guid = golden.instance, golden.database_guid
    manifest = vault.manifest(instance, guid, golden.recovery_point_id)
    assert manifest.encryption.associated_data is AssociatedData.V1
    assert restore(vault, manifest) == golden.data
    assert vault.catalog.list_points(instance, guid) == [manifest.recovery_point()]
    assert vault.catalog.rebuild(instance, guid).points == 1
    assert vault.catalog.list_points(instance, guid) == [manifest.recovery_point()]
    vault.delete_recovery_point(instance, guid, golden.recovery_point_id)
    point_dir = vault.layout.point_dir(instance, guid, golden.recovery_point_id)
    assert list(azure_store.list(point_dir)) == []
    assert vault.catalog.list_points(instance, guid) == []
