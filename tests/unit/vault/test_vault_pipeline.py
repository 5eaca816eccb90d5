"""Writer -> store -> reader over an in-memory store: round trips, bounds, tampering."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable

import pytest

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import (
    AlreadyExists,
    ErrorCode,
    IntegrityError,
    KeyUnavailable,
    PermanentError,
    RecoveryPointNotFound,
)
from sqlharbor.vault import Compression, KeyEncryptionKey, Layout, Manifest, Vault, WriterSettings
from sqlharbor.vault.keyring import Keyring, VaultKeys
from sqlharbor.vault.manifest_auth import seal
from tests.builders.keys import keyring, rsa_key
from tests.builders.records import backup_record
from tests.builders.stores import MemoryBlobStore

GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
INSTANCE = "HOST\\SQL01"
CHUNK = 1024
MakeVault = Callable[..., Vault]


def _payload(size: int) -> bytes:
    # Half random, half repetitive: compressible but not trivially.
    return (os.urandom(size // 2 + 1) + b"x" * (size // 2 + 1))[:size]


def _backup(vault: Vault, data: bytes, piece: int = 333, **kwargs: object) -> Manifest:
    writer = vault.open_writer(INSTANCE, "Sales", GUID, BackupType.FULL, **kwargs)  # type: ignore[arg-type]
    view = memoryview(data)
    for offset in range(0, len(data), piece):
        assert writer.write(view[offset : offset + piece]) == len(view[offset : offset + piece])
    return writer.commit(backup_record(BackupType.FULL, guid=GUID))


def _restore(vault: Vault, manifest: Manifest, piece: int = 500) -> bytes:
    out = bytearray()
    buffer = bytearray(piece)
    with vault.open_reader(manifest) as reader:
        while count := reader.readinto(buffer):
            out += buffer[:count]
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 10 * CHUNK + 7])
def test_round_trip_of_every_edge_size(make_vault: MakeVault, size: int) -> None:
    vault = make_vault()
    data = _payload(size)
    manifest = _backup(vault, data)
    [stripe] = manifest.data.stripes
    assert manifest.data.raw_size == stripe.raw_size == size
    assert stripe.chunk_count == max(1, -(-size // CHUNK))
    assert manifest.integrity.raw_sha256 == hashlib.sha256(data).hexdigest()
    again = vault.manifest(INSTANCE, GUID, manifest.identity.recovery_point_id)
    assert again == manifest
    assert _restore(vault, again) == data
    with vault.open_reader(again) as reader:
        assert reader.read(7) == data[:7]
        assert reader.read() == data[7:]
        assert reader.read() == b""


def test_data_spread_over_several_blobs(make_vault: MakeVault) -> None:
    settings = WriterSettings(chunk_size=CHUNK, max_in_flight=2, parallelism=2, chunks_per_blob=3)
    vault = make_vault(settings=settings)
    data = _payload(8 * CHUNK + 5)
    manifest = _backup(vault, data, piece=4000)
    assert manifest.data.blob_count() == 3
    assert manifest.data.parts() == [(0, 0), (0, 1), (0, 2)]
    assert _restore(vault, manifest) == data


def test_progress_reports_raw_and_stored_bytes(make_vault: MakeVault) -> None:
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def progress(raw: int, stored: int) -> None:
        with lock:
            seen.append((raw, stored))

    data = _payload(5 * CHUNK + 3)
    manifest = _backup(make_vault(), data, progress=progress)
    assert sum(r for r, _ in seen) == len(data)
    assert sum(s for _, s in seen) == manifest.data.stored_size
    read_seen: list[tuple[int, int]] = []
    with make_vault().open_reader(manifest, progress=lambda r, s: read_seen.append((r, s))) as rd:
        assert rd.read() == data
    assert sum(r for r, _ in read_seen) == len(data)


class BlockingStore(MemoryBlobStore):
    """Holds every ``stage_block`` until released; records how many are held at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.active = 0
        self.peak = 0
        self._count_lock = threading.Lock()

    def stage_block(self, name: str, block_id: str, data: bytes | bytearray | memoryview) -> None:
        with self._count_lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        self.release.wait(timeout=30)
        with self._count_lock:
            self.active -= 1
        super().stage_block(name, block_id, data)


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_memory_is_bounded_by_chunks_in_flight(keys: VaultKeys) -> None:
    store = BlockingStore()
    settings = WriterSettings(chunk_size=CHUNK, max_in_flight=3, parallelism=2)
    vault = Vault(store, Layout(), keys, writer_settings=settings)
    writer = vault.open_writer(INSTANCE, "Sales", GUID, BackupType.FULL)
    accepted = 0
    data = _payload(20 * CHUNK)

    def produce() -> None:
        nonlocal accepted
        for offset in range(0, len(data), 256):
            accepted += writer.write(data[offset : offset + 256])

    producer = threading.Thread(target=produce)
    producer.start()
    # Two workers are blocked in stage_block, a third chunk is queued: the writer must
    # stop accepting data once 3 chunks are in flight and the 4th buffer is full.
    _wait_for(lambda: store.active == 2 and accepted >= 4 * CHUNK - 256)
    time.sleep(0.2)  # give a broken writer the chance to run ahead
    assert producer.is_alive()
    assert accepted <= 4 * CHUNK
    store.release.set()
    producer.join(timeout=30)
    manifest = writer.commit(backup_record(guid=GUID))
    assert store.peak == 2
    assert _restore(vault, manifest) == data


