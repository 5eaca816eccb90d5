"""Keys and the chunk codec: every kind of tampering fails with a clear IntegrityError."""

from __future__ import annotations

import base64
import os

import pytest

from sqlharbor.errors import ErrorCode, IntegrityError, InvalidKey, PermanentError
from sqlharbor.vault import ChunkCodec, Compression, KeyEncryptionKey
from sqlharbor.vault.codec import AssociatedData, associated_data
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


def test_associated_data_of_both_schemes_byte_for_byte() -> None:
    point = POINT.encode()
    assert associated_data(AssociatedData.V1, POINT, 0, 3, True) == (
        b"sqlharbor/chunk/v1\0" + point + b"\0" + (3).to_bytes(8, "big") + b"\x01"
    )
    assert associated_data(AssociatedData.V2, POINT, 2, 3, False) == (
        b"sqlharbor/chunk/v2\0"
        + point
        + b"\0"
        + (2).to_bytes(2, "big")
        + (3).to_bytes(8, "big")
        + b"\x00"
    )
    with pytest.raises(ValueError, match="no stripe"):
        associated_data(AssociatedData.V1, POINT, 1, 0, False)
    with pytest.raises(ValueError, match="stripe 1"):
        _codec(scheme=AssociatedData.V1, stripe=1)


def test_a_v2_chunk_moved_to_another_stripe_or_index_fails() -> None:
    stored = _codec(stripe=1).encode(4, CHUNKS[0], last=False)
    assert _codec(stripe=1).decode(4, stored, last=False) == CHUNKS[0]
    with pytest.raises(IntegrityError, match=f"recovery point {POINT}: chunk 4 failed"):
        _codec(stripe=0).decode(4, stored, last=False)
    with pytest.raises(IntegrityError, match=f"{POINT} stripe 2: chunk 4 failed"):
        _codec(stripe=2).decode(4, stored, last=False)
    with pytest.raises(IntegrityError, match=f"{POINT} stripe 1: chunk 5 failed"):
        _codec(stripe=1).decode(5, stored, last=False)


def test_v1_chunks_decode_with_the_v1_scheme_only() -> None:
    v1 = _codec(scheme=AssociatedData.V1)
    stored = _encode_all(v1)
    assert [v1.decode(i, s, last=i == 2) for i, s in enumerate(stored)] == CHUNKS
    with pytest.raises(IntegrityError, match="chunk 0 failed"):
        _codec(scheme=AssociatedData.V2).decode(0, stored[0], last=False)
    v2_stored = _codec().encode(0, CHUNKS[0], last=False)
    with pytest.raises(IntegrityError, match="chunk 0 failed"):
        v1.decode(0, v2_stored, last=False)
