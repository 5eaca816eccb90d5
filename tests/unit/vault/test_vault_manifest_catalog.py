"""Manifest conversions and the catalog's bookkeeping over an in-memory store."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from sqlharbor.domain.backupset import BackupType, RecoveryPoint
from sqlharbor.errors import IntegrityError
from sqlharbor.vault import Catalog, Layout, Manifest, Vault
from sqlharbor.vault.catalog import entry_line, parse_segment, tombstone_line
from sqlharbor.vault.manifest_read import read_manifest
from tests.builders.keys import rsa_key
from tests.builders.records import T0, backup_record
from tests.builders.stores import MemoryBlobStore

GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
INSTANCE = "HOST\\SQL01"
BIG_LSN = 98_765_432_109_876_543_210_000  # numeric(25,0): wider than 64 bits


def _commit(vault: Vault, **record_args: object) -> Manifest:
    record = backup_record(guid=GUID, **record_args)  # type: ignore[arg-type]
    writer = vault.open_writer(
        INSTANCE, record.database_name, GUID, record.backup_type, copy_only=record.is_copy_only
    )
    writer.write(b"payload")
    return writer.commit(record)


def _read(vault: Vault, manifest: Manifest, body: bytes | None = None) -> Manifest:
    location = vault.layout.locate(INSTANCE, GUID, manifest.identity.recovery_point_id)
    return read_manifest(manifest.to_json() if body is None else body, location)


def test_manifest_round_trips_records_and_keeps_big_lsns_exact(
    make_vault: Callable[..., Vault],
) -> None:
    vault = make_vault()
    manifest = _commit(vault, first_lsn=BIG_LSN, last_lsn=BIG_LSN + 99)
    doc = json.loads(manifest.to_json())
    assert doc["backup"]["first_lsn"] == str(BIG_LSN)  # a string: exact in any JSON reader
    assert doc["format_version"] == 2
    assert doc["encryption"]["data_key"]["key_id"] == rsa_key().key_id
    assert doc["encryption"]["data_key"]["wrap"] == "RSA-OAEP-256"
    assert doc["authentication"]["algorithm"] == "HMAC-SHA256"
    assert doc["authentication"]["key_id"] == doc["encryption"]["data_key"]["key_id"]
    assert rsa_key().private_pem().decode().splitlines()[1] not in manifest.to_json().decode()
    again = _read(vault, manifest)
    assert again == manifest
    assert again.to_record() == backup_record(guid=GUID, first_lsn=BIG_LSN, last_lsn=BIG_LSN + 99)
    assert again.recovery_point().id == manifest.identity.recovery_point_id


def _first_stripe(doc: dict[str, Any]) -> dict[str, Any]:
    stripe: dict[str, Any] = doc["data"]["stripes"][0]
    return stripe


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda d: _first_stripe(d).update(chunk_count=5), "chunk_stored_sizes must list every"),
        (lambda d: d.update(format_version=0), "format_version"),
        (lambda d: d.update(format_version="2"), "format_version"),
        (lambda d: d["integrity"].pop("raw_sha256"), "raw_sha256"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d["backup"].update(surprise=1), "surprise"),
        (lambda d: d["backup"].update(first_lsn=1.5), "first_lsn"),
        (lambda d: d["encryption"]["data_key"].update(wrapped="not base64!"), "wrapped"),
        (lambda d: d["data"].update(raw_size=10**9), "raw_size"),
        (lambda d: d["backup"].update(copy_only="false"), "copy_only"),  # strict JSON types
        (lambda d: d["data"].update(chunk_size=float(d["data"]["chunk_size"])), "chunk_size"),
        (lambda d: d["identity"]["scope"].pop("id"), "identity.scope.id"),
    ],
)
def test_invalid_manifests_are_integrity_errors(
    make_vault: Callable[..., Vault], edit: Callable[[dict[str, Any]], object], fragment: str
) -> None:
    vault = make_vault()
    manifest = _commit(vault)
    doc = json.loads(manifest.to_json())
    edit(doc)
    with pytest.raises(IntegrityError, match=fragment):
        _read(vault, manifest, json.dumps(doc).encode())
    for garbage in (b"{not json", b"[]", b"\xff"):
        with pytest.raises(IntegrityError, match="not a valid sqlharbor manifest"):
            _read(vault, manifest, garbage)


def _point(point_id: str, **record_args: object) -> RecoveryPoint:
    return RecoveryPoint(point_id, backup_record(guid=GUID, **record_args))  # type: ignore[arg-type]


def test_segment_lines_round_trip_with_tombstones_and_duplicates() -> None:
    a = _point("20261124T180000Z-F-00000001", first_lsn=BIG_LSN)
    b = _point("20261124T181000Z-L-00000002", backup_type=BackupType.LOG)
    data = entry_line(a) + entry_line(b) + entry_line(b) + tombstone_line(a.id)
    assert parse_segment(data) == {b.id: b}
    with pytest.raises(IntegrityError, match="line 2"):
        parse_segment(entry_line(a) + b'{"id": 1}\n', name="seg")


def test_catalog_indexes_commits_by_day_and_year(
    make_vault: Callable[..., Vault], store: MemoryBlobStore
) -> None:
    vault = make_vault()
    full = _commit(vault)
    day2 = _commit(vault, backup_type=BackupType.LOG, start=T0 + timedelta(days=1))
    layout = vault.layout
    assert store.blobs[layout.points_segment(INSTANCE, GUID, T0)].count(b"\n") == 1
    assert store.blobs[layout.points_segment(INSTANCE, GUID, day2.backup.finish)].count(b"\n") == 1
    assert store.blobs[layout.bases_segment(INSTANCE, GUID, 2026)].count(b"\n") == 1
    catalog = vault.catalog
    assert not catalog.endorsement.required()  # its marker is read once, here
    store.gets.clear()
    assert catalog.list_points(INSTANCE, GUID, since=T0 + timedelta(hours=12)) == [
        day2.recovery_point()
    ]
    assert len(store.gets) == 1  # only the second day's segment
    assert catalog.bases(INSTANCE, GUID) == [full.recovery_point()]


def test_verify_drops_points_whose_manifest_is_gone(
    make_vault: Callable[..., Vault], store: MemoryBlobStore
) -> None:
    vault = make_vault()
    kept, lost = _commit(vault), _commit(vault, start=T0 + timedelta(minutes=5))
    del store.blobs[vault.layout.manifest_blob(INSTANCE, GUID, lost.identity.recovery_point_id)]
    catalog = vault.catalog
    assert len(catalog.list_points(INSTANCE, GUID)) == 2  # the cheap read trusts the index
    assert catalog.list_points(INSTANCE, GUID, verify=True) == [kept.recovery_point()]
    report = catalog.rebuild(INSTANCE, GUID)
    assert (report.points, report.unreadable_manifests) == (1, ())
    assert catalog.list_points(INSTANCE, GUID) == [kept.recovery_point()]


def test_rebuild_adds_what_the_index_missed_and_skips_bad_manifests(
    make_vault: Callable[..., Vault], store: MemoryBlobStore
) -> None:
    vault = make_vault()
    first = _commit(vault)
    missed = _commit(vault, backup_type=BackupType.DIFFERENTIAL, start=T0 + timedelta(days=400))
    for name in [n for n in store.blobs if "/catalog/" in n]:
        del store.blobs[name]
    vault.catalog.add(first)
    broken = vault.layout.manifest_blob(INSTANCE, GUID, "20261124T180000Z-L-0badf00d")
    store.blobs[broken] = b"{}"
    report = vault.catalog.rebuild(INSTANCE, GUID)
    assert report.points == 2
    assert report.unreadable_manifests == (broken,)
    fresh = Catalog(store, Layout("prod/vault"))
    assert fresh.list_points(INSTANCE, GUID) == [first.recovery_point(), missed.recovery_point()]
    assert fresh.base_before(INSTANCE, GUID, T0 + timedelta(days=401)) == missed.recovery_point()
    assert [d.database_name for d in fresh.databases()] == ["Sales"]
