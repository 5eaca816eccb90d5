"""Manifest format version 2: the canonical payload a future tag covers, identity checks
(a moved or copied manifest is refused before data moves), refusals of newer versions and
edited documents, and stripes (names, reading one stripe, deleting all of them)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sqlharbor.domain.backupset import (
    BackupMedia,
    BackupType,
    MediaFile,
    MediaKind,
    RecoveryPoint,
)
from sqlharbor.errors import ErrorCode, IntegrityError, InvalidName
from sqlharbor.vault import Layout, Manifest, Vault
from sqlharbor.vault.codec import AssociatedData, ChunkCodec
from sqlharbor.vault.manifest import digest_of_digests
from sqlharbor.vault.manifest_auth import seal
from sqlharbor.vault.manifest_read import read_manifest
from sqlharbor.vault.reader import data_blobs
from sqlharbor.vault.store import block_id
from tests.builders.records import backup_record
from tests.builders.stores import MemoryBlobStore

GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
OTHER_GUID = "0b2c7a4e-1111-4222-8333-944455556666"
INSTANCE = "HOST\\SQL01"
CHUNK = 1024
MakeVault = Callable[..., Vault]


# -- a fixed document: every field set, nothing random ------------------------------------

POINT = "20261124T180102Z-L-1a2b3c4d"
PATH = f"HOST~5CSQL01/{GUID}/log/{POINT}/manifest.json"


def fixed_document() -> dict[str, Any]:
    return {
        "format_version": 2,
        "identity": {
            "recovery_point_id": POINT,
            "scope": {"kind": "Instance", "name": INSTANCE, "id": ""},
            "database_id": GUID,
            "manifest_path": PATH,
        },
        "backup": {
            "database_name": "Sales",
            "database_guid": GUID,
            "backup_type": "Log",
            "copy_only": False,
            "begins_log_chain": True,
            "backup_set_id": "4711",
            "backup_set_uuid": "0f1e2d3c-4b5a-4697-8877-665544332211",
            "first_lsn": "98765432109876543210000",
            "last_lsn": "98765432109876543214200",
            "checkpoint_lsn": "98765432109876543210010",
            "database_backup_lsn": "98765432109876543120000",
            "differential_base_lsn": "98765432109876543100000",
            "differential_base_guid": "a1b2c3d4-e5f6-4a5b-8c7d-0e1f2a3b4c5d",
            "recovery_fork": {
                "first": "11111111-2222-3333-4444-555555555555",
                "last": "66666666-7777-8888-9999-000000000000",
                "fork_point_lsn": "98765432109876543212000",
            },
            "start": "2026-11-24T18:01:02Z",
            "finish": "2026-11-24T18:01:32Z",
            "recovery_model": "FULL",
            "size_bytes": 180224,
            "server_name": "HOST\\SQL01",
            "media": {
                "media_set_id": "7e1f0c2a-0000-4000-8000-00000000beef",
                "position": 1,
                "files": [
                    {"name": "vdi-device-1", "family": 1, "mirror": 0, "kind": "VirtualDevice"}
                ],
            },
            "logical_files": [
                {
                    "logical_name": "Sales",
                    "physical_name": "D:\\data\\Sales.mdf",
                    "type": "ROWS",
                    "file_id": 1,
                    "filegroup": "PRIMARY",
                    "size_bytes": 8388608,
                }
            ],
        },
        "data": {
            "chunk_size": 1024,
            "chunks_per_blob": 2,
            "compression": "zstd",
            "compression_level": 3,
            "raw_size": 2500,
            "stored_size": 900,
            "stripes": [
                {
                    "index": 0,
                    "chunk_count": 3,
                    "chunk_stored_sizes": [300, 300, 300],
                    "raw_size": 2500,
                    "stored_size": 900,
                    "nonce_prefix": "0a0b0c0d",
                    "stored_chunks_sha256": "ab" * 32,
                }
            ],
        },
        "encryption": {
            "cipher": "AES-256-GCM",
            "associated_data": "sqlharbor/chunk/v2",
            "data_key": {
                "wrap": "AES-256-KW",
                "key_id": "ffc91d596acc2e49",
                "key_version": "",
                "wrapped": base64.b64encode(bytes(range(40))).decode(),
            },
        },
        "integrity": {"raw_sha256": "cd" * 32},
        "authentication": None,
        "committed_at": "2026-11-24T18:01:40.5Z",
        "writer": "sqlharbor/0.1.0",
    }


#: SHA-256 of the fixed document's authenticated payload.  Pinned: it must never change
#: for this document, or tags written by one version would not verify in another.
FIXED_PAYLOAD_SHA256 = "73faff0ddb392f81137d5ea17e1e6b4a92cf17941caf09d370eccdec924a2596"


def test_the_authenticated_payload_is_canonical_and_pinned() -> None:
    manifest = Manifest.model_validate(fixed_document())
    payload = manifest.authenticated_payload()
    assert hashlib.sha256(payload).hexdigest() == FIXED_PAYLOAD_SHA256
    assert b"authentication" not in payload
    assert b" " not in payload.replace(b"Sales.mdf", b"")  # compact
    decoded = json.loads(payload)
    assert list(decoded) == sorted(decoded)
    assert decoded["backup"]["first_lsn"] == "98765432109876543210000"
    # Stable across a write and a read, and whatever the authentication block says.
    again = Manifest.model_validate_json(manifest.to_json())
    assert again.authenticated_payload() == payload
    tagged = fixed_document()
    tagged["authentication"] = {
        "algorithm": "HMAC-SHA256",
        "key_id": "vault-key",
        "key_version": "3",
        "tag": base64.b64encode(b"t" * 32).decode(),
    }
    assert Manifest.model_validate(tagged).authenticated_payload() == payload


def test_a_version_2_document_without_the_backup_set_uuids_reads_them_as_unknown() -> None:
    """Added before version 2 was released: optional, so documents written without them
    (and upgraded version-1 documents) still parse."""
    document = fixed_document()
    del document["backup"]["backup_set_uuid"], document["backup"]["differential_base_guid"]
    record = Manifest.parse(json.dumps(document).encode()).to_record()
    assert (record.backup_set_uuid, record.differential_base_guid) == ("", "")
    assert record.backup_set_id == "4711"


def _leaves(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path


#: A valid other value for leaves whose type does not allow the generic change.
OTHER_VALUES: dict[str, Any] = {
    "kind": "Disk",
    "backup_type": "Full",
    "recovery_model": "BULK_LOGGED",
    "start": "2026-11-24T18:00:00Z",
    "finish": "2026-11-24T18:02:00Z",
    "type": "LOG",
}


def _changed(value: Any, key: str | int) -> Any:
    if isinstance(key, str) and key in OTHER_VALUES:
        return OTHER_VALUES[key]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str) and value.isdigit():
        return str(int(value) + 1)
    return f"{value}x"


def test_the_payload_changes_with_every_identity_and_backup_field() -> None:
    base = Manifest.model_validate(fixed_document()).authenticated_payload()
    document = fixed_document()
    paths = [
        p for section in ("identity", "backup") for p in _leaves(document[section], (section,))
    ]
    assert len(paths) > 35
    for path in paths:
        edited = copy.deepcopy(document)
        node = edited
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = _changed(node[path[-1]], path[-1])
        if path[:2] == ("identity", "scope") and path[-1] in ("kind", "id"):
            node.update(kind="AvailabilityGroup", id="group-id")  # a group scope has an id
        changed = Manifest.model_validate(edited).authenticated_payload()
        assert changed != base, f"{'.'.join(map(str, path))} is not covered"


# -- identity: read only from where it belongs ---------------------------------------------


def _commit(vault: Vault, data: bytes = b"x" * 3000, guid: str = GUID) -> Manifest:
    writer = vault.open_writer(INSTANCE, "Sales", guid, BackupType.FULL)
    writer.write(data)
    return writer.commit(backup_record(BackupType.FULL, guid=guid))


def _copy_manifest(
    store: MemoryBlobStore, vault: Vault, manifest: Manifest, guid: str, point: str
) -> None:
    ident = manifest.identity
    source = vault.layout.manifest_blob(INSTANCE, ident.database_id, ident.recovery_point_id)
    store.blobs[vault.layout.manifest_blob(INSTANCE, guid, point)] = store.blobs[source]


def test_a_manifest_copied_to_another_point_is_refused_before_data_is_read(
    make_vault: MakeVault, store: MemoryBlobStore
) -> None:
    vault = make_vault()
    one, two = _commit(vault), _commit(vault)
    target = two.identity.recovery_point_id
    _copy_manifest(store, vault, one, GUID, target)
    store.reset()
    with pytest.raises(IntegrityError, match="was moved or copied") as caught:
        vault.manifest(INSTANCE, GUID, target)
    assert one.identity.recovery_point_id in str(caught.value)
    assert not [n for n in store.gets if "/data-" in n]


def test_a_manifest_copied_to_another_database_is_refused(
    make_vault: MakeVault, store: MemoryBlobStore
) -> None:
    vault = make_vault()
    manifest = _commit(vault)
    point = manifest.identity.recovery_point_id
    _copy_manifest(store, vault, manifest, OTHER_GUID, point)
    store.reset()
    with pytest.raises(IntegrityError, match="was moved or copied"):
        vault.manifest(INSTANCE, OTHER_GUID, point)
    assert store.gets == [vault.layout.manifest_blob(INSTANCE, OTHER_GUID, point)]
    # the catalog rebuild of that database skips it, and says so
    report = vault.catalog.rebuild(INSTANCE, OTHER_GUID)
    assert report.points == 0
    assert report.unreadable_manifests == (vault.layout.manifest_blob(INSTANCE, OTHER_GUID, point),)


def test_a_manifest_copied_to_another_instance_is_refused_but_a_moved_vault_reads(
    make_vault: MakeVault,
) -> None:
    vault = make_vault()
    manifest = _commit(vault)
    point = manifest.identity.recovery_point_id
    body = manifest.to_json()
    with pytest.raises(IntegrityError, match="was moved or copied"):
        read_manifest(body, vault.layout.locate("HOST\\SQL02", GUID, point))
    # The path is relative to the vault prefix: a whole vault copied under another
    # prefix (or container) still reads.
    moved = read_manifest(body, Layout("other/prefix/deeper").locate(INSTANCE, GUID, point))
    assert moved == manifest


def _edited(manifest: Manifest, edit: Callable[[dict[str, Any]], object]) -> bytes:
    doc = json.loads(manifest.to_json())
    edit(doc)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (
            lambda d: d["encryption"].update(associated_data="sqlharbor/chunk/v1"),
            "must name sqlharbor/chunk/v2 chunks",
        ),
        (lambda d: d["backup"].update(backup_type="Log"), "does not name a Log backup"),
        (lambda d: d["backup"].update(database_guid=OTHER_GUID), "under its own GUID"),
        (
            lambda d: d["identity"].update(manifest_path="elsewhere/manifest.json"),
            "moved or copied",
        ),
        (
            lambda d: d["identity"]["scope"].update(kind="AvailabilityGroup", id="g"),
            "moved or copied",
        ),
    ],
)
def test_edited_version_2_manifests_are_refused(
    make_vault: MakeVault, edit: Callable[[dict[str, Any]], object], fragment: str
) -> None:
    vault = make_vault()
    manifest = _commit(vault)
    location = vault.layout.locate(INSTANCE, GUID, manifest.identity.recovery_point_id)
    with pytest.raises(IntegrityError, match=fragment):
        read_manifest(_edited(manifest, edit), location)


def test_a_newer_format_is_refused_as_written_by_a_newer_sqlharbor(make_vault: MakeVault) -> None:
    vault = make_vault()
    manifest = _commit(vault)
    location = vault.layout.locate(INSTANCE, GUID, manifest.identity.recovery_point_id)
    body = _edited(manifest, lambda d: d.update(format_version=3, something_new={}))
    with pytest.raises(IntegrityError, match="written by a newer sqlharbor") as caught:
        read_manifest(body, location)
    assert caught.value.code == ErrorCode.VAULT_FORMAT_TOO_NEW


def test_the_reader_refuses_an_identity_that_does_not_name_its_own_place(
    make_vault: MakeVault, store: MemoryBlobStore
) -> None:
    vault = make_vault()
    manifest = _commit(vault)
    forged = manifest.model_copy(
        update={
            "identity": manifest.identity.model_copy(update={"manifest_path": "a/manifest.json"})
        }
    )
    store.reset()
    with pytest.raises(IntegrityError, match=r"names itself a/manifest\.json"):
        vault.open_reader(forged)
    assert store.gets == []


def test_open_writer_refuses_a_point_id_of_another_backup_type(make_vault: MakeVault) -> None:
    with pytest.raises(InvalidName, match="does not name a Full backup"):
        make_vault().open_writer(INSTANCE, "Sales", GUID, BackupType.FULL, recovery_point_id=POINT)


# -- the data section's rules ----------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda d: d["stripes"][0].update(index=1), "numbered 0, 1"),
        (lambda d: d.update(chunk_size=512), "do not fill 3 chunks"),
        (lambda d: d.update(chunk_size=4096), "do not fill 3 chunks"),
        (lambda d: d.update(stripes=[]), "stripes"),
    ],
)
def test_data_sections_must_agree_with_themselves(
    edit: Callable[[dict[str, Any]], object], fragment: str
) -> None:
    doc = fixed_document()
    edit(doc["data"])
    with pytest.raises(ValueError, match=fragment):
        Manifest.model_validate(doc)


def _two_stripes(doc: dict[str, Any], nonce: str) -> None:
    second = {**doc["data"]["stripes"][0], "index": 1, "nonce_prefix": nonce}
    doc["data"]["stripes"].append(second)
    doc["data"]["raw_size"] *= 2
    doc["data"]["stored_size"] *= 2


def test_stripes_need_their_own_nonces_and_no_whole_stream_digest() -> None:
    doc = fixed_document()
    _two_stripes(doc, "0a0b0c0d")
    doc["integrity"]["raw_sha256"] = None
    with pytest.raises(ValueError, match="its own nonce prefix"):
        Manifest.model_validate(doc)
    doc = fixed_document()
    _two_stripes(doc, "01020304")
    with pytest.raises(ValueError, match="must be null for a striped point"):
        Manifest.model_validate(doc)
    doc["integrity"]["raw_sha256"] = None
    manifest = Manifest.model_validate(doc)
    assert manifest.data.parts() == [(0, 0), (0, 1), (1, 0), (1, 1)]


def _add_stripe(vault: Vault, store: MemoryBlobStore, manifest: Manifest, data: bytes) -> Manifest:
    """Give a committed point a genuine second stripe (what a striped backup will write)."""
    ident = manifest.identity
    key = vault.keys.data_key(manifest)
    codec = ChunkCodec(
        recovery_point_id=ident.recovery_point_id,
        data_key=key,
        nonce_prefix=b"\xff\xfe\xfd\xfc",
        scheme=AssociatedData.V2,
        stripe=1,
    )
    size = manifest.data.chunk_size
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    stored = [codec.encode(i, c, last=i == len(chunks) - 1) for i, c in enumerate(chunks)]
    per_blob = manifest.data.chunks_per_blob
    for part, first in enumerate(range(0, len(stored), per_blob)):
        name = vault.layout.data_blob(INSTANCE, GUID, ident.recovery_point_id, part, stripe=1)
        ids = []
        for index in range(first, min(first + per_blob, len(stored))):
            store.stage_block(name, block_id(index), stored[index])
            ids.append(block_id(index))
        store.commit_blocks(name, ids)
    doc = json.loads(manifest.to_json())
    doc["data"]["stripes"].append(
        {
            "index": 1,
            "chunk_count": len(stored),
            "chunk_stored_sizes": [len(s) for s in stored],
            "raw_size": len(data),
            "stored_size": sum(len(s) for s in stored),
            "nonce_prefix": "fffefdfc",
            "stored_chunks_sha256": digest_of_digests([hashlib.sha256(s).digest() for s in stored]),
        }
    )
    doc["data"]["raw_size"] += len(data)
    doc["data"]["stored_size"] += sum(len(s) for s in stored)
    doc["integrity"]["raw_sha256"] = None
    doc["authentication"] = None
    body = seal(Manifest.model_validate(doc), key).to_json()  # a striped writer seals it
    store.blobs[vault.layout.manifest_blob(INSTANCE, GUID, ident.recovery_point_id)] = body
    return vault.manifest(INSTANCE, GUID, ident.recovery_point_id)


def test_a_striped_point_reads_per_stripe_and_is_deleted_whole(
    make_vault: MakeVault, store: MemoryBlobStore
) -> None:
    vault = make_vault()
    zero, one = os.urandom(5 * CHUNK + 9), os.urandom(3 * CHUNK + 1)
    manifest = _add_stripe(vault, store, _commit(vault, zero), one)
    point = manifest.identity.recovery_point_id
    assert len(manifest.data.stripes) == 2
    for stripe, data in ((0, zero), (1, one)):
        with vault.open_reader(manifest, stripe=stripe) as reader:
            assert reader.read() == data
    with pytest.raises(ValueError, match="not a stripe 2"):
        vault.open_reader(manifest, stripe=2)

    # a chunk of stripe 1 put in place of stripe 0's: same key, same index, refused
    names = data_blobs(vault.layout, manifest)
    assert sum("/data-s01-" in n for n in names) == 1
    zero_blob = vault.layout.data_blob(INSTANCE, GUID, point)
    one_blob = vault.layout.data_blob(INSTANCE, GUID, point, stripe=1)
    saved = store.blobs[zero_blob]
    size0 = manifest.data.stripes[0].chunk_stored_sizes[0]
    size1 = manifest.data.stripes[1].chunk_stored_sizes[0]
    assert size0 == size1  # incompressible full chunks: same stored size
    store.blobs[zero_blob] = store.blobs[one_blob][:size1] + saved[size0:]
    with (
        pytest.raises(IntegrityError, match=f"{point}: chunk 0 failed"),
        vault.open_reader(manifest) as reader,
    ):
        reader.read()
    store.blobs[zero_blob] = saved

    assert vault.catalog.rebuild(INSTANCE, GUID).points == 1
    assert vault.catalog.delete_point(INSTANCE, GUID, point)
    prefix = vault.layout.point_dir(INSTANCE, GUID, point)
    assert not [n for n in store.blobs if n.startswith(prefix)]


def test_every_record_fact_survives_manifest_and_catalog(make_vault: MakeVault) -> None:
    vault = make_vault()
    record = dataclasses.replace(
        backup_record(BackupType.LOG, guid=GUID),
        first_recovery_fork_guid="11111111-2222-3333-4444-555555555555",
        last_recovery_fork_guid="66666666-7777-8888-9999-000000000000",
        fork_point_lsn=1500,
        backup_set_uuid="0f1e2d3c-4b5a-4697-8877-665544332211",
        differential_base_guid="a1b2c3d4-e5f6-4a5b-8c7d-0e1f2a3b4c5d",
        server_name="HOST\\SQL01",
        media=BackupMedia(
            files=(MediaFile("dev-1", family=1, kind=MediaKind.VIRTUAL_DEVICE),),
            position=2,
            media_set_id="set-1",
        ),
    )
    writer = vault.open_writer(INSTANCE, "Sales", GUID, BackupType.LOG)
    writer.write(b"log records")
    manifest = writer.commit(record)
    point = manifest.identity.recovery_point_id
    doc = json.loads(manifest.to_json())
    assert doc["backup"]["recovery_fork"]["fork_point_lsn"] == "1500"
    assert doc["backup"]["media"]["files"][0]["kind"] == "VirtualDevice"
    assert doc["backup"]["logical_files"] == []
    assert doc["backup"]["backup_set_uuid"] == record.backup_set_uuid
    assert vault.manifest(INSTANCE, GUID, point).to_record() == record
    assert vault.catalog.list_points(INSTANCE, GUID) == [RecoveryPoint(point, record)]
