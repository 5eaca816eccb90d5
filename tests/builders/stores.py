"""Blob stores for tests and benchmarks: one in memory, one that wraps a real store; both
record the names they are asked to read.

``gets`` holds the names read with ``get``, ``checks`` those asked with ``exists`` and
``lists`` the prefixes listed; ``reads`` is gets and checks together (every blob read a
caller pays for).  A count is the length of a list; ``reset`` empties them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from sqlharbor.errors import AlreadyExists, BlobNotFound
from sqlharbor.vault import BlobInfo, BlobStore

Buffer = bytes | bytearray | memoryview


class ReadLog:
    """The names a store was asked to read, in order."""

    def __init__(self) -> None:
        self.gets: list[str] = []
        self.checks: list[str] = []
        self.lists: list[str] = []

    @property
    def reads(self) -> list[str]:
        """Names read with ``get`` then those asked with ``exists``."""
        return [*self.gets, *self.checks]

    def reset(self) -> None:
        self.gets.clear()
        self.checks.clear()
        self.lists.clear()


class MemoryBlobStore(ReadLog):
    """A thread-safe in-memory ``BlobStore`` with Azure's semantics: staged blocks are
    invisible until committed, create-only conditions, append blobs."""

    def __init__(self) -> None:
        super().__init__()
        self.blobs: dict[str, bytes] = {}
        self.staged: dict[str, dict[str, bytes]] = {}
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

    def replace(self, name: str, data: Buffer) -> None:
        with self._lock:
            if name not in self.blobs:
                raise BlobNotFound(f"replace {name!r}: gone")
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
            self.checks.append(name)
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


class CountingStore(ReadLog):
    """Delegates to another store (Azurite's, in the catalog benchmark and its test) and
    records the reads made through it."""

    def __init__(self, inner: BlobStore) -> None:
        super().__init__()
        self.inner = inner

    def stage_block(self, name: str, block_id: str, data: Buffer) -> None:
        self.inner.stage_block(name, block_id, data)

    def commit_blocks(self, name: str, block_ids: Sequence[str]) -> None:
        self.inner.commit_blocks(name, block_ids)

    def put(self, name: str, data: Buffer, *, if_absent: bool = False) -> None:
        self.inner.put(name, data, if_absent=if_absent)

    def replace(self, name: str, data: Buffer) -> None:
        self.inner.replace(name, data)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        self.gets.append(name)
        return self.inner.get(name, offset, length)

    def exists(self, name: str) -> bool:
        self.checks.append(name)
        return self.inner.exists(name)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        self.lists.append(prefix)
        return self.inner.list(prefix)

    def delete(self, name: str) -> None:
        self.inner.delete(name)

    def append(self, name: str, data: Buffer) -> None:
        self.inner.append(name, data)
