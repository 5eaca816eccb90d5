"""An ``UnwrappingKey`` in Azure Key Vault (or Managed HSM): the private half never leaves it.

``KeyVaultKey(key_url, credential)`` reads the key's public JWK with ``KeyClient.get_key``
(``public()``, for the operator to publish to the agents) and unwraps data keys on the
service side with ``CryptographyClient.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, ...)``
(``unwrap()``, for restores).  A key URL without a version means the latest: the first
call that needs the version resolves it once, and this object keeps that concrete version
(``key_version``); ``at_version`` gives the same key at another version (rotation: old
recovery points name the version that wrapped them).

This is the only module of sqlharbor that imports ``azure.keyvault``; its exceptions
become the sqlharbor tree in ``keyvault_errors.translate`` (the SDK's exception is not
chained, and nothing secret is in a message).  The credential comes from
``sqlharbor.vault.identity``.  Called by the operator and the CLI.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
)
from azure.keyvault.keys import KeyClient, KeyVaultKeyIdentifier
from azure.keyvault.keys import KeyVaultKey as SdkKey
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm, SignatureAlgorithm

from sqlharbor.errors import (
    ErrorCode,
    InvalidInput,
    InvalidKey,
    PermanentError,
)
from sqlharbor.vault.keyvault_errors import plain, translate
from sqlharbor.vault.wrapping import (
    LEGACY_MIN_RSA_BITS,
    UnwrappingKey,
    WrappingKey,
    b64url_encode,
    checked_data_key,
    unwrap_failed,
)

_RSA_KEY_TYPES = frozenset({"RSA", "RSA-HSM"})


def parse_key_url(key_url: str) -> tuple[str, str, str | None]:
    """``https://VAULT/keys/NAME[/VERSION]`` as (vault URL, name, version or None)."""
    parts = urlsplit(key_url.strip())
    path = [p for p in parts.path.split("/") if p]
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.query
        or parts.fragment
        or len(path) not in (2, 3)
        or path[0] != "keys"
    ):
        raise InvalidInput(
            f"{key_url[:200]!r} is not a Key Vault key URL (https://VAULT/keys/NAME[/VERSION])"
        )
    vault_url = f"https://{parts.netloc}"
    return vault_url, path[1], path[2] if len(path) == 3 else None


