"""Wrapping per-recovery-point data keys with RSA-OAEP-256: the key interfaces (issue 13).

Each recovery point has a fresh 32-byte AES data key (``keys.new_data_key``).  The agent on
the VM wraps it with a ``WrappingKey``, the *public* half of an RSA key, so a VM never
holds anything that can unwrap.  Unwrapping happens only where the private half lives,
behind an ``UnwrappingKey``:

- ``SecretRsaKey`` (here): a PEM private key from a Kubernetes Secret the operator reads;
- ``sqlharbor.vault.keyvault.KeyVaultKey``: a key in Azure Key Vault or Managed HSM, which
  unwraps on the service side (the only module that imports the Key Vault SDK).

Both use one algorithm, RSA-OAEP with SHA-256 and MGF1-SHA-256 (Key Vault's
``RSA-OAEP-256``, which HSM keys support too), without an OAEP label (Key Vault takes
none).  New keys have 3072 bits or more; a ``WrappingKey`` accepts 2048 bits, since an
existing Key Vault key may have that size and the VM cannot tell where a key lives.

The operator publishes ``WrappingKey.to_jwk()`` / ``to_pem()`` (with ``key_id``,
``key_version`` and ``fingerprint``) in a resource status; the agent rebuilds it with
``from_jwk`` / ``from_pem`` and calls ``wrap``; the operator and the CLI call
``UnwrappingKey.unwrap`` for restores.  No Azure import here.  Nothing here puts key
material into a message, a repr or a log: errors name the recovery point and the key id.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sqlharbor.errors import ErrorCode, IntegrityError, InvalidInput, InvalidKey
from sqlharbor.vault.keys import KEY_BYTES

ALGORITHM: Final = "RSA-OAEP-256"
#: the smallest RSA key sqlharbor creates or accepts from a Secret
MIN_RSA_BITS: Final = 3072
#: the smallest RSA key accepted at all: an existing Key Vault key may have 2048 bits
LEGACY_MIN_RSA_BITS: Final = 2048
_PUBLIC_EXPONENT: Final = 65537
#: JWK members that hold private material (RFC 7518 section 6.3.2)
_PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2), as JWK members are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url, with or without padding; ``ValueError`` when malformed."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    standard = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except ValueError as exc:  # binascii.Error: a length no encoding has
        raise ValueError("not base64url") from exc


def _int_to_b64url(value: int) -> str:
    return b64url_encode(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _invalid(message: str) -> InvalidKey:
    return InvalidKey(message, code=ErrorCode.WRAPPING_KEY_INVALID)


def _check_size(bits: int, min_bits: int, what: str) -> None:
    if min_bits < LEGACY_MIN_RSA_BITS:
        raise InvalidInput(f"min_bits must be at least {LEGACY_MIN_RSA_BITS}, got {min_bits}")
    if bits < min_bits:
        raise _invalid(f"{what} is an RSA key of {bits} bits; at least {min_bits} are required")


class WrappingKey:
    """The public half of an RSA wrapping key: safe on a VM, it can only wrap.

    ``key_id`` names the key (a Key Vault key's URL without version, a Secret's name, or
    by default the fingerprint); ``key_version`` names this version of it (Key Vault's
    version, or by default the fingerprint, since a local key's version is its material).
    """

    algorithm: ClassVar[str] = ALGORITHM

    def __init__(
        self,
        public_key: rsa.RSAPublicKey,
        *,
        key_id: str | None = None,
        key_version: str | None = None,
        min_bits: int = LEGACY_MIN_RSA_BITS,
        source: str = "the wrapping key",
    ) -> None:
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise _invalid(f"{source} is not an RSA public key")
        _check_size(public_key.key_size, min_bits, source)
        self._public = public_key
        numbers = public_key.public_numbers()
        self._n = _int_to_b64url(numbers.n)
        self._e = _int_to_b64url(numbers.e)
        self.fingerprint = self._thumbprint()
        self.key_id = key_id or self.fingerprint
        self.key_version = key_version or self.fingerprint

    def _thumbprint(self) -> str:
        """The RFC 7638 JWK thumbprint (SHA-256, base64url): the same for PEM and JWK."""
        canonical = json.dumps(
            {"e": self._e, "kty": "RSA", "n": self._n}, separators=(",", ":"), sort_keys=True
        )
        return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())

    # -- construction and export -----------------------------------------------------------
    @classmethod
    def from_pem(
        cls,
        pem: str | bytes,
        *,
        key_id: str | None = None,
        key_version: str | None = None,
        min_bits: int = LEGACY_MIN_RSA_BITS,
        source: str = "the wrapping key",
    ) -> WrappingKey:
        """From a PEM SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``)."""
        data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
        try:
            public_key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise _invalid(f"{source} is not a PEM public key (SubjectPublicKeyInfo)") from None
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise _invalid(f"{source} is a {type(public_key).__name__}, not an RSA key")
        return cls(
            public_key, key_id=key_id, key_version=key_version, min_bits=min_bits, source=source
        )

    @classmethod
    def from_jwk(
        cls,
        jwk: Mapping[str, Any],
        *,
        key_id: str | None = None,
        key_version: str | None = None,
        min_bits: int = LEGACY_MIN_RSA_BITS,
        source: str = "the wrapping key",
    ) -> WrappingKey:
        """From a public JWK (RFC 7517/7518: ``kty`` RSA, ``n``, ``e``).

        ``key_id`` defaults to the JWK's ``kid``.  A JWK holding private members is refused:
        whoever published it leaked the private key.  ``alg``, ``use`` and ``key_ops``,
        when present, must allow RSA-OAEP-256 wrapping."""
        if not isinstance(jwk, Mapping):
            raise _invalid(f"{source} is not a JWK object")
        leaked = sorted(_PRIVATE_JWK_MEMBERS & set(jwk))
        if leaked:
            raise _invalid(f"{source} holds private key members {leaked}; publish the public part")
        if jwk.get("kty") != "RSA":
            raise _invalid(f"{source} has kty {str(jwk.get('kty'))[:20]!r}; RSA is required")
        if jwk.get("alg", ALGORITHM) != ALGORITHM:
            raise _invalid(f"{source} is for alg {str(jwk.get('alg'))[:30]!r}, not {ALGORITHM}")
        if jwk.get("use", "enc") != "enc":
            raise _invalid(f"{source} is for use {str(jwk.get('use'))[:10]!r}, not enc")
        ops = jwk.get("key_ops")
        if ops is not None and (not isinstance(ops, list | tuple) or "wrapKey" not in ops):
            raise _invalid(f"{source} does not permit wrapKey (key_ops)")
        try:
            n = int.from_bytes(b64url_decode(jwk["n"]), "big")
            e = int.from_bytes(b64url_decode(jwk["e"]), "big")
            public_key = rsa.RSAPublicNumbers(e, n).public_key()
        except (KeyError, ValueError, TypeError):
            raise _invalid(f"{source} has no valid RSA modulus n and exponent e") from None
        kid = jwk.get("kid")
        return cls(
            public_key,
            key_id=key_id or (kid if isinstance(kid, str) else None),
            key_version=key_version,
            min_bits=min_bits,
            source=source,
        )

    def to_pem(self) -> str:
        """The PEM SubjectPublicKeyInfo."""
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def to_jwk(self) -> dict[str, str]:
        """The public JWK (``kid`` is ``key_id``; publish ``key_version`` beside it)."""
        return {
            "kty": "RSA",
            "n": self._n,
            "e": self._e,
            "alg": ALGORITHM,
            "use": "enc",
            "kid": self.key_id,
        }

    @property
    def bits(self) -> int:
        return int(self._public.key_size)

    @property
    def wrapped_size(self) -> int:
        """The length in bytes of every wrapped data key (the modulus length)."""
        return (self.bits + 7) // 8

    # -- use -------------------------------------------------------------------------------
    def wrap(self, data_key: bytes) -> bytes:
        """Wrap a 32-byte data key (RSA-OAEP-256; randomized: two wraps differ)."""
        if len(data_key) != KEY_BYTES:
            raise InvalidInput(f"a data key has {KEY_BYTES} bytes, got {len(data_key)}")
        return bytes(self._public.encrypt(bytes(data_key), _oaep()))

    def same_key(self, other: WrappingKey) -> bool:
        """Whether ``other`` is the same public key (whatever its id and version)."""
        return self.fingerprint == other.fingerprint

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WrappingKey):
            return NotImplemented
        return (self.fingerprint, self.key_id, self.key_version) == (
            other.fingerprint,
            other.key_id,
            other.key_version,
        )

    def __hash__(self) -> int:
        return hash((self.fingerprint, self.key_id, self.key_version))

    def __repr__(self) -> str:
        return (
            f"WrappingKey(key_id={self.key_id!r}, key_version={self.key_version!r}, "
            f"bits={self.bits}, fingerprint={self.fingerprint!r})"
        )


class UnwrappingKey(abc.ABC):
    """The private half, where it lives (a Secret the operator reads, or Key Vault)."""

    algorithm: ClassVar[str] = ALGORITHM

    @property
    @abc.abstractmethod
    def key_id(self) -> str: ...

    @property
    @abc.abstractmethod
    def key_version(self) -> str: ...

    @abc.abstractmethod
    def public(self) -> WrappingKey:
        """The public half, to publish for the agents."""

    @abc.abstractmethod
    def unwrap(self, wrapped: bytes, *, recovery_point_id: str) -> bytes:
        """The 32-byte data key of ``recovery_point_id``, or ``IntegrityError`` naming it."""

    @abc.abstractmethod
    def sign(self, message: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 of ``message``: deterministic, so the same key
        always gives the same signature (``endorsement`` derives its key from one)."""

    def describe(self) -> str:
        """``key KEY_ID version VERSION``, for messages."""
        return f"key {self.key_id} version {self.key_version}"

    def check_written_with(self, key_id: str, key_version: str, *, recovery_point_id: str) -> None:
        """Raise ``IntegrityError`` unless the point's manifest names this key and version."""
        if (key_id, key_version) != (self.key_id, self.key_version):
            raise IntegrityError(
                f"recovery point {recovery_point_id} was wrapped with key {key_id} version "
                f"{key_version}, but this unwrapping key is {self.describe()}"
            )


