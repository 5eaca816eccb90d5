"""One backup of a simulated database, in SQL Server's phases: ``start`` fixes the checkpoint
(or the log range) under the write lock, ``stream_data`` / ``stream_log`` copy what the
backup holds into the stream, ``finish`` records it in history with SQL Server's effects
(differential base, log truncation).  Driven by ``SimulatedEngine`` (one at a time per
database).

LSNs: a full or differential takes a checkpoint, which is log activity (it uses an LSN,
its ``checkpoint_lsn``).  A log backup writes no log of its own: it holds the log from
the previous log backup's end to the current end, so a log backup of a database with no
activity since the previous one is empty (``first_lsn == last_lsn``), as in SQL Server.
It still ends at a moment of its own (``finish``): the database was idle until then.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass

from sqlharbor.domain.backupset import (
    BackupMedia,
    BackupRecord,
    BackupRequest,
    BackupType,
    MediaFile,
    RecoveryModel,
)
from sqlharbor.errors import EngineError, ErrorCode
from sqlharbor_agent.engines.simulated import forks, history
from sqlharbor_agent.engines.simulated.backup_rules import validate_backup
from sqlharbor_agent.engines.simulated.history import Server
from sqlharbor_agent.engines.simulated.store import Store
from sqlharbor_agent.engines.simulated.stream import StreamWriter
from sqlharbor_agent.engines.simulated.tables import (
    Clock,
    DatabaseRow,
    find_database,
    from_us,
    load_database,
    next_event_us,
    to_us,
)


@dataclass(frozen=True)
class Started:
    """What the first phase of a backup fixed (checkpoint / log range, times, forks)."""

    db: DatabaseRow
    request: BackupRequest
    start_us: int
    checkpoint_lsn: int
    first_lsn: int
    database_backup_lsn: int
    differential_base_lsn: int | None
    log_end: tuple[int, int] | None  # (last_lsn, finish_us), fixed up front for logs
    #: (first fork, last fork, fork point) of the record
    fork_ids: tuple[str, str, int | None]
    #: the path of the database's current fork (what the backup reads from the journal)
    path: list[forks.Segment]
    #: the backup set's id, fixed up front: a full's stream names it, a differential's
    #: stream names its base's (msdb's ``backup_set_uuid`` / ``differential_base_guid``)
    backup_set_id: str

    @property
    def differential_base_guid(self) -> str | None:
        """For a differential, its base full's backup set id (None when unknown)."""
        if self.request.backup_type is not BackupType.DIFFERENTIAL:
            return None
        return self.db.diff_base_guid


CHANGED_SINCE = (
    "SELECT j.k, r.payload FROM (SELECT DISTINCT k FROM journal "
    "WHERE guid = ? AND lsn >= ? AND lsn < ? AND {path}) AS j "
    "LEFT JOIN rows AS r ON r.guid = ? AND r.k = j.k ORDER BY j.k"
)


