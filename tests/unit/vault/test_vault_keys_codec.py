"""Keys and the chunk codec: every kind of tampering fails with a clear IntegrityError."""

from __future__ import annotations

import base64
import os

import pytest

from sqlharbor.errors import ErrorCode, IntegrityError, InvalidKey, PermanentError
from sqlharbor.vault import ChunkCodec, Compression, KeyEncryptionKey
from sqlharbor.vault.keys import new_data_key

POINT = "20261124T180102Z-F-1a2b3c4d"


def test_kek_from_base64_and_a_public_id() -> None:
    raw = os.urandom(32)
    kek = KeyEncryptionKey.from_base64(base64.b64encode(raw).decode() + "\n")
    assert kek.key == raw
    assert len(kek.key_id) == 16
    assert kek.key_id == KeyEncryptionKey(raw).key_id
    assert kek.key_id != KeyEncryptionKey.generate().key_id
    assert raw.hex() not in repr(kek)
    assert base64.b64encode(raw).decode() not in repr(kek)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"k" * 16).decode(), "decodes to 16 bytes"),
        (base64.b64encode(b"k" * 33).decode(), "decodes to 33 bytes"),
    ],
)
def test_bad_kek_is_refused_without_echoing_it(text: str, fragment: str) -> None:
    with pytest.raises(InvalidKey) as caught:
        KeyEncryptionKey.from_base64(text, source="Secret prod/vault-key")
    message = str(caught.value)
    assert fragment in message
    assert "Secret prod/vault-key" in message
    assert text not in message
    assert isinstance(caught.value, PermanentError)
    assert caught.value.code == ErrorCode.VAULT_KEY_INVALID


def test_data_key_wrap_round_trip_and_wrong_kek() -> None:
    kek, other = KeyEncryptionKey.generate(), KeyEncryptionKey.generate()
    data_key = new_data_key()
    wrapped = kek.wrap(data_key)
    assert kek.unwrap(wrapped, recovery_point_id=POINT, expected_key_id=kek.key_id) == data_key
    with pytest.raises(IntegrityError, match=f"{POINT}.*written with key-encryption key"):
        other.unwrap(wrapped, recovery_point_id=POINT, expected_key_id=kek.key_id)
    with pytest.raises(IntegrityError, match="wrapped data key failed authentication"):
        other.unwrap(wrapped, recovery_point_id=POINT, expected_key_id=other.key_id)


def _codec(point: str = POINT, key: bytes | None = None, **kwargs: object) -> ChunkCodec:
    return ChunkCodec(
        recovery_point_id=point,
        data_key=key or KEY,
        nonce_prefix=b"\x01\x02\x03\x04",
        max_chunk_size=1 << 16,
        **kwargs,  # type: ignore[arg-type]
    )


KEY = new_data_key()
CHUNKS = [os.urandom(300) + b"A" * 700, b"B" * 1000, b"tail"]


def _encode_all(codec: ChunkCodec) -> list[bytes]:
    last = len(CHUNKS) - 1
    return [codec.encode(i, c, last=i == last) for i, c in enumerate(CHUNKS)]


@pytest.mark.parametrize("compression", [Compression.ZSTD, Compression.NONE])
def test_round_trip(compression: Compression) -> None:
    codec = _codec(compression=compression)
    stored = _encode_all(codec)
    decoded = [codec.decode(i, s, last=i == 2) for i, s in enumerate(stored)]
    assert decoded == CHUNKS
    assert codec.decode(0, codec.encode(0, b"", last=True), last=True) == b""
    if compression is Compression.ZSTD:
        assert len(stored[1]) < 100  # compressed before encryption


def test_a_flipped_byte_is_detected() -> None:
    codec = _codec()
    stored = bytearray(_encode_all(codec)[1])
    stored[len(stored) // 2] ^= 0x01
    with pytest.raises(IntegrityError, match=f"recovery point {POINT}: chunk 1 failed"):
        codec.decode(1, stored, last=False)


def test_swapped_chunks_are_detected() -> None:
    codec = _codec()
    stored = _encode_all(codec)
    with pytest.raises(IntegrityError, match="chunk 0 failed"):
        codec.decode(0, stored[1], last=False)


def test_truncation_is_detected_by_the_last_chunk_flag() -> None:
    codec = _codec()
    stored = _encode_all(codec)
    # Drop the real last chunk: chunk 1 now claims to be last and must not authenticate.
    with pytest.raises(IntegrityError, match="last chunk 1 failed"):
        codec.decode(1, stored[1], last=True)


def test_a_chunk_from_another_recovery_point_is_detected() -> None:
    # Same key and nonce prefix on purpose: only the associated data differs.
    other = _codec(point="20261124T180103Z-F-99999999")
    spliced = other.encode(0, CHUNKS[0], last=False)
    with pytest.raises(IntegrityError, match=f"{POINT}: chunk 0"):
        _codec().decode(0, spliced, last=False)


def test_a_wrong_data_key_is_detected() -> None:
    stored = _encode_all(_codec())
    with pytest.raises(IntegrityError, match="another key"):
        _codec(key=new_data_key()).decode(0, stored[0], last=False)
