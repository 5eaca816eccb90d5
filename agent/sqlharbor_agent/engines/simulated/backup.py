"""One backup of a simulated database, in SQL Server's phases: ``start`` fixes the checkpoint
(or the log range) under the write lock, ``stream_data`` / ``stream_log`` copy what the
backup holds into the stream, ``finish`` records it in history with SQL Server's effects
(differential base, log truncation).  Driven by ``SimulatedEngine`` (one at a time per
database).
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass

from sqlharbor.domain.backupset import BackupRecord, BackupRequest, BackupType, RecoveryModel
from sqlharbor.errors import EngineError, ErrorCode
from sqlharbor_agent.engines.simulated import tables
from sqlharbor_agent.engines.simulated.backup_rules import validate_backup
from sqlharbor_agent.engines.simulated.store import Store
from sqlharbor_agent.engines.simulated.stream import StreamWriter
from sqlharbor_agent.engines.simulated.tables import (
    Clock,
    DatabaseRow,
    from_us,
    load_database,
    next_event_us,
    to_us,
)


@dataclass(frozen=True)
class Started:
    """What the first phase of a backup fixed (checkpoint / log range, times)."""

    db: DatabaseRow
    request: BackupRequest
    start_us: int
    checkpoint_lsn: int
    first_lsn: int
    database_backup_lsn: int
    differential_base_lsn: int | None
    log_end: tuple[int, int] | None  # (last_lsn, finish_us), fixed up front for logs


CHANGED_SINCE = (
    "SELECT j.k, r.payload FROM (SELECT DISTINCT k FROM journal "
    "WHERE guid = ? AND lsn >= ? AND lsn < ?) AS j "
    "LEFT JOIN rows AS r ON r.guid = ? AND r.k = j.k ORDER BY j.k"
)


class BackupRun:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def start(self, request: BackupRequest) -> Started:
        with self._store.write() as con:
            db = load_database(con, request.database_name)
            validate_backup(db, request)
            start_us = to_us(self._clock())
            marker = db.next_lsn
            log_end = None
            if request.backup_type is BackupType.LOG:
                log_end = (marker + 1, next_event_us(db, self._clock))
                con.execute(
                    "UPDATE databases SET next_lsn = ?, last_event_us = ? WHERE guid = ?",
                    (marker + 1, log_end[1], db.guid),
                )
            else:
                con.execute(
                    "UPDATE databases SET next_lsn = ? WHERE guid = ?", (marker + 1, db.guid)
                )
        first = marker
        if log_end is not None and db.last_log_backup_lsn is not None:
            first = db.last_log_backup_lsn
        return Started(
            db=db,
            request=request,
            start_us=min(start_us, log_end[1]) if log_end else start_us,
            checkpoint_lsn=marker,
            first_lsn=first,
            database_backup_lsn=db.full_checkpoint_lsn or 0,
            differential_base_lsn=(
                db.diff_base_lsn if request.backup_type is BackupType.DIFFERENTIAL else None
            ),
            log_end=log_end,
        )

    def stream_data(self, writer: StreamWriter, started: Started) -> tuple[int, int]:
        """Copy the data (all rows, or what changed since the base), then the log tail."""
        guid = started.db.guid
        with self._store.read() as con:
            snapshot_lsn = self._reload(con, started).next_lsn
            if started.differential_base_lsn is None:
                for key, payload in con.execute(
                    "SELECT k, payload FROM rows WHERE guid = ? ORDER BY k", (guid,)
                ):
                    writer.row(key, payload)
            else:
                for key, payload in con.execute(
                    CHANGED_SINCE, (guid, started.differential_base_lsn, snapshot_lsn, guid)
                ):
                    if payload is None:
                        writer.delete(key)
                    else:
                        writer.row(key, payload)
        with self._store.write() as con:
            db = self._reload(con, started)
            last_lsn, finish_us = db.next_lsn, next_event_us(db, self._clock)
            con.execute("UPDATE databases SET last_event_us = ? WHERE guid = ?", (finish_us, guid))
        self.stream_log(writer, guid, snapshot_lsn, last_lsn)
        return last_lsn, finish_us

    def stream_log(self, writer: StreamWriter, guid: str, first: int, last: int) -> None:
        with self._store.read() as con:
            for lsn, commit_us, op, key, payload in con.execute(
                "SELECT lsn, commit_us, op, k, payload FROM journal "
                "WHERE guid = ? AND lsn >= ? AND lsn < ? ORDER BY lsn, seq",
                (guid, first, last),
            ):
                writer.op(lsn, commit_us, op, key, payload)

    def finish(
        self, started: Started, last_lsn: int, finish_us: int, size: int, out_of_band: bool
    ) -> BackupRecord:
        request = started.request
        with self._store.write() as con:
            db = self._reload(con, started)
            validate_backup(db, request)
            begins_chain = False
            kind = request.backup_type
            if kind is BackupType.LOG and not request.copy_only:
                if db.last_log_backup_lsn != started.first_lsn:
                    raise EngineError(
                        "Another log backup completed meanwhile; the log chain moved.",
                        code=ErrorCode.SQL_LSN_VALIDATION_FAILURE,
                    )
                set_columns(con, db.guid, last_log_backup_lsn=last_lsn)
            if kind is BackupType.FULL and not request.copy_only:
                set_columns(
                    con,
                    db.guid,
                    diff_base_lsn=started.checkpoint_lsn,
                    full_checkpoint_lsn=started.checkpoint_lsn,
                )
            if (
                kind is not BackupType.LOG
                and not request.copy_only
                and db.recovery_model is not RecoveryModel.SIMPLE
                and db.last_log_backup_lsn is None
            ):
                set_columns(con, db.guid, last_log_backup_lsn=started.checkpoint_lsn)
                begins_chain = True
            record = BackupRecord(
                database_name=db.name,
                database_guid=db.guid,
                backup_type=kind,
                is_copy_only=request.copy_only,
                first_lsn=started.first_lsn,
                last_lsn=last_lsn,
                checkpoint_lsn=started.checkpoint_lsn,
                database_backup_lsn=started.database_backup_lsn,
                differential_base_lsn=started.differential_base_lsn,
                start=from_us(started.start_us),
                finish=from_us(finish_us),
                recovery_model=db.recovery_model,
                begins_log_chain=begins_chain,
                size_bytes=size,
                backup_set_id=uuid.uuid4().hex,
            )
            tables.insert_record(con, record, out_of_band=out_of_band)
            return record

    def _reload(self, con: sqlite3.Connection, started: Started) -> DatabaseRow:
        db = tables.find_database(con, started.db.name)
        if db is None or db.guid != started.db.guid:
            raise EngineError(
                f"Database '{started.db.name}' was dropped or replaced during the backup.",
                code=ErrorCode.SQL_PO_DOES_NOT_EXIST,
            )
        return db


def set_columns(con: sqlite3.Connection, guid: str, **columns: int | None) -> None:
    assignments = ", ".join(f"{name} = ?" for name in columns)
    con.execute(f"UPDATE databases SET {assignments} WHERE guid = ?", (*columns.values(), guid))


def header(instance: str, started: Started) -> dict[str, object]:
    return {
        "instance": instance,
        "database_name": started.db.name,
        "database_guid": started.db.guid,
        "backup_type": started.request.backup_type.value,
        "is_copy_only": started.request.copy_only,
        "recovery_model": started.db.recovery_model.value,
        "first_lsn": started.first_lsn,
        "checkpoint_lsn": started.checkpoint_lsn,
        "differential_base_lsn": started.differential_base_lsn,
    }
