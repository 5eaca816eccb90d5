"""``RecoveryPointReader``: a recovery point's stream back, verified, as a ``Source``.

Created by ``Vault.open_reader(manifest)`` and handed to ``Engine.restore`` inside a
``RestoreStep`` (the CLI's "restore as files" reads it too).  Chunks are fetched by
byte range, authenticated, decrypted and decompressed by a small thread pool, up to
``max_in_flight`` ahead of the consumer, and handed out strictly in order.  The
whole-stream SHA-256, the size and the stored-chunk digest are checked as the last
chunk is taken, before any of its bytes are returned, so a consumer never sees the
end of a stream that does not verify.  Every integrity failure raises
``IntegrityError`` naming the recovery point (and the chunk, when there is one);
network trouble stays a ``TemporaryError``.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from sqlharbor.errors import IntegrityError, PermanentError, TemporaryError
from sqlharbor.vault.codec import ChunkCodec
from sqlharbor.vault.keys import KeyEncryptionKey
from sqlharbor.vault.layout import Layout
from sqlharbor.vault.manifest import Manifest, digest_of_digests
from sqlharbor.vault.store import BlobStore

#: Called from worker threads with increments: (raw bytes, stored bytes) of one chunk.
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ReaderSettings:
    max_in_flight: int = 8
    parallelism: int = 4

    def __post_init__(self) -> None:
        if self.max_in_flight < 1 or self.parallelism < 1:
            raise ValueError("max_in_flight and parallelism must be at least 1")


DEFAULT_READER_SETTINGS = ReaderSettings()


@dataclass(frozen=True)
class _ChunkLocation:
    blob: str
    offset: int
    size: int


def chunk_locations(layout: Layout, manifest: Manifest) -> list[_ChunkLocation]:
    """Where each stored chunk lives: data blob part and byte range."""
    locations: list[_ChunkLocation] = []
    offset = 0
    for index, size in enumerate(manifest.chunk_stored_sizes):
        part, within = divmod(index, manifest.chunks_per_blob)
        if within == 0:
            offset = 0
        blob = layout.data_blob(
            manifest.instance, manifest.database_guid, manifest.recovery_point_id, part
        )
        locations.append(_ChunkLocation(blob, offset, size))
        offset += size
    return locations


class RecoveryPointReader:
    """A ``Source`` (``readinto``/``read``) over one committed recovery point."""

    def __init__(
        self,
        store: BlobStore,
        layout: Layout,
        kek: KeyEncryptionKey,
        manifest: Manifest,
        settings: ReaderSettings = DEFAULT_READER_SETTINGS,
        *,
        progress: ProgressCallback | None = None,
    ):
        self.manifest = manifest
        self._store = store
        self._settings = settings
        self._progress = progress
        data_key = kek.unwrap(
            manifest.data_key_wrapped,
            recovery_point_id=manifest.recovery_point_id,
            expected_key_id=manifest.kek_id,
        )
        self._codec = ChunkCodec(
            recovery_point_id=manifest.recovery_point_id,
            data_key=data_key,
            nonce_prefix=bytes.fromhex(manifest.nonce_prefix),
            compression=manifest.compression,
            level=manifest.compression_level,
            max_chunk_size=manifest.chunk_size,
        )
        self._locations = chunk_locations(layout, manifest)
        self._pool = ThreadPoolExecutor(settings.parallelism, thread_name_prefix="vault-reader")
        self._pending: deque[Future[tuple[bytes, bytes]]] = deque()
        self._next_submit = 0
        self._next_take = 0
        self._current = memoryview(b"")
        self._position = 0
        self._raw_hash = hashlib.sha256()
        self._raw_size = 0
        self._stored_digests: list[bytes] = []
        self._closed = False

    # -- the Source ---------------------------------------------------------------------

    def readinto(self, buffer: bytearray | memoryview, /) -> int:
        """Fill ``buffer`` with the next bytes; 0 at the (verified) end."""
        target = memoryview(buffer).cast("B")
        while self._position == len(self._current):
            if not self._advance():
                return 0
        count = min(len(target), len(self._current) - self._position)
        target[:count] = self._current[self._position : self._position + count]
        self._position += count
        return count

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes (all that is left when negative); b"" at the end."""
        if size == 0:
            return b""
        parts: list[bytes] = []
        wanted = size if size > 0 else None
        while wanted is None or wanted > 0:
            if self._position == len(self._current) and not self._advance():
                break
            end = len(self._current)
            if wanted is not None:
                end = min(end, self._position + wanted)
            parts.append(bytes(self._current[self._position : end]))
            if wanted is not None:
                wanted -= end - self._position
            self._position = end
        return b"".join(parts)

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        self._current = memoryview(b"")
        self._position = 0

    def __enter__(self) -> RecoveryPointReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- pipeline -----------------------------------------------------------------------

    def _advance(self) -> bool:
        """Take the next decoded chunk; False at the end."""
        if self._closed or self._next_take == len(self._locations):
            return False
        while len(self._pending) < self._settings.max_in_flight and self._next_submit < len(
            self._locations
        ):
            self._pending.append(self._pool.submit(self._fetch, self._next_submit))
            self._next_submit += 1
        try:
            raw, digest = self._pending.popleft().result()
        except BaseException:
            self.close()
            raise
        index = self._next_take
        self._next_take += 1
        self._raw_hash.update(raw)
        self._raw_size += len(raw)
        self._stored_digests.append(digest)
        self._check_chunk_size(index, len(raw))
        if self._next_take == len(self._locations):
            self._verify_stream()
            self._pool.shutdown(wait=False)  # nothing left to fetch
        self._current = memoryview(raw)
        self._position = 0
        return True

    def _fetch(self, index: int) -> tuple[bytes, bytes]:
        where = self._locations[index]
        point = self.manifest.recovery_point_id
        try:
            stored = self._store.get(where.blob, where.offset, where.size)
        except (TemporaryError, IntegrityError):
            raise
        except PermanentError as exc:
            raise IntegrityError(
                f"recovery point {point}: chunk {index} cannot be read from the vault ({exc.code})"
            ) from None
        if len(stored) != where.size:
            raise IntegrityError(
                f"recovery point {point}: chunk {index} is truncated "
                f"({len(stored)} of {where.size} bytes)"
            )
        last = index == len(self._locations) - 1
        raw = self._codec.decode(index, stored, last=last)
        if self._progress is not None:
            self._progress(len(raw), len(stored))
        return raw, hashlib.sha256(stored).digest()

    def _check_chunk_size(self, index: int, size: int) -> None:
        last = self._next_take == len(self._locations)
        chunk_size = self.manifest.chunk_size
        if size > chunk_size or (not last and size != chunk_size):
            self.close()
            raise IntegrityError(
                f"recovery point {self.manifest.recovery_point_id}: chunk {index} has "
                f"{size} bytes where the manifest says chunks are {chunk_size} bytes"
            )

    def _verify_stream(self) -> None:
        m = self.manifest
        problem = None
        if self._raw_size != m.raw_size:
            problem = f"stream has {self._raw_size} bytes, the manifest says {m.raw_size}"
        elif self._raw_hash.hexdigest() != m.raw_sha256:
            problem = "the stream's SHA-256 does not match the manifest"
        elif digest_of_digests(self._stored_digests) != m.stored_chunks_sha256:
            problem = "the stored chunks' digest does not match the manifest"
        if problem is not None:
            self.close()
            raise IntegrityError(f"recovery point {m.recovery_point_id}: {problem}")
