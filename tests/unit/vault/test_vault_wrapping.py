"""RSA-OAEP-256 wrapping of data keys without any service: the agent's side
(``WrappingKey`` from a published JWK or PEM) and the operator's (``SecretRsaKey``), the key
size policy, refused inputs, and that no private material shows in a repr or an error.
Also measures what RSA-3072 costs per data key (printed)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from sqlharbor.errors import ErrorCode, IntegrityError, InvalidInput, InvalidKey, SqlHarborError
from sqlharbor.vault.keys import KEY_BYTES, new_data_key
from sqlharbor.vault.wrapping import (
    ALGORITHM,
    SecretRsaKey,
    WrappingKey,
    b64url_decode,
    b64url_encode,
)
from tests.builders.key_material import (
    leaked,
    private_key_fragments,
    secret_fragments,
    texts_of,
)

# RFC 7638 section 3.1: an RSA public JWK and its SHA-256 thumbprint
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPe"
    "bWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY36"
    "8QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4l"
    "Fd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.fixture(scope="module")
def secret_key() -> SecretRsaKey:
    return SecretRsaKey.generate(key_id="secret:ns/kek")


@pytest.fixture(scope="module")
def other_key() -> SecretRsaKey:
    return SecretRsaKey.generate()


@pytest.fixture(scope="module")
def small_public() -> Callable[[int], rsa.RSAPublicKey]:
    keys: dict[int, rsa.RSAPublicKey] = {}

    def make(bits: int) -> rsa.RSAPublicKey:
        if bits not in keys:
            keys[bits] = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
        return keys[bits]

    return make


def _as_published(key: SecretRsaKey, form: str) -> WrappingKey:
    """What an agent rebuilds from the operator's status (JSON, as it travels)."""
    public = key.public()
    if form == "jwk":
        jwk = json.loads(json.dumps(public.to_jwk()))
        return WrappingKey.from_jwk(jwk, key_version=public.key_version)
    return WrappingKey.from_pem(
        public.to_pem(), key_id=public.key_id, key_version=public.key_version
    )


@pytest.mark.parametrize("form", ["jwk", "pem"])
def test_a_local_wrap_unwraps_with_the_secret_key(secret_key: SecretRsaKey, form: str) -> None:
    vm_key = _as_published(secret_key, form)
    assert vm_key == secret_key.public()
    assert (vm_key.key_id, vm_key.algorithm, vm_key.bits) == ("secret:ns/kek", ALGORITHM, 3072)
    data_key = new_data_key()
    wrapped = vm_key.wrap(data_key)
    assert len(wrapped) == vm_key.wrapped_size == 384
    assert vm_key.wrap(data_key) != wrapped  # OAEP is randomized
    assert secret_key.unwrap(wrapped, recovery_point_id="rp-1") == data_key


def test_the_wrap_is_rsa_oaep_with_sha256_and_mgf1_sha256(secret_key: SecretRsaKey) -> None:
    """Key Vault's RSA-OAEP-256, checked against cryptography's own OAEP, both ways."""
    pem = secret_key.private_pem()
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    oaep256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    data_key = new_data_key()
    assert private.decrypt(secret_key.public().wrap(data_key), oaep256) == data_key
    wrapped = private.public_key().encrypt(data_key, oaep256)
    assert secret_key.unwrap(wrapped, recovery_point_id="rp-2") == data_key
    sha1 = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    with pytest.raises(IntegrityError):  # plain RSA-OAEP (SHA-1) is another algorithm
        secret_key.unwrap(private.public_key().encrypt(data_key, sha1), recovery_point_id="rp-3")


