"""Authentication of version-2 manifests: an HMAC-SHA256 tag over every field of the
document and its identity (``Manifest.authenticated_payload``: point id, database id,
scope, path, LSNs, times, sizes, chunking, the wrapped data key, digests), keyed by a key
derived from the point's own data key (HKDF-SHA256, ``info`` below).

``RecoveryPointWriter.commit`` seals each manifest before writing it; the reader checks
the tag as soon as it has unwrapped the data key, before any data moves.  So an edited
field, or a manifest moved or copied to another point's place (its identity no longer
matches, and re-writing the identity breaks the tag), is refused by whoever can unwrap the
data key.  Who cannot unwrap it cannot forge a tag for an existing point either: the tag
key comes from that point's data key.  Version-1 manifests (read and upgraded in memory)
have no tag; they stay readable and are marked ``legacy_unauthenticated``.  What each check
protects against: docs/vault-format.md.
"""

from __future__ import annotations

import base64
import hmac
from hashlib import sha256

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sqlharbor.errors import IntegrityError
from sqlharbor.vault.manifest import Authentication, Manifest

ALGORITHM = "HMAC-SHA256"
_INFO = b"sqlharbor/manifest-auth/v2"


def _tag(manifest: Manifest, data_key: bytes) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(data_key)
    return hmac.new(key, manifest.authenticated_payload(), sha256).digest()


def seal(manifest: Manifest, data_key: bytes) -> Manifest:
    """``manifest`` with its authentication tag (named after the key that wraps the data
    key: the tag key is only as secret as the data key)."""
    wrapping = manifest.encryption.data_key
    unsealed = manifest.model_copy(update={"authentication": None})
    return manifest.model_copy(
        update={
            "authentication": Authentication(
                algorithm=ALGORITHM,
                key_id=wrapping.key_id,
                key_version=wrapping.key_version,
                tag=base64.b64encode(_tag(unsealed, data_key)).decode("ascii"),
            )
        }
    )


def verify(manifest: Manifest, data_key: bytes) -> None:
    """Refuse a manifest whose tag does not match, or a version-2 one without a tag."""
    point = manifest.identity.recovery_point_id
    auth = manifest.authentication
    if auth is None:
        if manifest.legacy_unauthenticated:
            return
        raise IntegrityError(
            f"recovery point {point}: its manifest carries no authentication tag (a "
            "version-2 manifest always does): it was edited"
        )
    expected = _tag(manifest, data_key)
    if not hmac.compare_digest(expected, auth.tag_bytes):
        raise IntegrityError(
            f"recovery point {point}: its manifest failed authentication (a field, its "
            "identity or its place was changed after it was written)"
        )
