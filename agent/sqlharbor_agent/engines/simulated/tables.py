"""Row mappings for the simulated instance's tables: databases, times.

Shared by ``engine`` (backups, controls), ``restore`` and ``history`` (msdb's tables);
pure mapping between SQLite rows and small records, plus the stable error codes the
simulated engine raises.  Event times are stored as integer microseconds since the
Unix epoch (UTC), so STOPAT compares at microsecond precision.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlharbor.domain.backupset import DatabaseState, RecoveryModel
from sqlharbor.errors import EngineError, ErrorCode

Clock = Callable[[], datetime]

#: LSNs of a new database start here (numeric(25,0)-like magnitudes, within int64).
FIRST_LSN = 34_000_000_010_000_001


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch; naive datetimes are refused (they hide a time zone bug)."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return (moment - _EPOCH) // _MICRO


def from_us(us: int) -> datetime:
    return _EPOCH + us * _MICRO


@dataclass(frozen=True)
class DatabaseRow:
    """One row of ``databases``: the catalog entry plus its LSN bookkeeping."""

    name: str
    guid: str
    recovery_model: RecoveryModel
    state: DatabaseState
    read_only: bool
    is_system: bool
    next_lsn: int
    last_event_us: int
    diff_base_lsn: int | None
    full_checkpoint_lsn: int | None
    last_log_backup_lsn: int | None
    #: the current recovery fork (``sys.database_recovery_status.recovery_fork_guid``)
    fork_guid: str
    #: the backup set id of the differential base (msdb's ``differential_base_guid``)
    diff_base_guid: str | None

    @property
    def is_master(self) -> bool:
        return self.name.lower() == "master"


_DB_COLUMNS = (
    "name, guid, recovery_model, state, read_only, is_system, next_lsn, last_event_us, "
    "diff_base_lsn, full_checkpoint_lsn, last_log_backup_lsn, fork_guid, diff_base_guid"
)


def find_database(con: sqlite3.Connection, name: str) -> DatabaseRow | None:
    row = con.execute(f"SELECT {_DB_COLUMNS} FROM databases WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    return DatabaseRow(
        name=row[0],
        guid=row[1],
        recovery_model=RecoveryModel(row[2]),
        state=DatabaseState(row[3]),
        read_only=bool(row[4]),
        is_system=bool(row[5]),
        next_lsn=row[6],
        last_event_us=row[7],
        diff_base_lsn=row[8],
        full_checkpoint_lsn=row[9],
        last_log_backup_lsn=row[10],
        fork_guid=row[11],
        diff_base_guid=row[12],
    )


def load_database(con: sqlite3.Connection, name: str) -> DatabaseRow:
    db = find_database(con, name)
    if db is None:
        raise does_not_exist(name)
    return db


def all_database_names(con: sqlite3.Connection) -> list[str]:
    return [row[0] for row in con.execute("SELECT name FROM databases ORDER BY name")]


def does_not_exist(name: str) -> EngineError:
    return EngineError(
        f"Database '{name}' does not exist on this instance.",
        code=ErrorCode.SQL_PO_DOES_NOT_EXIST,
        remediation="Restore the database or stop protecting it; rerun discovery.",
    )


def next_event_us(db: DatabaseRow, clock: Clock) -> int:
    """A commit or backup-end time: the clock, but strictly after the database's last event.

    Strictly increasing event times make "committed at or before T" and "the backup
    ending at T" agree even when the clock is coarse or stands still (a test clock).
    """
    return max(to_us(clock()), db.last_event_us + 1)