def test_the_fingerprint_is_the_rfc7638_thumbprint() -> None:
    key = WrappingKey.from_jwk({"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "kid": "2011-04-29"})
    assert key.fingerprint == RFC7638_THUMBPRINT
    assert key.key_id == "2011-04-29"
    assert key.key_version == RFC7638_THUMBPRINT  # a local key's version is its material
    again = WrappingKey.from_pem(key.to_pem())
    assert again.fingerprint == RFC7638_THUMBPRINT
    assert again.same_key(key)
    assert again.key_id == RFC7638_THUMBPRINT


def test_the_fingerprint_is_stable_and_names_the_material(
    secret_key: SecretRsaKey, other_key: SecretRsaKey
) -> None:
    public = secret_key.public()
    jwk = public.to_jwk()
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    expected = b64url_encode(hashlib.sha256(canonical.encode()).digest())
    assert public.fingerprint == expected == secret_key.key_version
    reloaded = SecretRsaKey.from_pem(secret_key.private_pem().decode(), key_id="secret:ns/kek")
    assert reloaded.key_version == secret_key.key_version
    assert other_key.key_version != secret_key.key_version
    assert other_key.key_id == other_key.key_version  # no name given: the fingerprint


def test_a_tampered_wrapped_key_is_an_integrity_error_naming_the_point(
    secret_key: SecretRsaKey,
) -> None:
    wrapped = bytearray(secret_key.public().wrap(new_data_key()))
    wrapped[100] ^= 0x01
    with pytest.raises(IntegrityError) as caught:
        secret_key.unwrap(bytes(wrapped), recovery_point_id="rp-tampered")
    assert "recovery point rp-tampered" in str(caught.value)
    assert secret_key.key_id in str(caught.value)
    assert caught.value.code == ErrorCode.VAULT_INTEGRITY_FAILURE
    with pytest.raises(IntegrityError, match=r"rp-short.*383 bytes"):
        secret_key.unwrap(bytes(wrapped[:-1]), recovery_point_id="rp-short")


def test_another_key_or_version_cannot_unwrap(
    secret_key: SecretRsaKey, other_key: SecretRsaKey
) -> None:
    wrapped = other_key.public().wrap(new_data_key())
    with pytest.raises(IntegrityError, match=r"rp-9: .*another key or version"):
        secret_key.unwrap(wrapped, recovery_point_id="rp-9")
    public = other_key.public()
    with pytest.raises(IntegrityError, match=r"rp-9 was wrapped with key .* version"):
        secret_key.check_written_with(public.key_id, public.key_version, recovery_point_id="rp-9")
    secret_key.check_written_with(
        secret_key.key_id, secret_key.key_version, recovery_point_id="rp-9"
    )


def test_a_data_key_has_32_bytes_both_ways(secret_key: SecretRsaKey) -> None:
    with pytest.raises(InvalidInput, match="32 bytes, got 16"):
        secret_key.public().wrap(b"x" * 16)
    private = serialization.load_pem_private_key(secret_key.private_pem(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    oaep256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    wrapped = private.public_key().encrypt(b"y" * 16, oaep256)
    with pytest.raises(IntegrityError, match=f"rp-len: .*16 bytes, not {KEY_BYTES}"):
        secret_key.unwrap(wrapped, recovery_point_id="rp-len")


def test_key_sizes_3072_for_new_and_secret_keys_2048_for_existing_ones(
    small_public: Callable[[int], rsa.RSAPublicKey],
) -> None:
    with pytest.raises(InvalidKey, match="at least 3072") as caught:
        SecretRsaKey.generate(bits=2048)
    assert caught.value.code == ErrorCode.WRAPPING_KEY_INVALID
    legacy = small_public(2048)
    assert WrappingKey(legacy).bits == 2048  # an existing Key Vault key
    with pytest.raises(InvalidKey, match="2048 bits; at least 3072"):
        WrappingKey(legacy, min_bits=3072)
    with pytest.raises(InvalidKey, match="1024 bits; at least 2048"):
        WrappingKey(small_public(1024))
    with pytest.raises(InvalidInput, match="min_bits"):
        WrappingKey(legacy, min_bits=1024)
    private_2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_2048.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidKey, match="the key Secret is an RSA key of 2048 bits"):
        SecretRsaKey.from_pem(pem)


def _jwk(public: WrappingKey, **changes: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = dict(public.to_jwk())
    for name, value in changes.items():
        if value is None:
            jwk.pop(name, None)
        else:
            jwk[name] = value
    return jwk


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"d": "AQAB"}, "private key members"),
        ({"kty": "EC"}, "kty 'EC'"),
        ({"alg": "RSA-OAEP"}, "not RSA-OAEP-256"),
        ({"use": "sig"}, "not enc"),
        ({"key_ops": ["encrypt"]}, "wrapKey"),
        ({"key_ops": "wrapKey"}, "wrapKey"),
        ({"n": "not*base64"}, "no valid RSA modulus"),
        ({"e": None}, "no valid RSA modulus"),
        ({"e": "AA"}, "no valid RSA modulus"),
    ],
)
def test_refused_jwks(secret_key: SecretRsaKey, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidKey, match=message) as caught:
        WrappingKey.from_jwk(_jwk(secret_key.public(), **changes))
    assert caught.value.code == ErrorCode.WRAPPING_KEY_INVALID


