"""One chunk of a backup stream in and out of its stored form: zstd, then AES-256-GCM.

Called by the writer (``encode``, on its worker threads) and the reader (``decode``).

Nonces are 96 bits: a random 32-bit prefix chosen per recovery point, then the 64-bit
chunk index.  The data key is fresh per recovery point, so the counter alone already
makes every (key, nonce) pair unique; the random prefix is a second guard should a key
ever be reused by mistake.  Deriving the nonce (instead of storing it) keeps a stored
chunk to ciphertext plus the 16-byte tag.

The associated data binds the recovery point id, the chunk index and a last-chunk
flag, so a chunk that was moved, dropped from the end, taken from another recovery
point, flipped, or decrypted with another key fails authentication and raises
``IntegrityError`` naming the recovery point and the chunk.
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
_AAD_CONTEXT = b"sqlharbor/chunk/v1\0"

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


def associated_data(recovery_point_id: str, index: int, last: bool) -> bytes:
    return b"".join(
        (_AAD_CONTEXT, recovery_point_id.encode(), b"\0", struct.pack(">Q?", index, last))
    )


@dataclass(frozen=True)
class ChunkCodec:
    """Encodes and decodes the chunks of one recovery point (thread-safe)."""

    recovery_point_id: str
    data_key: bytes = field(repr=False)
    nonce_prefix: bytes
    compression: Compression = Compression.ZSTD
    level: int = 3
    max_chunk_size: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if len(self.nonce_prefix) != NONCE_PREFIX_BYTES:
            raise ValueError(f"nonce prefix must be {NONCE_PREFIX_BYTES} bytes")

    def _nonce(self, index: int) -> bytes:
        return self.nonce_prefix + struct.pack(">Q", index)

    def encode(self, index: int, chunk: Buffer, *, last: bool) -> bytes:
        """Compress and encrypt one chunk; returns ciphertext followed by the tag."""
        payload: Buffer = chunk
        if self.compression is Compression.ZSTD:
            payload = _compressor(self.level).compress(chunk)
        aad = associated_data(self.recovery_point_id, index, last)
        return AESGCM(self.data_key).encrypt(self._nonce(index), payload, aad)

    def decode(self, index: int, stored: Buffer, *, last: bool) -> bytes:
        """Authenticate, decrypt and decompress one chunk, or raise ``IntegrityError``."""
        aad = associated_data(self.recovery_point_id, index, last)
        try:
            payload = AESGCM(self.data_key).decrypt(self._nonce(index), stored, aad)
        except InvalidTag:
            position = "last chunk" if last else "chunk"
            raise IntegrityError(
                f"recovery point {self.recovery_point_id}: {position} {index} failed "
                "authentication (damaged, reordered, truncated, taken from another "
                "recovery point, or encrypted with another key)"
            ) from None
        if self.compression is Compression.NONE:
            return payload
        try:
            return _decompressor().decompress(payload, max_output_size=self.max_chunk_size)
        except zstandard.ZstdError:
            raise IntegrityError(
                f"recovery point {self.recovery_point_id}: chunk {index} does not decompress"
            ) from None
