"""Which key wraps a new point's data key, and which keys open an old point's.

``VaultKeys`` is what a ``Vault`` holds: ``wrap_data_key`` (a writer, at commit) and
``data_key`` (a reader, and ``Vault.authenticate``, before any data moves).  Each holder
of a vault gets exactly the half it may have:

- ``PublicWrapper`` -- the agent's backups: the vault's *public* RSA key (from its job's
  grant).  It wraps; it cannot open anything, not even the points it wrote.
- ``GrantedKeys`` -- the agent's restores: the data keys of exactly the planned points,
  unwrapped by the operator and sealed to the agent (``sqlharbor.vault.sealing``).
- ``Keyring`` -- the operator and the CLI: the vault's current key and every previous
  one (``UnwrappingKey``: a Secret's RSA key or a Key Vault key; or a legacy AES
  ``KeyEncryptionKey``).  It wraps with the current key and opens a point with whichever
  listed key its manifest names; a point whose key is not listed raises
  ``KeyUnavailable`` naming the key id and version.

``KeyEncryptionKey`` (the version-1 symmetric KEK) implements both halves itself, so
points written with it stay readable.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Protocol

from sqlharbor.domain.backupset import PointKey, RecoveryPoint
from sqlharbor.errors import ErrorCode, IntegrityError, InvalidInput, KeyUnavailable
from sqlharbor.vault.keys import KEY_BYTES, KEY_WRAP_ALGORITHM, KeyEncryptionKey
from sqlharbor.vault.manifest import DataKey, Manifest
from sqlharbor.vault.wrapping import ALGORITHM as RSA_WRAP_ALGORITHM
from sqlharbor.vault.wrapping import UnwrappingKey, WrappingKey


class VaultKeys(Protocol):
    """The key side of a ``Vault``."""

    def wrap_data_key(self, data_key: bytes) -> DataKey:
        """The manifest's ``encryption.dataKey`` for a new point's data key."""
        ...

    def data_key(self, manifest: Manifest) -> bytes:
        """The 32-byte data key of the point ``manifest`` describes."""
        ...


def _point(manifest: Manifest) -> str:
    return manifest.identity.recovery_point_id


class PublicWrapper:
    """Wraps with the vault's public key; opens nothing (an agent's backups)."""

    def __init__(self, key: WrappingKey) -> None:
        self.key = key

    def wrap_data_key(self, data_key: bytes) -> DataKey:
        return rsa_data_key(self.key, data_key)

    def data_key(self, manifest: Manifest) -> bytes:
        raise KeyUnavailable(
            f"recovery point {_point(manifest)}: this agent holds only the vault's public "
            "key, which cannot open any recovery point; a restore brings its points' keys",
            code=ErrorCode.KEY_NOT_GRANTED,
        )

    def __repr__(self) -> str:
        return f"PublicWrapper({self.key!r})"


def rsa_data_key(key: WrappingKey, data_key: bytes) -> DataKey:
    """``data_key`` wrapped with ``key`` (RSA-OAEP-256), as a manifest records it."""
    return DataKey(
        wrap=RSA_WRAP_ALGORITHM,
        key_id=key.key_id,
        key_version=key.key_version,
        wrapped=base64.b64encode(key.wrap(data_key)).decode("ascii"),
    )


class GrantedKeys:
    """The data keys of one restore's planned points; wraps nothing."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        for point, key in keys.items():
            if len(key) != KEY_BYTES:
                raise IntegrityError(f"the granted data key of {point} has the wrong length")
        self._keys = dict(keys)

    def wrap_data_key(self, data_key: bytes) -> DataKey:
        raise KeyUnavailable(
            "a restore grant holds data keys of existing points only; it cannot wrap a new one",
            code=ErrorCode.KEY_NOT_GRANTED,
        )

    def data_key(self, manifest: Manifest) -> bytes:
        try:
            return self._keys[_point(manifest)]
        except KeyError:
            raise KeyUnavailable(
                f"recovery point {_point(manifest)} is not in this restore's grant",
                code=ErrorCode.KEY_NOT_GRANTED,
            ) from None

    def __repr__(self) -> str:
        return f"GrantedKeys({len(self._keys)} points)"


Listed = UnwrappingKey | KeyEncryptionKey


