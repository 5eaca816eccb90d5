"""What a backup *is*, independent of where it is stored: the facts of one backup set.

These frozen records mirror ``msdb.dbo.backupset`` and ``sys.databases``.  Engines
produce them, the vault manifest stores them, the chain rules (``sqlharbor.domain.chain``)
and the restore planner reason about them.  Pure data: no I/O here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
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
class RecoveryPoint:
    """A backup as the vault knows it: its recovery point id and its backupset facts."""

    id: str
    record: BackupRecord