def test_abort_leaves_nothing_visible(make_vault: MakeVault, store: MemoryBlobStore) -> None:
    vault = make_vault()
    with vault.open_writer(INSTANCE, "Sales", GUID, BackupType.LOG) as writer:
        writer.write(_payload(5 * CHUNK))
        point = writer.target.recovery_point_id
    assert store.blobs == {}
    with pytest.raises(RecoveryPointNotFound):
        vault.manifest(INSTANCE, GUID, point)
    assert vault.catalog.list_points(INSTANCE, GUID) == []
    with pytest.raises(PermanentError, match="aborted"):
        writer.write(b"more")


def test_a_failed_upload_fails_the_writer_and_commits_nothing(
    make_vault: MakeVault, store: MemoryBlobStore
) -> None:
    def broken(name: str, block_id: str, data: object) -> None:
        raise PermanentError("stage refused", code=ErrorCode.VAULT_REQUEST_REFUSED)

    store.stage_block = broken  # type: ignore[method-assign]
    writer = make_vault().open_writer(INSTANCE, "Sales", GUID, BackupType.FULL)

    def stream() -> None:
        for _ in range(20):
            writer.write(_payload(CHUNK))
        writer.commit(backup_record(guid=GUID))

    with pytest.raises(PermanentError, match="stage refused"):
        stream()
    assert not any(name.endswith("manifest.json") for name in store.blobs)


def test_commit_refuses_facts_of_another_backup(make_vault: MakeVault) -> None:
    writer = make_vault().open_writer(INSTANCE, "Sales", GUID, BackupType.FULL)
    writer.write(b"data")
    with pytest.raises(PermanentError, match="engine reported"):
        writer.commit(backup_record(BackupType.LOG, guid=GUID))


def test_create_only_manifest_refuses_a_second_writer(make_vault: MakeVault) -> None:
    vault = make_vault()
    first = _backup(vault, b"first")
    with pytest.raises(AlreadyExists):
        _backup(vault, b"second", recovery_point_id=first.identity.recovery_point_id)
    point = first.identity.recovery_point_id
    assert _restore(vault, vault.manifest(INSTANCE, GUID, point)) == b"first"


def _data_blob(vault: Vault, manifest: Manifest) -> str:
    return vault.layout.data_blob(INSTANCE, GUID, manifest.identity.recovery_point_id)


def _sizes(manifest: Manifest) -> tuple[int, ...]:
    return manifest.data.stripes[0].chunk_stored_sizes


def test_reader_detects_swapped_chunks(make_vault: MakeVault, store: MemoryBlobStore) -> None:
    vault = make_vault(settings=WriterSettings(chunk_size=CHUNK, compression=Compression.NONE))
    manifest = _backup(vault, _payload(3 * CHUNK))
    name = _data_blob(vault, manifest)
    blob = store.blobs[name]
    size = _sizes(manifest)[0]
    store.blobs[name] = blob[size : 2 * size] + blob[:size] + blob[2 * size :]
    with pytest.raises(IntegrityError, match=f"{manifest.identity.recovery_point_id}: chunk 0"):
        _restore(vault, manifest)


