"""The vault's keys: the user's key-encryption key (KEK) and per-recovery-point data keys.

Each recovery point is encrypted with a fresh random 32-byte data key; the manifest
stores that key wrapped with the KEK (AES key wrap, RFC 3394) and the KEK's public id
(a fingerprint), so a restore can say "this point was written with another key" before
touching data.  The KEK arrives base64-encoded from a Kubernetes Secret or a file; the
agent and the CLI build a ``KeyEncryptionKey`` from it and hand it to ``Vault``.
Nothing here ever puts key material into a message, a repr or a log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from sqlharbor.errors import ErrorCode, IntegrityError, InvalidKey, KeyUnavailable

if TYPE_CHECKING:
    from sqlharbor.vault.manifest import DataKey, Manifest

KEY_BYTES = 32
KEY_WRAP_ALGORITHM = "AES-256-KW"  # RFC 3394
_FINGERPRINT_CONTEXT = b"sqlharbor/kek-id/v1\0"


@dataclass(frozen=True)
class KeyEncryptionKey:
    """32 raw bytes that wrap every data key of a vault; ``key_id`` is safe to publish."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise InvalidKey(
                f"the key-encryption key must be {KEY_BYTES} bytes, got {len(self.key)} bytes"
            )

    @classmethod
    def from_base64(cls, text: str | bytes, *, source: str = "the key Secret") -> KeyEncryptionKey:
        """Decode a base64 KEK; ``source`` names where it came from for the error message."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidKey(f"the key-encryption key in {source} is not valid base64") from None
        if len(raw) != KEY_BYTES:
            raise InvalidKey(
                f"the key-encryption key in {source} decodes to {len(raw)} bytes; "
                f"it must be exactly {KEY_BYTES} bytes"
            )
        return cls(raw)

    @classmethod
    def generate(cls) -> KeyEncryptionKey:
        return cls(os.urandom(KEY_BYTES))

    def to_base64(self) -> str:
        return base64.b64encode(self.key).decode("ascii")

    @property
    def key_id(self) -> str:
        """A public fingerprint (16 hex digits) naming this KEK in manifests."""
        return hashlib.sha256(_FINGERPRINT_CONTEXT + self.key).hexdigest()[:16]

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self.key, data_key)

    def unwrap(self, wrapped: bytes, *, recovery_point_id: str, expected_key_id: str) -> bytes:
        """Unwrap a data key, or raise ``IntegrityError`` naming the recovery point."""
        if expected_key_id != self.key_id:
            raise IntegrityError(
                f"recovery point {recovery_point_id} was written with key-encryption key "
                f"{expected_key_id}, but this vault is configured with {self.key_id}"
            )
        try:
            data_key = aes_key_unwrap(self.key, wrapped)
        except (InvalidUnwrap, ValueError):
            raise IntegrityError(
                f"recovery point {recovery_point_id}: the wrapped data key failed "
                "authentication (wrong key-encryption key or damaged manifest)"
            ) from None
        if len(data_key) != KEY_BYTES:
            raise IntegrityError(
                f"recovery point {recovery_point_id}: the data key has the wrong length"
            )
        return data_key

    # -- the two halves of ``keyring.VaultKeys`` (a legacy key holds both) ---------------
    def wrap_data_key(self, data_key: bytes) -> DataKey:
        from sqlharbor.vault.manifest import DataKey

        return DataKey(
            wrap=KEY_WRAP_ALGORITHM,
            key_id=self.key_id,
            key_version="",
            wrapped=base64.b64encode(self.wrap(data_key)).decode("ascii"),
        )

    def data_key(self, manifest: Manifest) -> bytes:
        wrapped = manifest.encryption.data_key
        point = manifest.identity.recovery_point_id
        if wrapped.wrap != KEY_WRAP_ALGORITHM or wrapped.key_id != self.key_id:
            version = f" version {wrapped.key_version}" if wrapped.key_version else ""
            raise KeyUnavailable(
                f"recovery point {point} was wrapped with key {wrapped.key_id}{version} "
                f"({wrapped.wrap}), which the vault does not list",
                code=ErrorCode.KEY_NOT_LISTED,
            )
        return self.unwrap(
            wrapped.wrapped_bytes,
            recovery_point_id=manifest.identity.recovery_point_id,
            expected_key_id=wrapped.key_id,
        )


def new_data_key() -> bytes:
    """A fresh random AES-256 key for one recovery point."""
    return os.urandom(KEY_BYTES)
