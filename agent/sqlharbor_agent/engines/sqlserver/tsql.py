"""T-SQL text for backups and restores: quoting and the BACKUP / RESTORE statement builders.

Called by ``engine`` (and ``grant``) to build every statement the plugin sends.  Nothing
here touches a connection, so the exact text is covered by golden tests.  Statement text
is never built from unescaped input: identifiers go through :func:`quote_identifier`
(``QUOTENAME`` semantics) and values through :func:`quote_literal` (``N'...'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import EngineError, ErrorCode

#: ``sysname`` is ``nvarchar(128)``; QUOTENAME returns NULL beyond that.
MAX_IDENTIFIER_LENGTH = 128
KIB64 = 64 * 1024
MAX_TRANSFER_SIZE_LIMIT = 4 * 1024 * 1024
MAX_DEVICES = 64


def _refuse_nul(value: str, what: str) -> None:
    if "\x00" in value:
        raise EngineError(f"{what} contains a NUL character", code=ErrorCode.INVALID_NAME)


def quote_identifier(name: str) -> str:
    """``QUOTENAME(name)``: wrap in brackets, double every ``]``; any unicode is kept."""
    _refuse_nul(name, "identifier")
    if not name or len(name) > MAX_IDENTIFIER_LENGTH:
        raise EngineError(
            f"identifier length {len(name)} is outside 1..{MAX_IDENTIFIER_LENGTH}",
            code=ErrorCode.INVALID_NAME,
        )
    return "[" + name.replace("]", "]]") + "]"


def quote_literal(value: str) -> str:
    """A unicode string literal: ``N'...'`` with every ``'`` doubled."""
    _refuse_nul(value, "string literal")
    return "N'" + value.replace("'", "''") + "'"


def datetime_literal(moment: datetime) -> str:
    """A ``datetime`` literal (ISO 8601, language-independent), floored to 1/300 s.

    ``datetime`` counts 1/300 s ticks (.000, .003, .007); flooring never moves a stop
    point past the instant asked for.  ``moment`` must already be in the server's zone.
    """
    whole = moment.replace(microsecond=0, tzinfo=None)
    tick = moment.microsecond * 300 // 1_000_000
    millis = round(tick * 10 / 3)
    return f"'{whole:%Y-%m-%dT%H:%M:%S}.{millis:03d}'"


def to_server_local(moment_utc: datetime, offset_minutes: int) -> datetime:
    """A UTC instant as the server's local wall clock (``offset_minutes`` east of UTC)."""
    if moment_utc.tzinfo is None:
        raise ValueError("expected a timezone-aware UTC datetime")
    naive_utc = moment_utc.astimezone(UTC).replace(tzinfo=None)
    return naive_utc + timedelta(minutes=offset_minutes)


@dataclass(frozen=True)
class StreamGeometry:
    """How SQL Server moves data through VDI: ``MAXTRANSFERSIZE``, ``BUFFERCOUNT``, ``BLOCKSIZE``.

    VDI's default transfer size is only 64 KB, so all three are always stated.
    ``buffer_count * max_transfer_size`` is contiguous server memory: keep it modest.
    """

    max_transfer_size: int = MAX_TRANSFER_SIZE_LIMIT
    buffer_count: int = 8
    block_size: int = KIB64

    def __post_init__(self) -> None:
        mts = self.max_transfer_size
        if mts % KIB64 or not KIB64 <= mts <= MAX_TRANSFER_SIZE_LIMIT:
            raise ValueError("max_transfer_size must be a multiple of 64 KiB up to 4 MiB")
        if not 1 <= self.buffer_count <= 64:
            raise ValueError("buffer_count must be within 1..64")
        bs = self.block_size
        if bs & (bs - 1) or not 512 <= bs <= KIB64:
            raise ValueError("block_size must be a power of two within 512..65536")

    def options(self) -> list[str]:
        return [
            f"MAXTRANSFERSIZE = {self.max_transfer_size}",
            f"BUFFERCOUNT = {self.buffer_count}",
            f"BLOCKSIZE = {self.block_size}",
        ]