def test_reader_detects_a_flipped_byte(make_vault: MakeVault, store: MemoryBlobStore) -> None:
    vault = make_vault()
    manifest = _backup(vault, _payload(3 * CHUNK))
    name = _data_blob(vault, manifest)
    blob = bytearray(store.blobs[name])
    blob[-5] ^= 0x80
    store.blobs[name] = bytes(blob)
    with pytest.raises(IntegrityError, match="last chunk 2 failed"):
        _restore(vault, manifest)


def test_reader_detects_truncation(make_vault: MakeVault, store: MemoryBlobStore) -> None:
    vault = make_vault()
    manifest = _backup(vault, _payload(3 * CHUNK))
    name = _data_blob(vault, manifest)
    store.blobs[name] = store.blobs[name][: -_sizes(manifest)[-1]]
    with pytest.raises(IntegrityError, match="chunk 2 is truncated"):
        _restore(vault, manifest)
    # A manifest edited to hide the dropped chunk (every size and count made to agree) is
    # caught by the last-chunk flag.
    doc = json.loads(manifest.to_json())
    stripe = doc["data"]["stripes"][0]
    stripe["chunk_count"] = 2
    stripe["chunk_stored_sizes"] = stripe["chunk_stored_sizes"][:2]
    stripe["stored_size"] = doc["data"]["stored_size"] = sum(stripe["chunk_stored_sizes"])
    stripe["raw_size"] = doc["data"]["raw_size"] = 2 * CHUNK
    forged = Manifest.model_validate(doc)
    with pytest.raises(IntegrityError, match="its manifest failed authentication"):
        _restore(vault, forged)
    # even re-sealed by someone holding the data key, the last-chunk flag refuses it
    data_key = vault.keys.data_key(manifest)
    doc["authentication"] = None
    with pytest.raises(IntegrityError, match="last chunk 1 failed"):
        _restore(vault, seal(Manifest.model_validate(doc), data_key))


def test_reader_detects_a_chunk_spliced_from_another_point(
    make_vault: MakeVault, store: MemoryBlobStore
) -> None:
    vault = make_vault()
    data = _payload(2 * CHUNK)
    one, two = _backup(vault, data), _backup(vault, data)
    store.blobs[_data_blob(vault, one)] = store.blobs[_data_blob(vault, two)]
    with pytest.raises(IntegrityError, match=one.identity.recovery_point_id):
        _restore(vault, one)


def test_reader_with_a_vault_that_does_not_list_the_key(make_vault: MakeVault) -> None:
    manifest = _backup(make_vault(), b"secret rows")
    other = make_vault(key=keyring(1))
    with pytest.raises(KeyUnavailable, match=f"wrapped with key {rsa_key().key_id} version"):
        other.open_reader(manifest)
    legacy = make_vault(key=KeyEncryptionKey.generate())  # a version-1 KEK cannot open it
    with pytest.raises(KeyUnavailable, match=r"\(RSA-OAEP-256\), which the vault does not list"):
        legacy.open_reader(manifest)


def test_a_point_wrapped_with_a_legacy_kek_opens_with_it_listed_as_a_previous_key(
    make_vault: MakeVault,
) -> None:
    kek = KeyEncryptionKey.generate()
    manifest = _backup(make_vault(key=kek), b"legacy rows")
    assert manifest.encryption.data_key.wrap == "AES-256-KW"
    rotated = make_vault(key=Keyring([rsa_key(), kek]))
    assert _restore(rotated, manifest) == b"legacy rows"
    assert _backup(rotated, b"new").encryption.data_key.wrap == "RSA-OAEP-256"


def test_delete_removes_manifest_data_and_index(
    make_vault: MakeVault, store: MemoryBlobStore
) -> None:
    vault = make_vault()
    keep, gone = _backup(vault, b"keep"), _backup(vault, b"gone")
    gone_id = gone.identity.recovery_point_id
    vault.delete_recovery_point(INSTANCE, GUID, gone_id)
    prefix = vault.layout.point_dir(INSTANCE, GUID, gone_id)
    assert not [n for n in store.blobs if n.startswith(prefix)]
    assert [p.id for p in vault.catalog.list_points(INSTANCE, GUID)] == [
        keep.identity.recovery_point_id
    ]
    with pytest.raises(RecoveryPointNotFound):
        vault.manifest(INSTANCE, GUID, gone_id)
