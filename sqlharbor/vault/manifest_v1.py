"""Manifest format version 1 (sqlharbor up to commit 4f3ea62), read-only.

``ManifestV1`` is the version-1 document exactly as it was written (flat, no identity
section); ``upgrade`` turns it into the version-2 ``Manifest`` in memory, filling the
identity from where it was read.  Nothing writes version 1 any more and an upgraded
manifest is never written back.  Field by field: docs/vault-format.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from sqlharbor.domain.backupset import BackupType, RecoveryModel
from sqlharbor.errors import IntegrityError
from sqlharbor.vault.codec import AssociatedData, Compression
from sqlharbor.vault.layout import PointLocation
from sqlharbor.vault.manifest import (
    FORMAT_VERSION,
    MAX_BLOCKS_PER_BLOB,
    DataKey,
    DataLayout,
    Encryption,
    Identity,
    Integrity,
    Manifest,
    Scope,
    Stripe,
)
from sqlharbor.vault.manifest_backup import BackupFacts, Lsn, RecoveryFork


class ManifestV1(BaseModel):
    """One committed recovery point (format version 1), as it is on the wire."""

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
        return value.astimezone(UTC)

    @field_validator("chunk_stored_sizes")
    @classmethod
    def _sizes(cls, value: list[int]) -> list[int]:
        if any(size < 0 for size in value):
            raise ValueError("chunk sizes must not be negative")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ManifestV1:
        if len(self.chunk_stored_sizes) != self.chunk_count:
            raise ValueError("chunk_stored_sizes must list every chunk")
        if sum(self.chunk_stored_sizes) != self.stored_size:
            raise ValueError("stored_size must be the sum of the chunk sizes")
        if self.finish < self.start:
            raise ValueError("finish must not be before start")
        return self

    def upgrade(self, location: PointLocation) -> Manifest:
        """The version-2 model of this point, its identity taken from ``location``.

        Version 1 has no identity section, but it does name its point, instance and
        database: a document that names another one than where it was read was moved
        or copied, and is refused like a version-2 one.
        """
        named = (self.recovery_point_id, self.instance, self.database_guid)
        where = (location.recovery_point_id, location.instance, location.database_guid)
        if named != where:
            raise IntegrityError(
                f"{location.manifest_blob} was moved or copied: the manifest describes "
                f"recovery point {self.recovery_point_id} of database {self.database_guid} "
                f"on {self.instance}"
            )
        return Manifest(
            format_version=FORMAT_VERSION,
            identity=Identity(
                recovery_point_id=location.recovery_point_id,
                scope=Scope.instance(location.instance),
                database_id=location.database_guid,
                manifest_path=location.manifest_path,
            ),
            backup=BackupFacts(
                database_name=self.database_name,
                database_guid=self.database_guid,
                backup_type=self.backup_type,
                copy_only=self.copy_only,
                begins_log_chain=self.begins_log_chain,
                backup_set_id=self.backup_set_id,
                first_lsn=self.first_lsn,
                last_lsn=self.last_lsn,
                checkpoint_lsn=self.checkpoint_lsn,
                database_backup_lsn=self.database_backup_lsn,
                differential_base_lsn=self.differential_base_lsn,
                recovery_fork=RecoveryFork(first="", last="", fork_point_lsn=None),
                start=self.start,
                finish=self.finish,
                recovery_model=self.recovery_model,
                size_bytes=self.backup_size_bytes,
                server_name="",
                media=None,
                logical_files=(),
            ),
            data=DataLayout(
                chunk_size=self.chunk_size,
                chunks_per_blob=self.chunks_per_blob,
                compression=self.compression,
                compression_level=self.compression_level,
                raw_size=self.raw_size,
                stored_size=self.stored_size,
                stripes=(
                    Stripe(
                        index=0,
                        chunk_count=self.chunk_count,
                        chunk_stored_sizes=tuple(self.chunk_stored_sizes),
                        raw_size=self.raw_size,
                        stored_size=self.stored_size,
                        nonce_prefix=self.nonce_prefix,
                        stored_chunks_sha256=self.stored_chunks_sha256,
                    ),
                ),
            ),
            encryption=Encryption(
                cipher=self.cipher,
                associated_data=AssociatedData.V1,
                data_key=DataKey(
                    wrap=self.key_wrap,
                    key_id=self.kek_id,
                    key_version="",
                    wrapped=self.wrapped_data_key,
                ),
            ),
            integrity=Integrity(raw_sha256=self.raw_sha256),
            authentication=None,
            committed_at=self.committed_at,
            writer=self.writer,
        ).mark_legacy()
