"""One chunk of a backup stream in and out of its stored form: zstd, then AES-256-GCM.

Called by the writer (``encode``, on its worker threads) and the reader (``decode``).

Nonces are 96 bits: a random 32-bit prefix chosen per recovery point, then the 64-bit
chunk index.  The data key is fresh per recovery point, so the counter alone already
makes every (key, nonce) pair unique; the random prefix is a second guard should a key
ever be reused by mistake.  Deriving the nonce (instead of storing it) keeps a stored
chunk to ciphertext plus the 16-byte tag.

The associated data binds the recovery point id, the stripe (scheme v2), the chunk
index and a last-chunk flag, so a chunk that was moved (within its stripe or to another
one), dropped from the end, taken from another recovery point, flipped, or decrypted
with another key fails authentication and raises ``IntegrityError`` naming the recovery
point and the chunk.  The manifest names the scheme (``encryption.associated_data``):
version-1 points were written with ``sqlharbor/chunk/v1`` (no stripe) and are read with
it, byte for byte as they were written.
"""

from __future__ import annotations

import enum
import struct
import threading
from dataclasses import dataclass, field

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sqlharbor.errors import IntegrityError

CIPHER = "AES-256-GCM"
TAG_BYTES = 16
NONCE_PREFIX_BYTES = 4
MAX_STRIPE = 0xFFFF

Buffer = bytes | bytearray | memoryview


class Compression(enum.StrEnum):
    ZSTD = "zstd"
    NONE = "none"


_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    """zstd (de)compressors are not thread-safe: one per thread and level."""
    cache: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("compressors", {})
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    if not hasattr(_local, "decompressor"):
        _local.decompressor = zstandard.ZstdDecompressor()
    return _local.decompressor  # type: ignore[no-any-return]


class AssociatedData(enum.StrEnum):
    """The associated-data scheme of a point's chunks; the value is its context string."""

    #: ``context \0 point-id \0 index:u64 last:bool`` (format version 1, no stripe)
    V1 = "sqlharbor/chunk/v1"
    #: ``context \0 point-id \0 stripe:u16 index:u64 last:bool`` (format version 2)
    V2 = "sqlharbor/chunk/v2"


def associated_data(
    scheme: AssociatedData, recovery_point_id: str, stripe: int, index: int, last: bool
) -> bytes:
    """The bytes a chunk's AES-GCM tag binds (big-endian integers)."""
    head = (scheme.value.encode(), b"\0", recovery_point_id.encode(), b"\0")
    if scheme is AssociatedData.V1:
        if stripe != 0:
            raise ValueError("the version-1 associated data has no stripe")
        return b"".join((*head, struct.pack(">Q?", index, last)))
    return b"".join((*head, struct.pack(">HQ?", stripe, index, last)))


@dataclass(frozen=True)
class ChunkCodec:
    """Encodes and decodes the chunks of one recovery point (thread-safe)."""

    recovery_point_id: str
    data_key: bytes = field(repr=False)
    nonce_prefix: bytes
    compression: Compression = Compression.ZSTD
    level: int = 3
    max_chunk_size: int = 4 * 1024 * 1024
    scheme: AssociatedData = AssociatedData.V2
    stripe: int = 0

    def __post_init__(self) -> None:
        if len(self.nonce_prefix) != NONCE_PREFIX_BYTES:
            raise ValueError(f"nonce prefix must be {NONCE_PREFIX_BYTES} bytes")
        if not 0 <= self.stripe <= MAX_STRIPE or (
            self.scheme is AssociatedData.V1 and self.stripe != 0
        ):
            raise ValueError(f"stripe {self.stripe} cannot be bound by {self.scheme.value}")

    def _aad(self, index: int, last: bool) -> bytes:
        return associated_data(self.scheme, self.recovery_point_id, self.stripe, index, last)

    def _where(self) -> str:
        stripe = f" stripe {self.stripe}" if self.stripe else ""
        return f"recovery point {self.recovery_point_id}{stripe}"

    def _nonce(self, index: int) -> bytes:
        return self.nonce_prefix + struct.pack(">Q", index)

    def encode(self, index: int, chunk: Buffer, *, last: bool) -> bytes:
        """Compress and encrypt one chunk; returns ciphertext followed by the tag."""
        payload: Buffer = chunk
        if self.compression is Compression.ZSTD:
            payload = _compressor(self.level).compress(chunk)
        return AESGCM(self.data_key).encrypt(self._nonce(index), payload, self._aad(index, last))

    def decode(self, index: int, stored: Buffer, *, last: bool) -> bytes:
        """Authenticate, decrypt and decompress one chunk, or raise ``IntegrityError``."""
        try:
            payload = AESGCM(self.data_key).decrypt(
                self._nonce(index), stored, self._aad(index, last)
            )
        except InvalidTag:
            position = "last chunk" if last else "chunk"
            raise IntegrityError(
                f"{self._where()}: {position} {index} failed authentication (damaged, "
                "reordered, truncated, moved between stripes, taken from another recovery "
                "point, or encrypted with another key)"
            ) from None
        if self.compression is Compression.NONE:
            return payload
        try:
            return _decompressor().decompress(payload, max_output_size=self.max_chunk_size)
        except zstandard.ZstdError:
            raise IntegrityError(f"{self._where()}: chunk {index} does not decompress") from None