class Keyring:
    """The vault's keys, current first: wraps with the current, opens with any listed."""

    def __init__(self, keys: Sequence[Listed]) -> None:
        if not keys:
            raise InvalidInput("a keyring needs at least its current key")
        self.keys: tuple[Listed, ...] = tuple(keys)

    @property
    def current(self) -> Listed:
        return self.keys[0]

    def public_refusal(self) -> str:
        return (
            f"the vault's current key ({describe(self.current)}) is a symmetric "
            "key-encryption key, which every VM would have to hold to wrap with; create an RSA "
            "wrapping key (kubectl sqlharbor vault keygen) and make it the current key"
        )

    def public(self) -> WrappingKey:
        """The current key's public half, which agents wrap with."""
        current = self.current
        if isinstance(current, KeyEncryptionKey):
            raise InvalidInput(self.public_refusal(), code=ErrorCode.VAULT_KEY_INVALID)
        return current.public()

    def wrap_data_key(self, data_key: bytes) -> DataKey:
        current = self.current
        if isinstance(current, KeyEncryptionKey):
            return current.wrap_data_key(data_key)
        return rsa_data_key(current.public(), data_key)

    def find(self, wrapped: DataKey) -> Listed | None:
        """The listed key that wrapped ``wrapped``, or None."""
        return self.find_key(wrapped.wrap, wrapped.key_id, wrapped.key_version)

    def find_key(self, wrap: str, key_id: str, key_version: str) -> Listed | None:
        for key in self.keys:
            if isinstance(key, KeyEncryptionKey):
                if wrap == KEY_WRAP_ALGORITHM and key_id == key.key_id:
                    return key
            elif wrap == RSA_WRAP_ALGORITHM and (key_id, key_version) == (
                key.key_id,
                key.key_version,
            ):
                return key
        return None

    def holds(self, wrapped: DataKey) -> bool:
        return self.find(wrapped) is not None

    def opens(self, point: RecoveryPoint) -> bool:
        """Whether a listed key opens ``point`` (as the catalog knows it; a catalog line
        without its key, written before keys were recorded, is taken as readable: the
        restore's grant still checks the manifest itself)."""
        key = point.key
        return key is None or self.find_key(key.wrap, key.key_id, key.key_version) is not None

    def is_current(self, point: RecoveryPoint) -> bool:
        """Whether ``point`` is wrapped with the current key (``vault rekey`` skips it)."""
        key, current = point.key, self.current
        if key is None:
            return False
        if isinstance(current, KeyEncryptionKey):
            return key.wrap == KEY_WRAP_ALGORITHM and key.key_id == current.key_id
        return key.wrap == RSA_WRAP_ALGORITHM and (key.key_id, key.key_version) == (
            current.key_id,
            current.key_version,
        )

    def data_key(self, manifest: Manifest) -> bytes:
        wrapped = manifest.encryption.data_key
        key = self.find(wrapped)
        if key is None:
            raise missing_key(_point(manifest), wrapped)
        if isinstance(key, KeyEncryptionKey):
            return key.data_key(manifest)
        return key.unwrap(wrapped.wrapped_bytes, recovery_point_id=_point(manifest))

    def __repr__(self) -> str:
        return f"Keyring({len(self.keys)} keys, current {describe(self.current)})"


def point_key(key: Listed) -> PointKey:
    """How a point wrapped with ``key`` names it (its catalog line, ``RecoveryPoint.key``);
    a symmetric key has no version."""
    if isinstance(key, KeyEncryptionKey):
        return PointKey(KEY_WRAP_ALGORITHM, key.key_id, "")
    return PointKey(RSA_WRAP_ALGORITHM, key.key_id, key.key_version)


def describe(key: Listed) -> str:
    if isinstance(key, KeyEncryptionKey):
        return f"key {key.key_id} ({KEY_WRAP_ALGORITHM})"
    return key.describe()


def missing_key(recovery_point_id: str, wrapped: DataKey) -> KeyUnavailable:
    version = f" version {wrapped.key_version}" if wrapped.key_version else ""
    return KeyUnavailable(
        f"recovery point {recovery_point_id} was wrapped with key {wrapped.key_id}{version} "
        f"({wrapped.wrap}), which the vault does not list",
        code=ErrorCode.KEY_NOT_LISTED,
    )
