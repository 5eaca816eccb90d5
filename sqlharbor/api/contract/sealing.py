"""Sealing a job's grant to the one agent process that claimed the job (HPKE, RFC 9180).

Each agent process makes a ``SessionKey`` (X25519) when it starts and keeps the private
half in memory only; its claim of a job carries the public half (``status.agentKey``).
The operator ``seal``\\ s the job's grant -- storage SAS tokens and, for a restore, the
planned points' data keys -- to that key, with the job's identity (kind, namespace, name,
uid, claiming session) as the HPKE ``info``: a grant copied to another job, or read by any
other process (another agent, a later session of the same agent, anyone who can read the
job), opens nowhere else.  Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM,
from ``cryptography`` (no hand-written construction).

Part of ``sqlharbor.api.contract``, used through ``contract.grants`` by the operator and
the agent.  Nothing here logs, and no error names key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from sqlharbor.errors import ErrorCode, IntegrityError, InvalidInput

SUITE_NAME: Final = "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-256-GCM"
_SUITE: Final = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_INFO_PREFIX: Final = b"sqlharbor/grant/v1\0"


def grant_context(kind: str, namespace: str, name: str, uid: str, session: str) -> bytes:
    """The HPKE ``info`` binding a grant to one job and the session that claimed it."""
    return _INFO_PREFIX + "\0".join((kind, namespace, name, uid, session)).encode()


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_text: str) -> str:
    """A short public name of a session key (for messages and status)."""
    return hashlib.sha256(public_text.encode("ascii")).hexdigest()[:16]


def parse_public(text: str) -> X25519PublicKey:
    """A session's public key as published (base64 of the 32 raw bytes)."""
    try:
        raw = base64.b64decode(text, validate=True)
        return X25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            "the agent's session key (status.agentKey) is not a base64 X25519 public key",
            code=ErrorCode.GRANT_REFUSED,
        ) from None


class SessionKey:
    """One agent process's key pair; the private half never leaves memory."""

    def __init__(self) -> None:
        self._private = X25519PrivateKey.generate()
        self.public_text = base64.b64encode(_raw(self._private.public_key())).decode("ascii")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_text)

    def open(self, sealed: bytes, *, context: bytes) -> bytes:
        """The plaintext, or ``IntegrityError`` when it was not sealed to this key and job."""
        try:
            return _SUITE.decrypt(sealed, self._private, info=context)
        except (InvalidTag, ValueError):
            raise IntegrityError(
                "the job's grant does not open with this agent session's key: it was sealed "
                "to another session or job, or altered",
                code=ErrorCode.GRANT_REFUSED,
            ) from None

    def __repr__(self) -> str:
        return f"SessionKey({self.fingerprint})"


def seal(public_text: str, plaintext: bytes, *, context: bytes) -> bytes:
    """``plaintext`` sealed to the session key ``public_text`` for ``context``."""
    return _SUITE.encrypt(plaintext, parse_public(public_text), info=context)
