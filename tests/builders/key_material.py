"""Checks that text (a repr, an exception message, a remediation) holds no secret: the
fragments of a private RSA key (its PEM lines; d, p, q and the CRT values in decimal,
hex and base64), of a data key, a client secret or a token, in the encodings a careless
message would use.  Used by the key tests (tests/unit/vault, tests/integration/keys)."""

from __future__ import annotations

import base64
from collections.abc import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_MIN = 12  # characters of a fragment: long enough never to match by chance


def _encodings(raw: bytes) -> list[str]:
    return [
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode("ascii").rstrip("="),
        base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
        repr(raw)[2:-1],
    ]


def _slices(text: str) -> list[str]:
    """A few windows of ``text`` (a message may quote any part of it)."""
    if len(text) <= 2 * _MIN:
        return [text] if len(text) >= 8 else []
    step = max(_MIN, len(text) // 8)
    return [text[i : i + 2 * _MIN] for i in range(0, len(text) - 2 * _MIN + 1, step)]


def private_key_fragments(key: rsa.RSAPrivateKey) -> list[str]:
    numbers = key.private_numbers()
    fragments: list[str] = []
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    fragments += [line for line in pem.splitlines() if line and not line.startswith("-----")]
    for value in (numbers.d, numbers.p, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        fragments += _slices(str(value))
        for encoded in _encodings(raw):
            fragments += _slices(encoded)
    return fragments


def secret_fragments(*secrets: bytes | str) -> list[str]:
    fragments: list[str] = []
    for secret in secrets:
        if isinstance(secret, str):
            fragments += _slices(secret)
            secret = secret.encode("utf-8")
        for encoded in _encodings(secret):
            fragments += _slices(encoded)
    return fragments


def leaked(texts: Iterable[str], fragments: Iterable[str]) -> list[str]:
    """The fragments found in any of ``texts`` (empty when nothing leaked)."""
    corpus = "\n".join(texts)
    return sorted({f for f in fragments if f and f in corpus})


def texts_of(error: BaseException) -> list[str]:
    """Everything an error shows: str, repr, remediation, and the chained errors a
    traceback would print (a context suppressed with ``from None`` is not printed)."""
    out: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out += [str(current), repr(current), str(getattr(current, "remediation", ""))]
        context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or context
    return out
