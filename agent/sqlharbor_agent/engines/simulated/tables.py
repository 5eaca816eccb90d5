"""Row mappings for the simulated instance's tables: databases, backupset, times.

Shared by ``engine`` (backups, controls) and ``restore``; pure mapping between SQLite
rows and the core's records (``DatabaseInfo``, ``BackupRecord``), plus the stable error
codes the simulated engine raises.  Times are stored as integer microseconds since the
Unix epoch (UTC), so STOPAT compares at microsecond precision.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlharbor.domain.backupset import BackupRecord, BackupType, DatabaseState, RecoveryModel
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

    @property
    def is_master(self) -> bool:
        return self.name.lower() == "master"


_DB_COLUMNS = (
    "name, guid, recovery_model, state, read_only, is_system, next_lsn, last_event_us, "
    "diff_base_lsn, full_checkpoint_lsn, last_log_backup_lsn"
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


_RECORD_COLUMNS = (
    "backup_set_id, database_name, database_guid, backup_type, is_copy_only, first_lsn, "
    "last_lsn, checkpoint_lsn, database_backup_lsn, differential_base_lsn, start_us, "
    "finish_us, recovery_model, begins_log_chain, size_bytes"
)


def insert_record(con: sqlite3.Connection, record: BackupRecord, *, out_of_band: bool) -> None:
    con.execute(
        f"INSERT INTO backupset ({_RECORD_COLUMNS}, out_of_band) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.backup_set_id,
            record.database_name,
            record.database_guid,
            record.backup_type.value,
            int(record.is_copy_only),
            record.first_lsn,
            record.last_lsn,
            record.checkpoint_lsn,
            record.database_backup_lsn,
            record.differential_base_lsn,
            to_us(record.start),
            to_us(record.finish),
            record.recovery_model.value,
            int(record.begins_log_chain),
            record.size_bytes,
            int(out_of_band),
        ),
    )


def select_records(con: sqlite3.Connection, name: str, since_us: int | None) -> list[BackupRecord]:
    sql = f"SELECT {_RECORD_COLUMNS} FROM backupset WHERE database_name = ?"
    args: tuple[object, ...] = (name,)
    if since_us is not None:
        sql += " AND finish_us >= ?"
        args += (since_us,)
    return [_record(row) for row in con.execute(sql + " ORDER BY finish_us, id", args)]


def _record(row: tuple[Any, ...]) -> BackupRecord:
    (bsid, name, guid, btype, copy_only, first, last, ckpt, dblsn, diffbase) = row[:10]
    (start, finish, model, begins, size) = row[10:]
    return BackupRecord(
        database_name=name,
        database_guid=guid,
        backup_type=BackupType(btype),
        is_copy_only=bool(copy_only),
        first_lsn=first,
        last_lsn=last,
        checkpoint_lsn=ckpt,
        database_backup_lsn=dblsn,
        differential_base_lsn=diffbase,
        start=from_us(start),
        finish=from_us(finish),
        recovery_model=RecoveryModel(model),
        begins_log_chain=bool(begins),
        size_bytes=size,
        backup_set_id=bsid,
    )
