"""The manifest's ``backup`` section: every fact of the ``BackupRecord``, nested where it
groups (recovery forks, media, logical files), and the value types every section of the
manifest shares (LSNs as decimal strings, UTC times).  Part of ``vault.manifest``; field
by field: docs/vault-format.md.

LSNs are SQL Server ``numeric(25,0)`` values, wider than 64 bits: they are stored as
decimal strings so that any JSON reader keeps them exact.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from sqlharbor.domain.backupset import (
    BackupMedia,
    BackupRecord,
    BackupType,
    MediaFile,
    MediaKind,
    RecoveryModel,
)


def _lsn(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("an LSN is a decimal string")
    if isinstance(value, str) and not value.isdigit():
        raise ValueError("an LSN is a decimal string of digits")
    return int(value)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Lsn = Annotated[int, BeforeValidator(_lsn), PlainSerializer(str, return_type=str), Field(ge=0)]
UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]


class Section(BaseModel):
    """Every manifest model: immutable, and no field it does not define."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class RecoveryFork(Section):
    first: str
    last: str
    fork_point_lsn: Lsn | None


class MediaFileEntry(Section):
    name: str
    family: int = Field(ge=0)
    mirror: int = Field(ge=0)
    kind: MediaKind


class Media(Section):
    media_set_id: str
    position: int = Field(ge=0)
    files: tuple[MediaFileEntry, ...]


class LogicalFileType(enum.StrEnum):
    """``sys.database_files.type_desc``."""

    ROWS = "ROWS"
    LOG = "LOG"
    FILESTREAM = "FILESTREAM"
    FULLTEXT = "FULLTEXT"


class LogicalFile(Section):
    """Reserved for the file relocation issue: one file of the backup (FILELISTONLY)."""

    logical_name: str
    physical_name: str
    type: LogicalFileType
    file_id: int = Field(ge=1)
    filegroup: str
    size_bytes: int = Field(ge=0)


class BackupFacts(Section):
    """Every field of the ``BackupRecord`` (``msdb.dbo.backupset``)."""

    database_name: str
    database_guid: str
    backup_type: BackupType
    copy_only: bool
    begins_log_chain: bool
    backup_set_id: str
    #: added before version 2 was released: optional, "" when unknown
    backup_set_uuid: str = ""
    first_lsn: Lsn
    last_lsn: Lsn
    checkpoint_lsn: Lsn
    database_backup_lsn: Lsn
    differential_base_lsn: Lsn | None
    #: the base full's ``backup_set_uuid`` (a differential); optional, "" when unknown
    differential_base_guid: str = ""
    recovery_fork: RecoveryFork
    start: UtcTime
    finish: UtcTime
    recovery_model: RecoveryModel
    size_bytes: int = Field(ge=0, description="size SQL Server reported")
    server_name: str
    media: Media | None
    logical_files: tuple[LogicalFile, ...]

    @model_validator(mode="after")
    def _times(self) -> BackupFacts:
        if self.finish < self.start:
            raise ValueError("finish must not be before start")
        return self

    @classmethod
    def of(cls, record: BackupRecord) -> BackupFacts:
        media = None
        if record.media is not None:
            media = Media(
                media_set_id=record.media.media_set_id,
                position=record.media.position,
                files=tuple(
                    MediaFileEntry(name=f.name, family=f.family, mirror=f.mirror, kind=f.kind)
                    for f in record.media.files
                ),
            )
        return cls(
            database_name=record.database_name,
            database_guid=record.database_guid,
            backup_type=record.backup_type,
            copy_only=record.is_copy_only,
            begins_log_chain=record.begins_log_chain,
            backup_set_id=record.backup_set_id,
            backup_set_uuid=record.backup_set_uuid,
            first_lsn=record.first_lsn,
            last_lsn=record.last_lsn,
            checkpoint_lsn=record.checkpoint_lsn,
            database_backup_lsn=record.database_backup_lsn,
            differential_base_lsn=record.differential_base_lsn,
            differential_base_guid=record.differential_base_guid,
            recovery_fork=RecoveryFork(
                first=record.first_recovery_fork_guid,
                last=record.last_recovery_fork_guid,
                fork_point_lsn=record.fork_point_lsn,
            ),
            start=record.start,
            finish=record.finish,
            recovery_model=record.recovery_model,
            size_bytes=record.size_bytes,
            server_name=record.server_name,
            media=media,
            logical_files=(),
        )

    def to_record(self) -> BackupRecord:
        media = None
        if self.media is not None:
            media = BackupMedia(
                files=tuple(
                    MediaFile(name=f.name, family=f.family, mirror=f.mirror, kind=f.kind)
                    for f in self.media.files
                ),
                position=self.media.position,
                media_set_id=self.media.media_set_id,
            )
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
            size_bytes=self.size_bytes,
            backup_set_id=self.backup_set_id,
            backup_set_uuid=self.backup_set_uuid,
            differential_base_guid=self.differential_base_guid,
            first_recovery_fork_guid=self.recovery_fork.first,
            last_recovery_fork_guid=self.recovery_fork.last,
            fork_point_lsn=self.recovery_fork.fork_point_lsn,
            server_name=self.server_name,
            media=media,
        )
