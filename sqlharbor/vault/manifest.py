"""The manifest: the JSON document that makes a recovery point exist.

Written last by ``RecoveryPointWriter.commit`` (create-only), read by the reader, the
catalog rebuild, retention and the CLI.  It carries the backup's facts (converted to
and from ``sqlharbor.domain.backupset.BackupRecord`` / ``RecoveryPoint``) and everything a
reader needs: chunking, compression, cipher, the wrapped data key and the id of the
key-encryption key that wrapped it, per-chunk stored sizes and digests.

LSNs are SQL Server ``numeric(25,0)`` values, wider than 64 bits: they are stored as
decimal strings so that any JSON reader keeps them exact.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from sqlharbor.domain.backupset import BackupRecord, BackupType, RecoveryModel, RecoveryPoint
from sqlharbor.errors import IntegrityError
from sqlharbor.vault.codec import Compression

FORMAT_VERSION = 1
MAX_BLOCKS_PER_BLOB = 50_000

Lsn = Annotated[int, BeforeValidator(int), PlainSerializer(str, return_type=str), Field(ge=0)]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


class Manifest(BaseModel):
    """One committed recovery point (format version 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1] = 1
    recovery_point_id: str
    instance: str
    database_name: str
    database_guid: str
    backup_type: BackupType
    copy_only: bool
    begins_log_chain: bool = False
    backup_set_id: str = ""
    first_lsn: Lsn
    last_lsn: Lsn
    checkpoint_lsn: Lsn
    database_backup_lsn: Lsn
    differential_base_lsn: Lsn | None = None
    start: AwareDatetime
    finish: AwareDatetime
    recovery_model: RecoveryModel
    backup_size_bytes: int = Field(ge=0, description="size SQL Server reported")
    raw_size: int = Field(ge=0, description="bytes of the backup stream")
    stored_size: int = Field(ge=0, description="bytes in the vault (compressed, encrypted)")
    chunk_size: int = Field(gt=0)
    chunk_count: int = Field(gt=0)
    chunks_per_blob: int = Field(gt=0, le=MAX_BLOCKS_PER_BLOB)
    chunk_stored_sizes: list[int]
    compression: Compression
    compression_level: int = 0
    cipher: Literal["AES-256-GCM"] = "AES-256-GCM"
    nonce_prefix: str = Field(pattern=r"^[0-9a-f]{8}$")
    key_wrap: Literal["AES-256-KW"] = "AES-256-KW"
    wrapped_data_key: str
    kek_id: str
    raw_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    stored_chunks_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 over the SHA-256 of every stored chunk, in order (key-less check)",
    )
    committed_at: AwareDatetime
    writer: str = "sqlharbor"

    @field_validator("start", "finish", "committed_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @field_validator("chunk_stored_sizes")
    @classmethod
    def _sizes(cls, value: list[int]) -> list[int]:
        if any(size < 0 for size in value):
            raise ValueError("chunk sizes must not be negative")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if len(self.chunk_stored_sizes) != self.chunk_count:
            raise ValueError("chunk_stored_sizes must list every chunk")
        if sum(self.chunk_stored_sizes) != self.stored_size:
            raise ValueError("stored_size must be the sum of the chunk sizes")
        if self.finish < self.start:
            raise ValueError("finish must not be before start")
        return self

    # -- conversions ----------------------------------------------------------------

    @property
    def data_key_wrapped(self) -> bytes:
        return base64.b64decode(self.wrapped_data_key)

    @property
    def blob_count(self) -> int:
        return -(-self.chunk_count // self.chunks_per_blob)

    def to_record(self) -> BackupRecord:
        return BackupRecord(
            database_name=self.database_name,
            database_guid=self.database_guid,
            backup_type=self.backup_type,
            is_copy_only=self.copy_only,
            first_lsn=self.first_lsn,
            last_lsn=self.last_lsn,
            checkpoint_lsn=self.checkpoint_lsn,
            database_backup_lsn=self.database_backup_lsn,
            differential_base_lsn=self.differential_base_lsn,
            start=self.start,
            finish=self.finish,
            recovery_model=self.recovery_model,
            begins_log_chain=self.begins_log_chain,
            size_bytes=self.backup_size_bytes,
            backup_set_id=self.backup_set_id,
        )

    def recovery_point(self) -> RecoveryPoint:
        return RecoveryPoint(id=self.recovery_point_id, record=self.to_record())

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, name: str = "manifest") -> Manifest:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'document'}: {err['msg']}"
                for err in exc.errors(include_input=False)[:5]
            )
            raise IntegrityError(f"{name} is not a valid sqlharbor manifest: {problems}") from None


def record_fields(record: BackupRecord) -> dict[str, object]:
    """The manifest fields that come from a ``BackupRecord``."""
    return {
        "database_name": record.database_name,
        "database_guid": record.database_guid,
        "backup_type": record.backup_type,
        "copy_only": record.is_copy_only,
        "begins_log_chain": record.begins_log_chain,
        "backup_set_id": record.backup_set_id,
        "first_lsn": record.first_lsn,
        "last_lsn": record.last_lsn,
        "checkpoint_lsn": record.checkpoint_lsn,
        "database_backup_lsn": record.database_backup_lsn,
        "differential_base_lsn": record.differential_base_lsn,
        "start": record.start,
        "finish": record.finish,
        "recovery_model": record.recovery_model,
        "backup_size_bytes": record.size_bytes,
    }


def digest_of_digests(digests: list[bytes]) -> str:
    return hashlib.sha256(b"".join(digests)).hexdigest()
