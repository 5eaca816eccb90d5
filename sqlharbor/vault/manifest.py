"""The manifest: the JSON document that makes a recovery point exist (format version 2).

Written last by ``RecoveryPointWriter.commit`` (create-only); read through
``sqlharbor.vault.manifest_read.read_manifest``, which also accepts version-1 documents
(``manifest_v1``) and upgrades them in memory into this model.  Field by field, with
what each check protects against: docs/vault-format.md.

The document has one section per concern: ``identity`` (what this manifest is and where
it must be read from), ``backup`` (every fact of the ``BackupRecord``), ``data``
(chunking, compression, sizes, one entry per stripe), ``encryption`` (cipher, the
associated-data scheme, the wrapped data key), ``integrity`` (key-less digests) and
``authentication`` (a tag over ``authenticated_payload()``: ``manifest_auth``).

The ``backup`` section and the shared value types are in ``manifest_backup``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, PrivateAttr, ValidationError, model_validator

from sqlharbor.domain.backupset import BackupRecord, PointKey, RecoveryPoint
from sqlharbor.errors import IntegrityError
from sqlharbor.vault.codec import AssociatedData, Compression
from sqlharbor.vault.layout import MAX_STRIPES
from sqlharbor.vault.manifest_backup import BackupFacts, Section, UtcTime

FORMAT_VERSION = 2
MAX_BLOCKS_PER_BLOB = 50_000


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None
    return value


Base64 = Annotated[str, AfterValidator(_base64)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


# -- identity ----------------------------------------------------------------------------


class ScopeKind(enum.StrEnum):
    """Whose folder the database's points live in (DESIGN.md section 5)."""

    INSTANCE = "Instance"
    AVAILABILITY_GROUP = "AvailabilityGroup"


class Scope(Section):
    kind: ScopeKind
    name: str = Field(min_length=1)
    #: the availability group's group id ("" for an instance)
    id: str

    @classmethod
    def instance(cls, name: str) -> Scope:
        return cls(kind=ScopeKind.INSTANCE, name=name, id="")

    @model_validator(mode="after")
    def _id_for_groups_only(self) -> Scope:
        if (self.kind is ScopeKind.AVAILABILITY_GROUP) != bool(self.id):
            raise ValueError("an availability group scope has an id, an instance scope has none")
        return self


class Identity(Section):
    """What this manifest is; a reader refuses it anywhere but at ``manifest_path``."""

    recovery_point_id: str = Field(min_length=1)
    scope: Scope
    #: the vault's key for the database: its GUID (instance scope) or the group database id
    database_id: str = Field(min_length=1)
    #: its own object name relative to the vault prefix
    manifest_path: str = Field(min_length=1)


# -- the data ----------------------------------------------------------------------------


