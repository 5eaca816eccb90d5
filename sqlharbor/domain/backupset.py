"""What a backup *is*, independent of where it is stored: the facts of one backup set.

These frozen records mirror ``msdb.dbo.backupset`` and ``sys.databases``.  Engines
produce them, the vault manifest stores them, the chain rules (``sqlharbor.domain.chain``)
and the restore planner reason about them.  Pure data: no I/O here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class BackupType(enum.StrEnum):
    FULL = "Full"
    DIFFERENTIAL = "Differential"
    LOG = "Log"


class RecoveryModel(enum.StrEnum):
    FULL = "FULL"
    BULK_LOGGED = "BULK_LOGGED"
    SIMPLE = "SIMPLE"


class DatabaseState(enum.StrEnum):
    ONLINE = "ONLINE"
    RESTORING = "RESTORING"
    RECOVERING = "RECOVERING"
    OFFLINE = "OFFLINE"
    SUSPECT = "SUSPECT"


@dataclass(frozen=True)
class DatabaseInfo:
    """One database as discovery sees it (``sys.databases`` + size + AG membership)."""

    name: str
    database_guid: str
    recovery_model: RecoveryModel
    state: DatabaseState
    size_bytes: int
    read_only: bool = False
    is_system: bool = False
    availability_group: str | None = None
    is_preferred_backup_replica: bool = True
    #: ``sys.database_recovery_status.recovery_fork_guid``: changes when the database is
    #: restored in place ("" when the engine does not know it)
    recovery_fork_guid: str = ""


class MediaKind(enum.StrEnum):
    """``msdb.dbo.backupmediafamily.device_type``, by name."""

    DISK = "Disk"
    TAPE = "Tape"
    VIRTUAL_DEVICE = "VirtualDevice"
    URL = "Url"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class MediaFile:
    """One file or device a backup set was written to (``msdb.dbo.backupmediafamily``).

    ``family`` is the ``family_sequence_number``: striped backups write one family per
    device (1..64); ``mirror`` numbers the copies of a mirrored media set."""

    name: str
    family: int = 1
    mirror: int = 0
    kind: MediaKind = MediaKind.UNKNOWN


@dataclass(frozen=True)
class BackupMedia:
    """Where a backup set lives: its media set, its ``position`` in it (a media set can
    hold several backup sets) and the files or devices (several when striped)."""

    files: tuple[MediaFile, ...] = ()
    position: int = 1
    media_set_id: str = ""

    @property
    def stripes(self) -> int:
        """How many devices the backup set was striped across."""
        return len({f.family for f in self.files}) or 1


@dataclass(frozen=True)
class BackupRecord:
    """One completed backup set, as ``msdb.dbo.backupset`` describes it.

    LSNs are plain integers (SQL Server's ``numeric(25,0)``).  Times are timezone-aware
    UTC.  ``first_commit_time`` is the earliest commit the backup can restore to (for a
    log: just after the previous log's end); ``finish`` is the latest.
    """

    database_name: str
    database_guid: str
    backup_type: BackupType
    is_copy_only: bool
    first_lsn: int
    last_lsn: int
    checkpoint_lsn: int
    database_backup_lsn: int
    differential_base_lsn: int | None
    start: datetime
    finish: datetime
    recovery_model: RecoveryModel
    begins_log_chain: bool = False
    size_bytes: int = 0
    backup_set_id: str = ""
    #: ``backup_set_uuid``: the backup set's GUID, unique across servers and recovery forks
    #: ("" when unknown: points written before it was recorded)
    backup_set_uuid: str = ""
    #: ``differential_base_guid``: for a differential, the ``backup_set_uuid`` of the full it
    #: is based on; it pairs the two exactly where checkpoint LSNs repeat across recovery
    #: forks (``sqlharbor.domain.diffbase``).  "" when unknown (points written before it was
    #: recorded, a multi-based differential) and for fulls and logs
    differential_base_guid: str = ""
    #: recovery forks (``first_recovery_fork_guid`` / ``last_recovery_fork_guid``): equal
    #: except for a log backup that spans a fork point (the first log backup after an
    #: in-place restore); "" when unknown (points written before forks were recorded)
    first_recovery_fork_guid: str = ""
    last_recovery_fork_guid: str = ""
    #: where the new fork begins, for a log that spans a fork point
    fork_point_lsn: int | None = None
    #: ``@@SERVERNAME`` of the server that took it (for an availability group: the replica)
    server_name: str = ""
    media: BackupMedia | None = None

    @property
    def recovery_fork(self) -> str:
        """The fork the backup ends on: where a restore that ends with it leaves the database."""
        return self.last_recovery_fork_guid

    @property
    def spans_fork(self) -> bool:
        """A log backup that holds a fork point (both forks known and different)."""
        first, last = self.first_recovery_fork_guid, self.last_recovery_fork_guid
        return bool(first) and bool(last) and first != last

    def fork_at(self, lsn: int) -> str:
        """The recovery fork the backup's log is on at ``lsn``."""
        if self.spans_fork and self.fork_point_lsn is not None and lsn < self.fork_point_lsn:
            return self.first_recovery_fork_guid
        return self.last_recovery_fork_guid

    @property
    def is_empty_log(self) -> bool:
        """A log backup of an idle database: no log since the previous one
        (``first_lsn == last_lsn``).  It restores nothing but proves the database was idle
        until it finished."""
        return self.backup_type is BackupType.LOG and self.first_lsn == self.last_lsn

    @property
    def is_base(self) -> bool:
        """A full or differential that log backups can follow."""
        return self.backup_type is not BackupType.LOG

    @property
    def is_differential_base(self) -> bool:
        """Only a non-copy-only full can be the base of differentials."""
        return self.backup_type is BackupType.FULL and not self.is_copy_only


@dataclass(frozen=True)
class BackupRequest:
    """What the agent asks an engine for."""

    database_name: str
    backup_type: BackupType
    copy_only: bool = False


@dataclass(frozen=True)
class PointKey:
    """Which key wraps a recovery point's data key (as its manifest names it)."""

    wrap: str
    key_id: str
    key_version: str

    def describe(self) -> str:
        version = f" version {self.key_version}" if self.key_version else ""
        return f"key {self.key_id}{version} ({self.wrap})"


@dataclass(frozen=True)
class RecoveryPoint:
    """A backup as the vault knows it: its recovery point id and its backupset facts, and
    (not part of its identity) the key that wraps it and whether its manifest is
    authenticated (False for a version-1 manifest)."""

    id: str
    record: BackupRecord
    key: PointKey | None = field(default=None, compare=False)
    authenticated: bool = field(default=True, compare=False)
    #: the manifest's authentication tag (base64; empty for version 1), which the
    #: catalog line records so that a manifest written over the point's is caught
    tag: str = field(default="", compare=False)