def test_refused_pems(secret_key: SecretRsaKey) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_public = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidKey, match="not an RSA key"):
        WrappingKey.from_pem(ec_public)
    with pytest.raises(InvalidKey, match="not a PEM public key"):
        WrappingKey.from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(InvalidKey, match="not a PEM public key"):
        WrappingKey.from_pem(secret_key.private_pem())  # a private key is not published
    encrypted = serialization.load_pem_private_key(secret_key.private_pem(), None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass phrase"),
    )
    with pytest.raises(InvalidKey, match="encrypted private key"):
        SecretRsaKey.from_pem(encrypted, source="Secret ns/kek key tls.key")
    ec_private = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidKey, match=r"Secret ns/kek holds a .*not an RSA key"):
        SecretRsaKey.from_pem(ec_private, source="Secret ns/kek")
    with pytest.raises(InvalidKey, match="does not hold a PEM private key"):
        SecretRsaKey.from_pem(b"junk")


def test_base64url_is_strict() -> None:
    assert b64url_decode(b64url_encode(b"\xff\xfe\x00")) == b"\xff\xfe\x00"
    assert b64url_decode("_-8=") == b"\xff\xef"
    for bad in ("a b", "ab+c", "a/bc", "é", "abcde"):
        with pytest.raises(ValueError, match="base64url"):
            b64url_decode(bad)


def test_no_private_material_in_reprs_or_errors(
    secret_key: SecretRsaKey, other_key: SecretRsaKey
) -> None:
    private = serialization.load_pem_private_key(secret_key.private_pem(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    fragments = private_key_fragments(private)
    data_key = new_data_key()
    fragments += secret_fragments(data_key)
    assert leaked([secret_key.private_pem().decode()], fragments)  # the check can fail
    texts = [repr(secret_key), str(secret_key), repr(secret_key.public()), secret_key.describe()]
    assert "SecretRsaKey(key_id='secret:ns/kek'" in texts[0]
    errors: list[SqlHarborError] = []
    wrapped = secret_key.public().wrap(data_key)
    attempts: list[Callable[[], object]] = [
        lambda: secret_key.unwrap(wrapped[:-1], recovery_point_id="rp"),
        lambda: secret_key.unwrap(wrapped[::-1], recovery_point_id="rp"),
        lambda: other_key.unwrap(wrapped, recovery_point_id="rp"),
        lambda: secret_key.public().wrap(data_key + b"!"),
        lambda: WrappingKey.from_jwk(
            {**secret_key.public().to_jwk(), "d": b64url_encode(data_key)}
        ),
        lambda: SecretRsaKey.from_pem(secret_key.private_pem()[:-40]),
        lambda: WrappingKey.from_pem(secret_key.private_pem()),
    ]
    for attempt in attempts:
        with pytest.raises(SqlHarborError) as caught:
            attempt()
        errors.append(caught.value)
    assert len(errors) == len(attempts)
    texts += [text for error in errors for text in texts_of(error)]
    assert leaked(texts, fragments) == []


def test_rsa_3072_cost_per_data_key(
    secret_key: SecretRsaKey, capsys: pytest.CaptureFixture[str]
) -> None:
    """What one recovery point's key wrapping costs: one wrap on the VM (public key), one
    unwrap per restore where the private key lives (here locally, as for a Secret)."""
    public = _as_published(secret_key, "jwk")
    data_keys = [new_data_key() for _ in range(50)]
    started = time.perf_counter()
    wrapped = [public.wrap(k) for k in data_keys]
    wrap_seconds = (time.perf_counter() - started) / len(data_keys)
    started = time.perf_counter()
    unwrapped = [secret_key.unwrap(w, recovery_point_id=f"rp-{i}") for i, w in enumerate(wrapped)]
    unwrap_seconds = (time.perf_counter() - started) / len(wrapped)
    assert unwrapped == data_keys
    started = time.perf_counter()
    SecretRsaKey.generate()
    generate_seconds = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\nRSA-3072 {ALGORITHM} per data key: wrap {wrap_seconds * 1e6:.0f} us, "
            f"unwrap {unwrap_seconds * 1e3:.2f} ms; wrapped size {public.wrapped_size} bytes; "
            f"key generation {generate_seconds:.2f} s"
        )
    assert 0 < wrap_seconds < unwrap_seconds  # the public operation is the cheap one
