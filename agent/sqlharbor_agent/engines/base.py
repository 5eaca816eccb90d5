"""The engine interface: the one narrow Protocol the agent codes against.

An engine is one SQL Server instance (real, through ``sqlserver``; or the on-disk
stand-in, through ``simulated``).  The agent's job runner calls it; engines never call
the agent, the vault or the Kubernetes API.  Data crosses this boundary only as byte
streams (``Sink`` for backups, ``Source`` for restores), so an engine can hand VDI
buffers to the vault pipeline without copying and never needs a staging disk.

Errors: engines raise ``sqlharbor.errors.EngineError`` (permanent, with a stable code)
or ``TemporaryError``; nothing else is expected to escape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlharbor.domain.backupset import BackupRecord, BackupRequest, DatabaseInfo

#: Called with the number of bytes just moved (an increment, not a total).
ProgressCallback = Callable[[int], None]


class Sink(Protocol):
    """Where a backup stream goes (the vault pipeline's writer)."""

    def write(self, data: bytes | memoryview, /) -> int: ...


class Source(Protocol):
    """Where a restore stream comes from; ``readinto`` returns 0 at the end."""

    def readinto(self, buffer: bytearray | memoryview, /) -> int: ...


@dataclass(frozen=True)
class PermissionCheck:
    """The result of checking that the agent's login can back up and restore."""

    ok: bool
    login: str
    message: str
    code: str | None = None
    remediation_tsql: str | None = None


@dataclass(frozen=True)
class StopAt:
    """Where recovery stops: a point in time (UTC) or an exact LSN, never both."""

    time: datetime | None = None
    lsn: int | None = None

    def __post_init__(self) -> None:
        if (self.time is None) == (self.lsn is None):
            raise ValueError("StopAt needs exactly one of time or lsn")


@dataclass(frozen=True)
class FileRelocation:
    """Where restored files go (``WITH MOVE``); None keeps the engine's defaults."""

    data_dir: str | None = None
    log_dir: str | None = None


@dataclass(frozen=True)
class RestoreOptions:
    target_database: str
    replace: bool = False
    relocation: FileRelocation = FileRelocation()


@dataclass(frozen=True)
class RestoreStep:
    """One backup of the restore sequence and the stream that carries it."""

    record: BackupRecord
    source: Source


class Engine(Protocol):
    """One SQL Server instance, as the agent sees it."""

    @property
    def instance_name(self) -> str: ...

    def version(self) -> str: ...

    def discover(self) -> Sequence[DatabaseInfo]: ...

    def check_permissions(self) -> PermissionCheck: ...

    def backup(
        self,
        request: BackupRequest,
        sink: Sink,
        progress: ProgressCallback | None = None,
    ) -> BackupRecord:
        """Stream one backup into ``sink`` and return its backupset facts.

        Success is decided by the engine (for SQL Server: the T-SQL result), not by
        the stream reaching its end.
        """
        ...

    def history(self, database_name: str, since: datetime | None = None) -> Sequence[BackupRecord]:
        """Backups of the database the engine knows of (``msdb.dbo.backupset``), oldest first,
        including ones other tools took."""
        ...

    def restore(
        self,
        options: RestoreOptions,
        steps: Iterable[RestoreStep],
        stop: StopAt | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Apply ``steps`` in order (all but the last WITH NORECOVERY), the stop point on
        every log, then recover.  On failure the target is left RESTORING, never ONLINE."""
        ...
