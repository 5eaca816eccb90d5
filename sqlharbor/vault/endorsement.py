"""Endorsement of catalog lines: the operator's proof that it indexed a recovery point.

Why: an agent's backup grant may create and write blobs anywhere in the vault's container
(Azure has no prefix-scoped SAS on a flat namespace).  A compromised VM could therefore
write a self-consistent point — its own data key, wrapped with the vault's *public* key,
its manifest sealed with it — under another instance's database, plus a catalog line
naming it, or write such a manifest over an indexed point's.  The manifest's own tag
cannot tell (whoever chose the data key can seal), so the catalog says which points the
operator accepted: each entry line carries ``en`` = [key id, key version, tag], an
HMAC-SHA256 over the line (which includes the manifest's own tag, ``at``) and the
database it belongs to, keyed by a key only the vault's private key can produce.

The endorsement key is HKDF-SHA256 of the private key's RSASSA-PKCS1-v1_5 signature of a
fixed message (deterministic: the same key always gives the same endorsement key, in a
Secret or in Key Vault, which signs for the operator; nothing is stored, and a rebuilt
cluster endorses and checks with the same key).  Lines are endorsed with the current key
and checked with whichever listed key their ``en`` names.

``Endorser(keyring)`` is given to the ``Catalog`` by whoever holds the keys (the operator,
the admin CLI); a catalog without one neither writes nor checks endorsements.  Which
lines must be endorsed: ``catalog`` (the vault's strictness marker).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import sha256

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sqlharbor.errors import ErrorCode, InvalidInput
from sqlharbor.vault.catalog_lines import Check, Seal
from sqlharbor.vault.keys import KeyEncryptionKey
from sqlharbor.vault.layout import Layout
from sqlharbor.vault.store import BlobStore
from sqlharbor.vault.wrapping import UnwrappingKey

log = logging.getLogger(__name__)

_MESSAGE = b"sqlharbor/catalog-endorsement-key/v1"
#: what the vault's marker (``Layout.endorsement_marker``) endorses
_MARKER = b"sqlharbor: every catalog line of this vault is endorsed"
_INFO = b"sqlharbor/catalog-endorsement/v1"

#: what ``Keyring.keys`` holds (a legacy symmetric key cannot endorse)
Listed = UnwrappingKey | KeyEncryptionKey


@dataclass(frozen=True)
class EndorsementKey:
    """The HMAC key one listed RSA key yields."""

    key_id: str
    key_version: str
    secret: bytes = field(repr=False)

    @classmethod
    def derive(cls, key: UnwrappingKey) -> EndorsementKey:
        signature = key.sign(_MESSAGE)
        secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(signature)
        return cls(key.key_id, key.key_version, secret)

    def tag(self, instance: str, database_guid: str, body: bytes) -> bytes:
        scope = f"{instance}\n{database_guid}\n".encode()
        return hmac.new(self.secret, scope + body, sha256).digest()


#: endorsement keys derived by this process, by (key id, key version): a key version is
#: its key material (a Secret key's version is its public fingerprint), and derivation is
#: deterministic, so each is derived once per process (one Key Vault sign), not at every
#: reopen of a vault; one derivation at a time (no burst of signs on a cold start)
_DERIVED: dict[tuple[str, str], EndorsementKey] = {}
_DERIVING = threading.Lock()


def _derived(key: UnwrappingKey) -> EndorsementKey:
    ident = (key.key_id, key.key_version)
    found = _DERIVED.get(ident)
    if found is None:
        with _DERIVING:
            found = _DERIVED.get(ident)
            if found is None:
                found = _DERIVED[ident] = EndorsementKey.derive(key)
    return found


class Endorser:
    """Endorses with the current key; checks with any listed RSA key."""

    def __init__(self, keys: Sequence[Listed]) -> None:
        self._keys = tuple(keys)

    def _key(self, key: Listed) -> EndorsementKey:
        if isinstance(key, KeyEncryptionKey):
            raise InvalidInput(
                f"key {key.key_id} is a symmetric key-encryption key: it cannot endorse",
                code=ErrorCode.VAULT_KEY_INVALID,
            )
        return _derived(key)

    def endorse(self, instance: str, database_guid: str, body: bytes) -> list[str]:
        """``en`` for a line whose canonical form (without ``en``) is ``body``."""
        key = self._key(self._keys[0])
        tag = key.tag(instance, database_guid, body)
        return [key.key_id, key.key_version, base64.b64encode(tag).decode("ascii")]

    def check(self, instance: str, database_guid: str, body: bytes, en: object) -> bool:
        """Whether ``en`` is a listed key's endorsement of ``body``."""
        if not (isinstance(en, list) and len(en) == 3 and all(isinstance(v, str) for v in en)):
            return False
        key_id, key_version, tag = en
        for listed in self._keys:
            if isinstance(listed, KeyEncryptionKey):
                continue
            if (listed.key_id, listed.key_version) == (key_id, key_version):
                expected = self._key(listed).tag(instance, database_guid, body)
                try:
                    given = base64.b64decode(tag, validate=True)
                except ValueError:
                    return False
                return hmac.compare_digest(expected, given)
        return False

    def __repr__(self) -> str:
        return f"Endorser({len(self._keys)} keys)"


class Endorsement:
    """One catalog's endorsement rules: ``seal`` for the lines it writes, ``check`` for
    the lines it reads.  Without an endorser (a reader without the keys) nothing is
    sealed or checked.  With one, an endorsement present must be valid, and once the
    vault's marker says so (``required``), a line without one is skipped."""

    def __init__(self, store: BlobStore, layout: Layout, endorser: Endorser | None) -> None:
        self._store = store
        self._layout = layout
        self._endorser = endorser
        self._required: bool | None = None

    @property
    def sealing(self) -> bool:
        """Whether lines written here are endorsed (a reader with the keys)."""
        return self._endorser is not None

    def seal(self, instance: str, database_guid: str) -> Seal | None:
        endorser = self._endorser
        if endorser is None:
            return None
        return lambda body: endorser.endorse(instance, database_guid, body)

    def check(self, instance: str, database_guid: str) -> Check | None:
        endorser = self._endorser
        if endorser is None:
            return None
        required = self.required()

        def check(body: bytes, en: object) -> bool:
            # a line endorsed with a key the vault no longer lists cannot be told from a
            # forgery: it is not listed (the vault-keys policy refuses removing a key that
            # still wraps points; rekey endorses them again with the current key)
            return not required if en is None else endorser.check(instance, database_guid, body, en)

        return check

    def required(self) -> bool:
        """Whether the vault's marker is there (read once).  Its contents are not checked:
        an agent can write one, but only to make readers stricter (``vault endorse`` reads
        past it: ``read_all``)."""
        if self._required is None:
            self._required = self._store.exists(self._layout.endorsement_marker())
        return self._required

    def read_all(self) -> None:
        """Count lines without an endorsement again, marker or not: ``vault endorse``
        must see the lines it is to endorse even if an agent wrote the marker first."""
        self._required = False

    def require(self) -> None:
        """From now on every line must be endorsed (a new vault; an existing one after
        ``kubectl sqlharbor vault endorse``)."""
        if self._endorser is None:
            raise InvalidInput("only a reader with the vault's keys can require endorsement")
        body = {"version": 1, "en": self._endorser.endorse("", "", _MARKER)}
        self._store.put(self._layout.endorsement_marker(), json.dumps(body).encode())
        self._required = True