def _devices(device_names: Sequence[str]) -> str:
    if not 1 <= len(device_names) <= MAX_DEVICES:
        raise ValueError(f"a backup uses 1..{MAX_DEVICES} virtual devices")
    return ", ".join(f"VIRTUAL_DEVICE = {quote_literal(n)}" for n in device_names)


def backup_statement(
    database: str,
    backup_type: BackupType,
    device_names: Sequence[str],
    geometry: StreamGeometry,
    *,
    copy_only: bool = False,
) -> str:
    """``BACKUP DATABASE|LOG ... TO VIRTUAL_DEVICE = N'...' WITH ..., CHECKSUM``."""
    if backup_type is BackupType.DIFFERENTIAL and copy_only:
        raise EngineError(
            "a differential cannot be copy-only",
            code=ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE,
        )
    verb = "LOG" if backup_type is BackupType.LOG else "DATABASE"
    options: list[str] = []
    if backup_type is BackupType.DIFFERENTIAL:
        options.append("DIFFERENTIAL")
    if copy_only:
        options.append("COPY_ONLY")
    options += [*geometry.options(), "CHECKSUM"]
    return (
        f"BACKUP {verb} {quote_identifier(database)} TO {_devices(device_names)} "
        f"WITH {', '.join(options)};"
    )


@dataclass(frozen=True)
class FileMove:
    """One ``MOVE N'logical' TO N'physical'`` clause."""

    logical_name: str
    physical_name: str


@dataclass(frozen=True)
class StopClause:
    """``STOPAT`` (a server-local datetime) or ``STOPATMARK = 'lsn:<n>'``."""

    local_time: datetime | None = None
    lsn: int | None = None

    def __post_init__(self) -> None:
        if (self.local_time is None) == (self.lsn is None):
            raise ValueError("StopClause needs exactly one of local_time or lsn")

    def option(self) -> str:
        if self.lsn is not None:
            if self.lsn < 0:
                raise ValueError("an LSN is never negative")
            return f"STOPATMARK = N'lsn:{int(self.lsn)}'"
        assert self.local_time is not None
        return f"STOPAT = {datetime_literal(self.local_time)}"


def restore_statement(
    database: str,
    backup_type: BackupType,
    device_names: Sequence[str],
    geometry: StreamGeometry,
    *,
    recovery: bool,
    replace: bool = False,
    moves: Sequence[FileMove] = (),
    stop: StopClause | None = None,
) -> str:
    """``RESTORE DATABASE|LOG ... FROM VIRTUAL_DEVICE = N'...' WITH ...``.

    ``stop`` belongs on every ``RESTORE LOG`` of a point-in-time sequence; it is refused
    on a full or differential (recovery can only stop inside a log).
    """
    is_log = backup_type is BackupType.LOG
    if stop is not None and not is_log:
        raise ValueError("STOPAT / STOPATMARK apply to RESTORE LOG only")
    options = ["RECOVERY" if recovery else "NORECOVERY"]
    if replace and not is_log:
        options.append("REPLACE")
    if not is_log:
        options += [
            f"MOVE {quote_literal(m.logical_name)} TO {quote_literal(m.physical_name)}"
            for m in moves
        ]
    options += [*geometry.options(), "CHECKSUM"]
    if stop is not None:
        options.append(stop.option())
    verb = "LOG" if is_log else "DATABASE"
    return (
        f"RESTORE {verb} {quote_identifier(database)} FROM {_devices(device_names)} "
        f"WITH {', '.join(options)};"
    )


def grant_sysadmin_statement(login: str) -> str:
    """The exact fix for ``UserErrorSQLNoSysadminMembership``."""
    return f"ALTER SERVER ROLE [sysadmin] ADD MEMBER {quote_identifier(login)};"


def create_windows_login_statement(login: str) -> str:
    """Create a Windows login unless it exists (idempotent)."""
    return (
        "IF NOT EXISTS (SELECT 1 FROM sys.server_principals WHERE name = "
        f"{quote_literal(login)}) CREATE LOGIN {quote_identifier(login)} FROM WINDOWS;"
    )
