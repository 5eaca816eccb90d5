"""``RecoveryPointReader``: a recovery point's stream back, verified, as a ``Source``.

Created by ``Vault.open_reader(manifest)`` (one reader per stripe) and handed to
``Engine.restore`` inside a ``RestoreStep`` (the CLI's "restore as files" reads it too).
Chunks are fetched by byte range, authenticated, decrypted and decompressed by a small
thread pool, up to ``max_in_flight`` ahead of the consumer, and handed out strictly in
order.  The whole-stream SHA-256 (when the manifest has one), the size and the
stored-chunk digest are checked as the last chunk is taken, before any of its bytes are
returned, so a consumer never sees the end of a stream that does not verify.  Chunks are
decoded with the associated-data scheme the manifest names (version-1 points with the
version-1 scheme).  Before anything is fetched the reader checks that the manifest's
identity names the place its data is read from (``read_manifest`` has already checked
it against where the manifest itself was read).  Every integrity failure raises
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
from sqlharbor.vault.keyring import VaultKeys
from sqlharbor.vault.layout import Layout
from sqlharbor.vault.manifest import Manifest, Stripe, digest_of_digests
from sqlharbor.vault.manifest_auth import verify
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


def data_blobs(layout: Layout, manifest: Manifest) -> list[str]:
    """Every data blob of the point, every stripe's."""
    ident = manifest.identity
    return [
        layout.data_blob(
            ident.scope.name, ident.database_id, ident.recovery_point_id, part, stripe=stripe
        )
        for stripe, part in manifest.data.parts()
    ]


def chunk_locations(layout: Layout, manifest: Manifest, stripe: int = 0) -> list[_ChunkLocation]:
    """Where each stored chunk of ``stripe`` lives: data blob part and byte range."""
    ident = manifest.identity
    locations: list[_ChunkLocation] = []
    offset = 0
    per_blob = manifest.data.chunks_per_blob
    for index, size in enumerate(manifest.data.stripes[stripe].chunk_stored_sizes):
        part, within = divmod(index, per_blob)
        if within == 0:
            offset = 0
        blob = layout.data_blob(
            ident.scope.name, ident.database_id, ident.recovery_point_id, part, stripe=stripe
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
        keys: VaultKeys,
        manifest: Manifest,
        settings: ReaderSettings = DEFAULT_READER_SETTINGS,
        *,
        stripe: int = 0,
        progress: ProgressCallback | None = None,
    ):
        ident = manifest.identity
        self.manifest = manifest
        self.point = ident.recovery_point_id
        self._store = store
        self._settings = settings
        self._progress = progress
        if not 0 <= stripe < len(manifest.data.stripes):
            raise ValueError(
                f"recovery point {self.point} has {len(manifest.data.stripes)} stripe(s), "
                f"not a stripe {stripe}"
            )
        self._stripe: Stripe = manifest.data.stripes[stripe]
        where = layout.locate(ident.scope.name, ident.database_id, self.point)
        if where.manifest_path != ident.manifest_path:
            raise IntegrityError(
                f"recovery point {self.point}: the manifest names itself "
                f"{ident.manifest_path} but describes the point at {where.manifest_path}"
            )
        data_key = keys.data_key(manifest)
        verify(manifest, data_key)  # before any data moves
        self._codec = ChunkCodec(
            recovery_point_id=self.point,
            data_key=data_key,
            nonce_prefix=bytes.fromhex(self._stripe.nonce_prefix),
            compression=manifest.data.compression,
            level=manifest.data.compression_level,
            max_chunk_size=manifest.data.chunk_size,
            scheme=manifest.encryption.associated_data,
            stripe=stripe,
        )
        self._locations = chunk_locations(layout, manifest, stripe)
        self._pool = ThreadPoolExecutor(settings.parallelism, thread_name_prefix="vault-reader")
        self._pending: deque[Future[tuple[bytes, bytes]]] = deque()
        self._next_submit = 0
        self._next_take = 0
        self._current = memoryview(b"")
        self._position = 0
        self._raw_hash = hashlib.sha256() if manifest.integrity.raw_sha256 is not None else None
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
        if self._raw_hash is not None:
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
        point = self.point
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
        chunk_size = self.manifest.data.chunk_size
        if size > chunk_size or (not last and size != chunk_size):
            self.close()
            raise IntegrityError(
                f"recovery point {self.point}: chunk {index} has "
                f"{size} bytes where the manifest says chunks are {chunk_size} bytes"
            )

    def _verify_stream(self) -> None:
        stripe = self._stripe
        expected_sha256 = self.manifest.integrity.raw_sha256
        problem = None
        if self._raw_size != stripe.raw_size:
            problem = f"stream has {self._raw_size} bytes, the manifest says {stripe.raw_size}"
        elif self._raw_hash is not None and self._raw_hash.hexdigest() != expected_sha256:
            problem = "the stream's SHA-256 does not match the manifest"
        elif digest_of_digests(self._stored_digests) != stripe.stored_chunks_sha256:
            problem = "the stored chunks' digest does not match the manifest"
        if problem is not None:
            self.close()
            raise IntegrityError(f"recovery point {self.point}: {problem}")