class KeyVaultKey(UnwrappingKey):
    """An RSA key in Key Vault, reached with an azure-identity ``credential``.

    ``ca_bundle`` is a PEM file of CAs to trust instead of the system's (a private
    endpoint's TLS proxy, or the tests' stand-in); ``verify_challenge_resource=False``
    accepts an authentication challenge whose resource is not the vault's domain (only
    the stand-in needs it); ``retry_total`` is the SDK's own retries of throttled and
    failed requests (sqlharbor's loops retry ``TemporaryError`` after that);
    ``min_bits`` the smallest key accepted (2048: keys that exist already);
    ``timeout_seconds`` bounds connecting and each read (azure-core's default: 300 s)."""

    def __init__(
        self,
        key_url: str,
        credential: TokenCredential,
        *,
        ca_bundle: str | None = None,
        verify_challenge_resource: bool = True,
        retry_total: int = 3,
        min_bits: int = LEGACY_MIN_RSA_BITS,
        timeout_seconds: float | None = None,
    ) -> None:
        self._vault_url, self._name, self._version = parse_key_url(key_url)
        self._credential = credential
        self._ca_bundle = ca_bundle
        self._verify_challenge_resource = verify_challenge_resource
        self._retry_total = retry_total
        self.min_bits = min_bits
        self._timeout = timeout_seconds
        self._options: dict[str, Any] = {
            "verify_challenge_resource": verify_challenge_resource,
            "retry_total": retry_total,
        }
        if timeout_seconds is not None:
            self._options["connection_timeout"] = timeout_seconds
            self._options["read_timeout"] = timeout_seconds
        if ca_bundle is not None:
            self._options["connection_verify"] = ca_bundle
        self._lock = threading.RLock()
        self._keys: KeyClient | None = None
        self._crypto: CryptographyClient | None = None
        self._sdk_key: SdkKey | None = None
        self._public: WrappingKey | None = None

    # -- identity ---------------------------------------------------------------------------
    @property
    def key_id(self) -> str:
        """The key's URL without a version."""
        return f"{self._vault_url}/keys/{self._name}"

    @property
    def key_version(self) -> str:
        """The concrete version; for a URL without one, read once from Key Vault (get)."""
        if self._version is None:
            self._fetch()
        assert self._version is not None
        return self._version

    def describe(self) -> str:
        return f"key {self.key_id} version {self._version or '(latest, not yet read)'}"

    def at_version(self, version: str) -> KeyVaultKey:
        """The same key and settings at ``version`` (for points wrapped before a rotation)."""
        return KeyVaultKey(
            f"{self.key_id}/{version}",
            self._credential,
            ca_bundle=self._ca_bundle,
            verify_challenge_resource=self._verify_challenge_resource,
            retry_total=self._retry_total,
            min_bits=self.min_bits,
            timeout_seconds=self._timeout,
        )

    # -- the two operations -----------------------------------------------------------------
    def public(self) -> WrappingKey:
        """The public half, read with ``KeyClient.get_key`` (needs the get permission)."""
        with self._lock:
            if self._public is None:
                self._public = _public_from(self._fetch(), self)
            return self._public

    def unwrap(self, wrapped: bytes, *, recovery_point_id: str) -> bytes:
        """Unwrap on the service side (needs the unwrapKey permission)."""
        if self._public is not None and len(wrapped) != self._public.wrapped_size:
            raise unwrap_failed(key=self, recovery_point_id=recovery_point_id)
        crypto = self._crypto_client(recovery_point_id)
        try:
            result = crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, bytes(wrapped))
        except AzureError as exc:
            raise translate(
                exc, operation="unwrapKey", key=self, recovery_point_id=recovery_point_id
            ) from None
        return checked_data_key(bytes(result.key), key=self, recovery_point_id=recovery_point_id)

    def sign(self, message: bytes) -> bytes:
        """Sign on the service side (needs the sign permission): RS256 over the digest."""
        crypto = self._crypto_client("(catalog endorsement)")
        try:
            result = crypto.sign(SignatureAlgorithm.rs256, hashlib.sha256(message).digest())
        except AzureError as exc:
            raise translate(exc, operation="sign", key=self, recovery_point_id=None) from None
        return bytes(result.signature)

    # -- clients ----------------------------------------------------------------------------
    def _key_client(self) -> KeyClient:
        with self._lock:
            if self._keys is None:
                self._keys = KeyClient(self._vault_url, self._credential, **self._options)
            return self._keys

    def _fetch(self, recovery_point_id: str | None = None) -> SdkKey:
        """The key at this version (the latest when none is set), recording the version."""
        with self._lock:
            if self._sdk_key is not None:
                return self._sdk_key
            try:
                key = self._key_client().get_key(self._name, self._version)
            except AzureError as exc:
                raise translate(
                    exc, operation="get", key=self, recovery_point_id=recovery_point_id
                ) from None
            version = KeyVaultKeyIdentifier(key.id).version if key.id else None
            if not version or (
                self._version is not None and version.lower() != self._version.lower()
            ):
                raise PermanentError(
                    f"Key Vault answered for {self.describe()} with another key id",
                    code=ErrorCode.KEY_VAULT_REQUEST_REFUSED,
                )
            self._version = version
            self._sdk_key = key
            return key

    def _crypto_client(self, recovery_point_id: str) -> CryptographyClient:
        with self._lock:
            if self._crypto is None:
                if self._version is None:  # the latest version: resolve it (get) first
                    self._fetch(recovery_point_id)
                # a fetched key spares the SDK its own get (it falls back to the remote
                # operation when get is forbidden: unwrapKey alone is enough then)
                target: SdkKey | str = self._sdk_key or f"{self.key_id}/{self._version}"
                self._crypto = CryptographyClient(target, self._credential, **self._options)
            return self._crypto

    def close(self) -> None:
        with self._lock:
            for client in (self._keys, self._crypto):
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
            self._keys = self._crypto = None

    def __enter__(self) -> KeyVaultKey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        version = self._version or "latest (not yet read)"
        return f"KeyVaultKey(key_id={self.key_id!r}, key_version={version!r})"


def _public_from(key: SdkKey, owner: KeyVaultKey) -> WrappingKey:
    """The ``WrappingKey`` of a key read from Key Vault (RSA or RSA-HSM, enabled)."""
    where = owner.describe()
    jwk = key.key
    kty = plain(getattr(jwk, "kty", None))
    if kty not in _RSA_KEY_TYPES:
        raise InvalidKey(
            f"{where} is of type {kty[:20]!r}; an RSA or RSA-HSM key is required",
            code=ErrorCode.WRAPPING_KEY_INVALID,
        )
    if key.properties.enabled is False:
        raise InvalidKey(
            f"{where} is disabled in Key Vault", code=ErrorCode.KEY_VAULT_REQUEST_REFUSED
        )
    ops = [plain(op) for op in (key.key_operations or [])]
    if ops and "unwrapKey" not in ops:
        raise InvalidKey(
            f"{where} does not permit the unwrapKey operation (its key_ops)",
            code=ErrorCode.KEY_VAULT_REQUEST_REFUSED,
        )
    n, e = getattr(jwk, "n", None), getattr(jwk, "e", None)
    if not isinstance(n, bytes) or not isinstance(e, bytes):
        raise InvalidKey(f"{where} has no RSA public key", code=ErrorCode.WRAPPING_KEY_INVALID)
    return WrappingKey.from_jwk(
        {"kty": "RSA", "n": b64url_encode(n), "e": b64url_encode(e)},
        key_id=owner.key_id,
        key_version=owner.key_version,
        min_bits=owner.min_bits,
        source=where,
    )