class BackupRun:
    def __init__(self, store: Store, clock: Clock, server: Server) -> None:
        self._store = store
        self._clock = clock
        self._server = server

    def start(self, request: BackupRequest) -> Started:
        with self._store.write() as con:
            db = load_database(con, request.database_name)
            validate_backup(db, request)
            start_us = to_us(self._clock())
            log_end = None
            if request.backup_type is BackupType.LOG:
                # the log up to now; no LSN of its own (an idle database's log backup is empty)
                checkpoint = db.next_lsn
                log_end = (db.next_lsn, next_event_us(db, self._clock))
                con.execute(
                    "UPDATE databases SET last_event_us = ? WHERE guid = ?", (log_end[1], db.guid)
                )
            else:
                checkpoint = db.next_lsn  # the checkpoint is log activity: it uses an LSN
                con.execute(
                    "UPDATE databases SET next_lsn = ? WHERE guid = ?", (checkpoint + 1, db.guid)
                )
            first = checkpoint
            if log_end is not None and db.last_log_backup_lsn is not None:
                first = db.last_log_backup_lsn
            fork_ids: tuple[str, str, int | None] = (db.fork_guid, db.fork_guid, None)
            if log_end is not None:
                fork_ids = forks.log_forks(con, db.guid, db.fork_guid, first)
            path = forks.path(con, db.guid, db.fork_guid)
        return Started(
            db=db,
            request=request,
            start_us=min(start_us, log_end[1]) if log_end else start_us,
            checkpoint_lsn=checkpoint,
            first_lsn=first,
            database_backup_lsn=db.full_checkpoint_lsn or 0,
            differential_base_lsn=(
                db.diff_base_lsn if request.backup_type is BackupType.DIFFERENTIAL else None
            ),
            log_end=log_end,
            fork_ids=fork_ids,
            path=path,
            backup_set_id=uuid.uuid4().hex,
        )

    def stream_data(self, writer: StreamWriter, started: Started) -> tuple[int, int]:
        """Copy the data (all rows, or what changed since the base), then the log tail."""
        guid = started.db.guid
        on_path, path_params = forks.on_path(started.path)
        with self._store.read() as con:
            snapshot_lsn = self._reload(con, started).next_lsn
            if started.differential_base_lsn is None:
                for key, payload in con.execute(
                    "SELECT k, payload FROM rows WHERE guid = ? ORDER BY k", (guid,)
                ):
                    writer.row(key, payload)
            else:
                for key, payload in con.execute(
                    CHANGED_SINCE.format(path=on_path),
                    (guid, started.differential_base_lsn, snapshot_lsn, *path_params, guid),
                ):
                    if payload is None:
                        writer.delete(key)
                    else:
                        writer.row(key, payload)
        with self._store.write() as con:
            db = self._reload(con, started)
            last_lsn, finish_us = db.next_lsn, next_event_us(db, self._clock)
            con.execute("UPDATE databases SET last_event_us = ? WHERE guid = ?", (finish_us, guid))
        self.stream_log(writer, started, snapshot_lsn, last_lsn)
        return last_lsn, finish_us

    def stream_log(self, writer: StreamWriter, started: Started, first: int, last: int) -> None:
        on_path, path_params = forks.on_path(started.path)
        with self._store.read() as con:
            for lsn, commit_us, op, key, payload in con.execute(
                "SELECT lsn, commit_us, op, k, payload FROM journal "
                f"WHERE guid = ? AND lsn >= ? AND lsn < ? AND {on_path} ORDER BY lsn, seq",
                (started.db.guid, first, last, *path_params),
            ):
                writer.op(lsn, commit_us, op, key, payload)

    def finish(
        self,
        started: Started,
        last_lsn: int,
        finish_us: int,
        size: int,
        *,
        out_of_band: bool,
        files: tuple[MediaFile, ...],
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
                    diff_base_guid=started.backup_set_id,
                )
            if (
                kind is not BackupType.LOG
                and not request.copy_only
                and db.recovery_model is not RecoveryModel.SIMPLE
                and db.last_log_backup_lsn is None
            ):
                set_columns(con, db.guid, last_log_backup_lsn=started.checkpoint_lsn)
                begins_chain = True
            first_fork, last_fork, fork_point = started.fork_ids
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
                backup_set_id=started.backup_set_id,
                backup_set_uuid=started.backup_set_id,
                differential_base_guid=started.differential_base_guid or "",
                first_recovery_fork_guid=first_fork,
                last_recovery_fork_guid=last_fork,
                fork_point_lsn=fork_point,
                server_name=self._server.name,
                media=BackupMedia(files, 1, history.next_media_set_id(con)),
            )
            history.insert_record(con, record, self._server, out_of_band=out_of_band)
            return record

    def _reload(self, con: sqlite3.Connection, started: Started) -> DatabaseRow:
        db = find_database(con, started.db.name)
        if db is None or db.guid != started.db.guid or db.fork_guid != started.db.fork_guid:
            raise EngineError(
                f"Database '{started.db.name}' was dropped or restored during the backup.",
                code=ErrorCode.SQL_PO_DOES_NOT_EXIST,
            )
        return db


def set_columns(con: sqlite3.Connection, guid: str, **columns: int | str | None) -> None:
    assignments = ", ".join(f"{name} = ?" for name in columns)
    con.execute(f"UPDATE databases SET {assignments} WHERE guid = ?", (*columns.values(), guid))


def header(instance: str, started: Started) -> dict[str, object]:
    first_fork, last_fork, _ = started.fork_ids
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
        "first_recovery_fork_guid": first_fork,
        "last_recovery_fork_guid": last_fork,
        "backup_set_id": started.backup_set_id,
        "differential_base_guid": started.differential_base_guid,
    }