def checked_data_key(data_key: bytes, *, key: UnwrappingKey, recovery_point_id: str) -> bytes:
    """``data_key`` if it has the data-key length, else ``IntegrityError`` naming the point."""
    if len(data_key) != KEY_BYTES:
        raise IntegrityError(
            f"recovery point {recovery_point_id}: the data key unwrapped with {key.describe()} "
            f"has {len(data_key)} bytes, not {KEY_BYTES} (damaged manifest)"
        )
    return data_key


def unwrap_failed(*, key: UnwrappingKey, recovery_point_id: str) -> IntegrityError:
    """The error for a wrapped data key that does not open with ``key``."""
    return IntegrityError(
        f"recovery point {recovery_point_id}: the wrapped data key does not open with "
        f"{key.describe()} ({ALGORITHM}); it was wrapped with another key or version, "
        "or the manifest is damaged"
    )


class SecretRsaKey(UnwrappingKey):
    """An RSA private key held in a Kubernetes Secret (PKCS#8 PEM), for the operator.

    ``key_version`` is the public fingerprint: a new key in the Secret is a new version.
    ``generate`` makes one (for the demo and the tests); ``private_pem`` exports it, only
    to be written into that Secret."""

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey,
        *,
        key_id: str | None = None,
        source: str = "the key Secret",
    ) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise _invalid(f"{source} does not hold an RSA private key")
        _check_size(private_key.key_size, MIN_RSA_BITS, source)
        self._private = private_key
        self._public = WrappingKey(
            private_key.public_key(), key_id=key_id, min_bits=MIN_RSA_BITS, source=source
        )

    @classmethod
    def from_pem(
        cls, pem: str | bytes, *, key_id: str | None = None, source: str = "the key Secret"
    ) -> SecretRsaKey:
        """From an unencrypted PEM private key (PKCS#8 ``BEGIN PRIVATE KEY``; PKCS#1 too)."""
        data = pem.encode("ascii", "replace") if isinstance(pem, str) else bytes(pem)
        if b"ENCRYPTED PRIVATE KEY" in data:
            raise _invalid(f"{source} holds an encrypted private key; store it unencrypted")
        try:
            private_key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise _invalid(f"{source} does not hold a PEM private key") from None
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise _invalid(f"{source} holds a {type(private_key).__name__}, not an RSA key")
        return cls(private_key, key_id=key_id, source=source)

    @classmethod
    def generate(cls, *, bits: int = MIN_RSA_BITS, key_id: str | None = None) -> SecretRsaKey:
        """A new random key (e = 65537) of ``bits`` bits, 3072 or more."""
        _check_size(bits, MIN_RSA_BITS, "a new key")
        return cls(
            rsa.generate_private_key(public_exponent=_PUBLIC_EXPONENT, key_size=bits),
            key_id=key_id,
        )

    def private_pem(self) -> bytes:
        """The unencrypted PKCS#8 PEM: secret, only for the Secret that holds the key."""
        return bytes(
            self._private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    @property
    def key_id(self) -> str:
        return self._public.key_id

    @property
    def key_version(self) -> str:
        return self._public.key_version

    @property
    def bits(self) -> int:
        return self._public.bits

    def public(self) -> WrappingKey:
        return self._public

    def unwrap(self, wrapped: bytes, *, recovery_point_id: str) -> bytes:
        if len(wrapped) != self._public.wrapped_size:
            raise IntegrityError(
                f"recovery point {recovery_point_id}: the wrapped data key has {len(wrapped)} "
                f"bytes, but {self.describe()} wraps to {self._public.wrapped_size} bytes "
                "(wrapped with another key, or a damaged manifest)"
            )
        try:
            data_key = self._private.decrypt(bytes(wrapped), _oaep())
        except ValueError:
            raise unwrap_failed(key=self, recovery_point_id=recovery_point_id) from None
        return checked_data_key(data_key, key=self, recovery_point_id=recovery_point_id)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def __repr__(self) -> str:
        return (
            f"SecretRsaKey(key_id={self.key_id!r}, key_version={self.key_version!r}, "
            f"bits={self.bits})"
        )
