"""``RecoveryPointWriter``: the sink an engine streams a backup into.

Created by ``Vault.open_writer`` and handed to ``Engine.backup`` as its ``Sink``.  The
stream is cut into fixed-size chunks; each full chunk is compressed, encrypted and
staged as one block by a small thread pool.  At most ``max_in_flight`` chunks are
queued or uploading, and ``write`` blocks while that many are, so memory is bounded by
the chunks in flight (plus the one being filled), never by the database size.

``commit(record)`` uploads the last chunk, commits the block list(s), then writes the
manifest LAST with a create-only condition, then tells the catalog.  Until the
manifest exists the recovery point does not; ``abort()`` (also on leaving a ``with``
block without commit) stops the uploads and leaves only uncommitted blocks, which
Azure discards.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from sqlharbor import __version__
from sqlharbor.domain.backupset import BackupRecord, BackupType
from sqlharbor.errors import (
    AlreadyExists,
    ErrorCode,
    PermanentError,
    SqlHarborError,
    VaultAccessDenied,
)
from sqlharbor.vault.codec import (
    CIPHER,
    NONCE_PREFIX_BYTES,
    AssociatedData,
    ChunkCodec,
    Compression,
)
from sqlharbor.vault.keyring import VaultKeys
from sqlharbor.vault.keys import new_data_key
from sqlharbor.vault.layout import Layout
from sqlharbor.vault.manifest import (
    FORMAT_VERSION,
    MAX_BLOCKS_PER_BLOB,
    DataLayout,
    Encryption,
    Identity,
    Integrity,
    Manifest,
    Scope,
    Stripe,
    digest_of_digests,
)
from sqlharbor.vault.manifest_auth import seal
from sqlharbor.vault.manifest_backup import BackupFacts
from sqlharbor.vault.store import BlobStore, block_id

log = logging.getLogger(__name__)

#: Called from worker threads with increments: (raw bytes, stored bytes) of one chunk.
ProgressCallback = Callable[[int, int], None]

MiB = 1024 * 1024
#: the writer writes one stream, stripe 0 (striping is the pipeline's next step)
STRIPE = 0


@dataclass(frozen=True)
class WriterSettings:
    chunk_size: int = 4 * MiB
    max_in_flight: int = 8
    parallelism: int = 4
    compression: Compression = Compression.ZSTD
    compression_level: int = 3
    chunks_per_blob: int = MAX_BLOCKS_PER_BLOB

    def __post_init__(self) -> None:
        if not 0 < self.chunk_size <= 64 * MiB:
            raise ValueError("chunk_size must be between 1 byte and 64 MiB")
        if self.max_in_flight < 1 or self.parallelism < 1:
            raise ValueError("max_in_flight and parallelism must be at least 1")
        if not 0 < self.chunks_per_blob <= MAX_BLOCKS_PER_BLOB:
            raise ValueError(f"chunks_per_blob must be 1..{MAX_BLOCKS_PER_BLOB}")


DEFAULT_WRITER_SETTINGS = WriterSettings()


@dataclass(frozen=True)
class PointTarget:
    """Which recovery point a writer produces."""

    instance: str
    database_name: str
    database_guid: str
    backup_type: BackupType
    copy_only: bool
    recovery_point_id: str


class _State(enum.Enum):
    OPEN = "open"
    COMMITTED = "committed"
    ABORTED = "aborted"
    FAILED = "failed"


class RecoveryPointWriter:
    """A ``Sink``: ``write`` the backup stream, then ``commit`` or ``abort``."""

    def __init__(
        self,
        store: BlobStore,
        layout: Layout,
        keys: VaultKeys,
        target: PointTarget,
        settings: WriterSettings = DEFAULT_WRITER_SETTINGS,
        *,
        progress: ProgressCallback | None = None,
        on_commit: Callable[[Manifest], None] | None = None,
    ):
        self.target = target
        self._store = store
        self._layout = layout
        self._keys = keys
        self._settings = settings
        self._progress = progress
        self._on_commit = on_commit
        self._data_key = new_data_key()
        self._nonce_prefix = os.urandom(NONCE_PREFIX_BYTES)
        self._codec = ChunkCodec(
            recovery_point_id=target.recovery_point_id,
            data_key=self._data_key,
            nonce_prefix=self._nonce_prefix,
            compression=settings.compression,
            level=settings.compression_level,
            max_chunk_size=settings.chunk_size,
            scheme=AssociatedData.V2,
            stripe=STRIPE,
        )
        self._pool = ThreadPoolExecutor(settings.parallelism, thread_name_prefix="vault-writer")
        self._slots = threading.BoundedSemaphore(settings.max_in_flight)
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._stored_sizes: dict[int, int] = {}
        self._stored_digests: dict[int, bytes] = {}
        self._raw_hash = hashlib.sha256()
        self._raw_size = 0
        self._next_index = 0
        self._buffer = bytearray(settings.chunk_size)
        self._fill = 0
        self._state = _State.OPEN
        self._started = datetime.now(UTC)

    # -- the Sink ---------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        """Copy ``data`` into chunks; blocks while ``max_in_flight`` chunks are pending."""
        self._check_open()
        view = memoryview(data).cast("B")
        total = len(view)
        position = 0
        size = self._settings.chunk_size
        while position < total:
            if self._fill == size:  # a full chunk is the last one only if nothing follows
                self._submit(last=False)
            count = min(size - self._fill, total - position)
            self._buffer[self._fill : self._fill + count] = view[position : position + count]
            self._fill += count
            position += count
        self._raw_size += total
        return total

    @property
    def bytes_written(self) -> int:
        return self._raw_size

    # -- chunk pipeline -------------------------------------------------------------

    def _submit(self, *, last: bool) -> None:
        self._slots.acquire()
        if self._error is not None:
            self._slots.release()
            self._raise_failure()
        index = self._next_index
        self._next_index += 1
        chunk = memoryview(self._buffer)[: self._fill]
        self._raw_hash.update(chunk)
        self._buffer = bytearray(self._settings.chunk_size) if not last else bytearray()
        self._fill = 0
        try:
            self._pool.submit(self._process, index, chunk, last)
        except BaseException:
            self._slots.release()
            raise

    def _process(self, index: int, chunk: memoryview, last: bool) -> None:
        try:
            if self._error is not None:
                return
            stored = self._codec.encode(index, chunk, last=last)
            part = index // self._settings.chunks_per_blob
            t = self.target
            name = self._layout.data_blob(
                t.instance, t.database_guid, t.recovery_point_id, part, stripe=STRIPE
            )
            self._store.stage_block(name, block_id(index), stored)
            self._stored_sizes[index] = len(stored)
            self._stored_digests[index] = hashlib.sha256(stored).digest()
            if self._progress is not None:
                self._progress(len(chunk), len(stored))
        except BaseException as exc:
            with self._lock:
                if self._error is None:
                    self._error = exc
        finally:
            chunk.release()
            self._slots.release()

    def _drain(self) -> None:
        """Wait until every submitted chunk has finished (all slots free again)."""
        for _ in range(self._settings.max_in_flight):
            self._slots.acquire()
        for _ in range(self._settings.max_in_flight):
            self._slots.release()

    def _raise_failure(self) -> None:
        error = self._error
        self._shutdown(_State.FAILED)
        assert error is not None
        raise error

    def _check_open(self) -> None:
        if self._error is not None and self._state is _State.OPEN:
            self._raise_failure()
        if self._state is not _State.OPEN:
            raise PermanentError(
                f"recovery point {self.target.recovery_point_id} writer is {self._state.value}",
                code=ErrorCode.VAULT_WRITER_CLOSED,
            )

    def _shutdown(self, state: _State) -> None:
        if self._state is _State.OPEN:
            self._state = state
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._buffer = bytearray()

    # -- commit / abort ---------------------------------------------------------------

    def commit(self, record: BackupRecord) -> Manifest:
        """Make the recovery point exist: blocks, then manifest (create-only), then catalog."""
        self._check_open()
        self._check_record(record)
        try:
            self._submit(last=True)
            self._drain()
            if self._error is not None:
                self._raise_failure()
            self._commit_blocks()
            manifest = seal(self._build_manifest(record), self._data_key)
            self._put_manifest(manifest)
        except BaseException:
            self._shutdown(_State.FAILED)
            raise
        self._shutdown(_State.COMMITTED)
        self._notify(manifest)
        return manifest

    def abort(self) -> None:
        """Stop; nothing becomes visible (staged blocks are garbage Azure drops)."""
        if self._state is _State.OPEN:
            self._shutdown(_State.ABORTED)

    def __enter__(self) -> RecoveryPointWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def _check_record(self, record: BackupRecord) -> None:
        t = self.target
        expected = (t.database_guid, t.backup_type, t.copy_only)
        actual = (record.database_guid, record.backup_type, record.is_copy_only)
        if expected != actual:
            self.abort()
            raise PermanentError(
                f"recovery point {t.recovery_point_id} was opened for {expected} "
                f"but the engine reported {actual}",
                code=ErrorCode.VAULT_RECORD_MISMATCH,
            )

    def _commit_blocks(self) -> None:
        per_blob = self._settings.chunks_per_blob
        t = self.target
        for part, first in enumerate(range(0, self._next_index, per_blob)):
            ids = [block_id(i) for i in range(first, min(first + per_blob, self._next_index))]
            name = self._layout.data_blob(
                t.instance, t.database_guid, t.recovery_point_id, part, stripe=STRIPE
            )
            self._store.commit_blocks(name, ids)

    def _build_manifest(self, record: BackupRecord) -> Manifest:
        t = self.target
        count = self._next_index
        sizes = tuple(self._stored_sizes[i] for i in range(count))
        level = self._settings.compression_level
        stripe = Stripe(
            index=STRIPE,
            chunk_count=count,
            chunk_stored_sizes=sizes,
            raw_size=self._raw_size,
            stored_size=sum(sizes),
            nonce_prefix=self._nonce_prefix.hex(),
            stored_chunks_sha256=digest_of_digests([self._stored_digests[i] for i in range(count)]),
        )
        location = self._layout.locate(t.instance, t.database_guid, t.recovery_point_id)
        facts = BackupFacts.of(record).model_copy(update={"database_name": t.database_name})
        return Manifest(
            format_version=FORMAT_VERSION,
            identity=Identity(
                recovery_point_id=t.recovery_point_id,
                scope=Scope.instance(t.instance),
                database_id=t.database_guid,
                manifest_path=location.manifest_path,
            ),
            backup=facts,
            data=DataLayout(
                chunk_size=self._settings.chunk_size,
                chunks_per_blob=self._settings.chunks_per_blob,
                compression=self._settings.compression,
                compression_level=level if self._settings.compression is Compression.ZSTD else 0,
                raw_size=self._raw_size,
                stored_size=stripe.stored_size,
                stripes=(stripe,),
            ),
            encryption=Encryption(
                cipher=CIPHER,
                associated_data=AssociatedData.V2,
                data_key=self._keys.wrap_data_key(self._data_key),
            ),
            integrity=Integrity(raw_sha256=self._raw_hash.hexdigest()),
            authentication=None,  # sealed by commit
            committed_at=datetime.now(UTC),
            writer=f"sqlharbor/{__version__}",
        )

    def _put_manifest(self, manifest: Manifest) -> None:
        t = self.target
        name = self._layout.manifest_blob(t.instance, t.database_guid, t.recovery_point_id)
        body = manifest.to_json()
        try:
            self._store.put(name, body, if_absent=True)
        except AlreadyExists:
            # Our own earlier attempt may have landed before its answer was lost.
            try:
                same = self._store.get(name) == body
            except VaultAccessDenied:
                # A backup grant cannot read.  The point id is fresh and random, so this is
                # our own retry; the operator checks the manifest against what we report
                # before it indexes the point.
                log.info("manifest %s already exists (taken as this writer's retry)", name)
                return
            if not same:
                raise
            log.info("manifest %s was already written by this writer", name)

    def _notify(self, manifest: Manifest) -> None:
        if self._on_commit is None:
            return
        try:
            self._on_commit(manifest)
        except SqlHarborError as exc:
            log.warning(
                "recovery point %s committed but the catalog was not updated (%s: %s); "
                "a catalog rebuild will add it",
                manifest.identity.recovery_point_id,
                exc.code,
                exc,
            )
