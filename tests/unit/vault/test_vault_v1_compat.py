"""Version-1 recovery points stay restorable: the golden point written by the version-1
writer (tests/fixtures/vault_v1) is read, restored byte for byte, listed, rebuilt and
deleted by today's code, alone and next to version-2 points of the same database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sqlharbor.domain.backupset import BackupType, RecoveryModel
from sqlharbor.errors import IntegrityError
from sqlharbor.vault import Layout, Manifest, Vault
from sqlharbor.vault.codec import AssociatedData
from sqlharbor.vault.manifest_read import read_manifest
from tests.builders.golden import FIXTURE, GoldenPoint, load_into
from tests.builders.records import backup_record
from tests.builders.stores import MemoryBlobStore

BIG_LSN = 98_765_432_109_876_543_210_000


def _restore(vault: Vault, manifest: Manifest) -> bytes:
    out = bytearray()
    buffer = bytearray(10_000)
    with vault.open_reader(manifest) as reader:
        while count := reader.readinto(buffer):
            out += buffer[:count]
    return bytes(out)


@pytest.fixture
def golden(store: MemoryBlobStore) -> GoldenPoint:
    return load_into(store)


@pytest.fixture
def vault(store: MemoryBlobStore, golden: GoldenPoint) -> Vault:
    return Vault(store, Layout(golden.prefix), golden.kek)


def _manifest(vault: Vault, golden: GoldenPoint) -> Manifest:
    return vault.manifest(golden.instance, golden.database_guid, golden.recovery_point_id)


def test_the_golden_v1_point_is_upgraded_in_memory_and_restores_byte_for_byte(
    vault: Vault, store: MemoryBlobStore, golden: GoldenPoint
) -> None:
    manifest = _manifest(vault, golden)
    assert manifest.encryption.associated_data is AssociatedData.V1
    ident = manifest.identity
    assert (ident.recovery_point_id, ident.database_id) == (
        golden.recovery_point_id,
        golden.database_guid,
    )
    assert (ident.scope.kind.value, ident.scope.name) == ("Instance", golden.instance)
    assert golden.manifest_name == f"{golden.prefix}/{ident.manifest_path}"
    assert manifest.authentication is None
    assert manifest.legacy_unauthenticated  # version 1 had no tag: readable, flagged
    b = manifest.backup
    assert (b.backup_type, b.first_lsn, b.last_lsn) == (BackupType.FULL, BIG_LSN, BIG_LSN + 4_200)
    assert (b.begins_log_chain, b.backup_set_id, b.size_bytes) == (True, "4711", 180_224)
    assert (b.recovery_model, b.recovery_fork.first, b.media) == (RecoveryModel.FULL, "", None)
    [stripe] = manifest.data.stripes
    assert (stripe.chunk_count, manifest.data.blob_count()) == (3, 2)
    assert manifest.data.raw_size == len(golden.data)

    assert _restore(vault, manifest) == golden.data
    # read, never written back: the manifest blob is the version-1 document still
    assert store.blobs[golden.manifest_name] == (FIXTURE / "manifest.json").read_bytes()


def test_the_catalog_lists_rebuilds_and_deletes_the_golden_point(
    vault: Vault, store: MemoryBlobStore, golden: GoldenPoint
) -> None:
    catalog, instance, guid = vault.catalog, golden.instance, golden.database_guid
    expected = [_manifest(vault, golden).recovery_point()]
    assert catalog.list_points(instance, guid) == expected  # the old catalog lines
    report = catalog.rebuild(instance, guid)
    assert (report.points, report.unreadable_manifests) == (1, ())
    assert catalog.list_points(instance, guid) == expected  # lines written from the manifest
    assert catalog.base_before(instance, guid, expected[0].record.finish) == expected[0]
    assert [(d.instance, d.database_name) for d in catalog.databases()] == [(instance, "Sales")]

    assert len(golden.data_blobs) == 2
    vault.delete_recovery_point(instance, guid, golden.recovery_point_id)
    assert not any(name in store.blobs for name in [golden.manifest_name, *golden.data_blobs])
    assert catalog.list_points(instance, guid) == []
    assert catalog.rebuild(instance, guid).points == 0


def test_a_damaged_or_moved_v1_point_is_refused(
    vault: Vault, store: MemoryBlobStore, golden: GoldenPoint
) -> None:
    manifest = _manifest(vault, golden)
    last_blob = golden.data_blobs[-1]
    saved = store.blobs[last_blob]
    store.blobs[last_blob] = saved[:-1] + bytes([saved[-1] ^ 1])
    with pytest.raises(IntegrityError, match="last chunk 2 failed"):
        _restore(vault, manifest)
    store.blobs[last_blob] = saved

    body = store.blobs[golden.manifest_name]
    layout = vault.layout
    elsewhere = [
        layout.locate(golden.instance, golden.database_guid, "20261124T180102Z-F-0000beef"),
        layout.locate(
            golden.instance, "0b2c7a4e-1111-4222-8333-944455556666", golden.recovery_point_id
        ),
        layout.locate("HOST\\SQL02", golden.database_guid, golden.recovery_point_id),
    ]
    for location in elsewhere:
        with pytest.raises(IntegrityError, match="was moved or copied"):
            read_manifest(body, location)
    edited = body.replace(b'"format_version": 1', b'"format_version": 2')
    own = layout.locate(golden.instance, golden.database_guid, golden.recovery_point_id)
    with pytest.raises(IntegrityError, match="not a valid sqlharbor manifest"):
        read_manifest(edited, own)


def test_a_vault_with_v1_and_v2_points_of_one_database_lists_and_restores_both(
    vault: Vault, store: MemoryBlobStore, golden: GoldenPoint
) -> None:
    old = _manifest(vault, golden)
    log = backup_record(
        BackupType.LOG,
        guid=golden.database_guid,
        first_lsn=BIG_LSN + 4_200,
        last_lsn=BIG_LSN + 9_000,
        start=old.backup.finish + timedelta(minutes=1),
    )
    writer = vault.open_writer(golden.instance, "Sales", golden.database_guid, BackupType.LOG)
    writer.write(b"log records after the v1 full" * 100)
    new = writer.commit(log)
    assert new.format_version == 2
    assert new.encryption.associated_data is AssociatedData.V2

    catalog, instance, guid = vault.catalog, golden.instance, golden.database_guid
    both = [old.recovery_point(), new.recovery_point()]
    assert catalog.list_points(instance, guid) == both
    assert catalog.rebuild(instance, guid).points == 2
    assert catalog.list_points(instance, guid) == both
    loaded = [vault.manifest(instance, guid, p.id) for p in both]
    assert [m.format_version for m in loaded] == [2, 2]  # both in the v2 model in memory
    assert _restore(vault, loaded[0]) == golden.data
    assert _restore(vault, loaded[1]) == b"log records after the v1 full" * 100

    for point in both:
        vault.delete_recovery_point(instance, guid, point.id)
    assert catalog.list_points(instance, guid) == []
    point_dirs = [vault.layout.point_dir(instance, guid, p.id) for p in both]
    assert not [n for n in store.blobs if n.startswith(tuple(point_dirs))]
