"""Test doubles for the vault: an in-memory ``BlobStore`` with Azure's semantics (staged
blocks invisible until committed, create-only conditions, append blobs) and records."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from sqlharbor.backupset import BackupRecord, BackupType, RecoveryModel
from sqlharbor.errors import AlreadyExists, BlobNotFound
from sqlharbor.vault import BlobInfo

Buffer = bytes | bytearray | memoryview


class MemoryBlobStore:
    """A thread-safe in-memory ``BlobStore`` that counts reads."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.staged: dict[str, dict[str, bytes]] = {}
        self.gets: list[str] = []
        self.lists: list[str] = []
        self._lock = threading.Lock()

    def stage_block(self, name: str, block_id: str, data: Buffer) -> None:
        with self._lock:
            self.staged.setdefault(name, {})[block_id] = bytes(data)

    def commit_blocks(self, name: str, block_ids: Sequence[str]) -> None:
        with self._lock:
            if name in self.blobs:
                raise AlreadyExists(f"commit {name!r}: exists")
            staged = self.staged.pop(name, {})
            self.blobs[name] = b"".join(staged[b] for b in block_ids)

    def put(self, name: str, data: Buffer, *, if_absent: bool = False) -> None:
        with self._lock:
            if if_absent and name in self.blobs:
                raise AlreadyExists(f"write {name!r}: exists")
            self.blobs[name] = bytes(data)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        with self._lock:
            self.gets.append(name)
            if name not in self.blobs:
                raise BlobNotFound(f"read {name!r}: not found")
            data = self.blobs[name]
        end = len(data) if length is None else offset + length
        return data[offset:end]

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self.blobs

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        with self._lock:
            self.lists.append(prefix)
            names = sorted(n for n in self.blobs if n.startswith(prefix))
            infos = [BlobInfo(n, len(self.blobs[n])) for n in names]
        return iter(infos)

    def delete(self, name: str) -> None:
        with self._lock:
            self.blobs.pop(name, None)

    def append(self, name: str, data: Buffer) -> None:
        with self._lock:
            self.blobs[name] = self.blobs.get(name, b"") + bytes(data)


T0 = datetime(2026, 11, 24, 18, 0, 0, tzinfo=UTC)


def make_record(
    backup_type: BackupType = BackupType.FULL,
    *,
    guid: str = "6f9619ff-8b86-d011-b42d-00c04fc964ff",
    name: str = "Sales",
    first_lsn: int = 1000,
    last_lsn: int = 2000,
    start: datetime = T0,
    duration: timedelta = timedelta(seconds=30),
    copy_only: bool = False,
) -> BackupRecord:
    return BackupRecord(
        database_name=name,
        database_guid=guid,
        backup_type=backup_type,
        is_copy_only=copy_only,
        first_lsn=first_lsn,
        last_lsn=last_lsn,
        checkpoint_lsn=first_lsn + 10,
        database_backup_lsn=first_lsn,
        differential_base_lsn=None if backup_type is BackupType.FULL else first_lsn - 500,
        start=start,
        finish=start + duration,
        recovery_model=RecoveryModel.FULL,
        size_bytes=12345,
    )