class Stripe(Section):
    """One stream of the backup (one per VDI device), cut into chunks."""

    index: int = Field(ge=0, lt=MAX_STRIPES)
    chunk_count: int = Field(gt=0)
    chunk_stored_sizes: tuple[Annotated[int, Field(ge=0)], ...]
    raw_size: int = Field(ge=0, description="bytes of the stripe's stream")
    stored_size: int = Field(ge=0, description="bytes in the vault (compressed, encrypted)")
    nonce_prefix: str = Field(pattern=r"^[0-9a-f]{8}$")
    stored_chunks_sha256: Sha256Hex = Field(
        description="SHA-256 over the SHA-256 of every stored chunk, in order (key-less check)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Stripe:
        if len(self.chunk_stored_sizes) != self.chunk_count:
            raise ValueError("chunk_stored_sizes must list every chunk")
        if sum(self.chunk_stored_sizes) != self.stored_size:
            raise ValueError("stored_size must be the sum of the chunk sizes")
        return self


class DataLayout(Section):
    chunk_size: int = Field(gt=0)
    chunks_per_blob: int = Field(gt=0, le=MAX_BLOCKS_PER_BLOB)
    compression: Compression
    compression_level: int
    raw_size: int = Field(ge=0)
    stored_size: int = Field(ge=0)
    stripes: tuple[Stripe, ...] = Field(min_length=1, max_length=MAX_STRIPES)

    @model_validator(mode="after")
    def _consistent(self) -> DataLayout:
        if [s.index for s in self.stripes] != list(range(len(self.stripes))):
            raise ValueError("stripes must be numbered 0, 1, ... in order")
        if len({s.nonce_prefix for s in self.stripes}) != len(self.stripes):
            raise ValueError("every stripe needs its own nonce prefix")
        if sum(s.raw_size for s in self.stripes) != self.raw_size:
            raise ValueError("raw_size must be the sum of the stripes' raw sizes")
        if sum(s.stored_size for s in self.stripes) != self.stored_size:
            raise ValueError("stored_size must be the sum of the stripes' stored sizes")
        for s in self.stripes:
            full_before_last = (s.chunk_count - 1) * self.chunk_size
            if s.raw_size > s.chunk_count * self.chunk_size or (
                s.raw_size <= full_before_last and s.raw_size > 0
            ):
                raise ValueError(
                    f"stripe {s.index}: {s.raw_size} bytes do not fill {s.chunk_count} "
                    f"chunks of {self.chunk_size} bytes"
                )
        return self

    def blob_count(self, stripe: int = 0) -> int:
        """How many data blobs (of ``chunks_per_blob`` blocks each) the stripe uses."""
        return -(-self.stripes[stripe].chunk_count // self.chunks_per_blob)

    def parts(self) -> list[tuple[int, int]]:
        """(stripe, part) of every data blob of the point."""
        return [(s.index, part) for s in self.stripes for part in range(self.blob_count(s.index))]


# -- keys, digests, authentication -------------------------------------------------------


class DataKey(Section):
    #: RSA-OAEP-256 with the vault's public key (version 2), or AES-256-KW with a
    #: symmetric key-encryption key (version 1, and version-2 points written before keys
    #: left the VMs)
    wrap: Literal["RSA-OAEP-256", "AES-256-KW"]
    #: the wrapping key's id (a fingerprint for a Secret's key, the key URL in Key Vault)
    key_id: str = Field(min_length=1, max_length=512)
    #: the key's version (Key Vault's version, a Secret key's fingerprint; "" for AES-256-KW)
    key_version: str = Field(max_length=128)
    wrapped: Base64

    @property
    def wrapped_bytes(self) -> bytes:
        return base64.b64decode(self.wrapped)


class Encryption(Section):
    cipher: Literal["AES-256-GCM"]
    associated_data: AssociatedData
    data_key: DataKey


class Integrity(Section):
    #: SHA-256 of the whole backup stream; null when not computed (striped points)
    raw_sha256: Sha256Hex | None


class Authentication(Section):
    """A tag over ``Manifest.authenticated_payload()`` (``manifest_auth``)."""

    algorithm: Literal["HMAC-SHA256"]
    key_id: str = Field(min_length=1)
    key_version: str
    tag: Base64

    @property
    def tag_bytes(self) -> bytes:
        return base64.b64decode(self.tag)


# -- the manifest ------------------------------------------------------------------------


class Manifest(Section):
    """One committed recovery point (format version 2; an upgraded version 1 in memory)."""

    format_version: Literal[2]
    identity: Identity
    backup: BackupFacts
    data: DataLayout
    encryption: Encryption
    integrity: Integrity
    authentication: Authentication | None
    committed_at: UtcTime
    writer: str
    #: set in memory only, by ``ManifestV1.upgrade``: version 1 had no tag to check
    _legacy: bool = PrivateAttr(default=False)

    @property
    def legacy_unauthenticated(self) -> bool:
        """A version-1 point, upgraded in memory: readable, but nothing authenticates it."""
        return self._legacy

    def mark_legacy(self) -> Manifest:
        self._legacy = True
        return self

    def mark_authenticated(self) -> Manifest:
        """For a copy about to be sealed (``vault rekey`` re-seals a version-1 point)."""
        self._legacy = False
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if len(self.data.stripes) > 1 and self.integrity.raw_sha256 is not None:
            raise ValueError("raw_sha256 covers one stream: it must be null for a striped point")
        return self

    def to_record(self) -> BackupRecord:
        return self.backup.to_record()

    def recovery_point(self) -> RecoveryPoint:
        key = self.encryption.data_key
        return RecoveryPoint(
            id=self.identity.recovery_point_id,
            record=self.to_record(),
            key=PointKey(key.wrap, key.key_id, key.key_version),
            authenticated=not self.legacy_unauthenticated,
            tag=self.authentication.tag if self.authentication else "",
        )

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=1).encode("utf-8")

    def authenticated_payload(self) -> bytes:
        """The canonical bytes a future authentication tag covers: the document without
        ``authentication``, as JSON with sorted keys and no whitespace (ASCII, UTF-8)."""
        document = self.model_dump(mode="json", exclude={"authentication"})
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def parse(cls, body: bytes, *, name: str = "manifest") -> Manifest:
        """Validate a version-2 document strictly (JSON types as written: no "true" for a
        bool, no 1.0 for an int); no identity check here, see ``read_manifest``."""
        try:
            return cls.model_validate_json(body, strict=True)
        except ValidationError as exc:
            raise invalid(exc, name) from None


def invalid(exc: ValidationError, name: str) -> IntegrityError:
    """The IntegrityError naming the first few problems of a document."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'document'}: {err['msg']}"
        for err in exc.errors(include_input=False)[:5]
    )
    return IntegrityError(f"{name} is not a valid sqlharbor manifest: {problems}")


def digest_of_digests(digests: list[bytes]) -> str:
    return hashlib.sha256(b"".join(digests)).hexdigest()
