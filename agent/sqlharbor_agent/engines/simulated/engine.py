"""``SimulatedEngine``: a durable, on-disk stand-in for one SQL Server instance.

The agent calls it through the ``Engine`` Protocol (``engines.base``) wherever no SQL
Server exists (the demo, the tests); test and demo code also use its controls
(``create_database``, ``set_recovery_model``, ``out_of_band_backup``, ``commit``,
``rows_as_of`` ...).  It is never presented as SQL Server: ``version()`` says so.

Backup semantics follow SQL Server (DESIGN.md section 4): per-database LSNs; a full
takes a checkpoint, copies the data, then the log written meanwhile; a differential
holds what changed since the last non-copy-only full; a log backup holds the log since
the previous log backup and truncates it (copy-only: no truncation); log backups need
a log chain, which a full or differential starts and a switch to SIMPLE breaks.
Backups of one database are serialised within the process.  Restores live in
``restore``.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlharbor.domain.backupset import (
    BackupRecord,
    BackupRequest,
    BackupType,
    DatabaseInfo,
    DatabaseState,
    RecoveryModel,
)
from sqlharbor.errors import EngineError, ErrorCode
from sqlharbor_agent.engines.base import (
    PermissionCheck,
    ProgressCallback,
    RestoreOptions,
    RestoreStep,
    Sink,
    StopAt,
)
from sqlharbor_agent.engines.simulated import tables
from sqlharbor_agent.engines.simulated.restore import RestoreRun
from sqlharbor_agent.engines.simulated.store import Store, instance_file
from sqlharbor_agent.engines.simulated.stream import OP_DELETE, OP_PUT, StreamWriter
from sqlharbor_agent.engines.simulated.tables import (
    Clock,
    DatabaseRow,
    from_us,
    load_database,
    next_event_us,
    to_us,
    utc_now,
)

DEFAULT_LOGIN = "NT SERVICE\\SQLHarborAgent"
VERSION = "sqlharbor simulated engine 1.0 (a stand-in with SQL Server backup semantics)"


@dataclass(frozen=True)
class Operation:
    """One change in a transaction: put ``payload`` at ``key``, or delete it (payload None)."""

    key: int
    payload: bytes | None


@dataclass(frozen=True)
class Commit:
    """A committed transaction: its LSN and commit time (microsecond precision)."""

    database_name: str
    lsn: int
    commit_time: datetime


@dataclass(frozen=True)
class _Started:
    """What the first phase of a backup fixed (checkpoint / log range, times)."""

    db: DatabaseRow
    request: BackupRequest
    start_us: int
    checkpoint_lsn: int
    first_lsn: int
    database_backup_lsn: int
    differential_base_lsn: int | None
    log_end: tuple[int, int] | None  # (last_lsn, finish_us), fixed up front for logs


class _DiscardSink:
    def write(self, data: bytes | memoryview, /) -> int:
        return len(data)


class SimulatedEngine:
    """One simulated instance, stored in ``<root_dir>/<instance_name>.sqlite3``."""

    def __init__(
        self,
        root_dir: Path,
        instance_name: str,
        *,
        clock: Clock = utc_now,
        login: str = DEFAULT_LOGIN,
    ) -> None:
        self._name = instance_name
        self._clock = clock
        self._login = login
        self._store = Store(instance_file(root_dir, instance_name))
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- the Engine Protocol ---------------------------------------------------------

    @property
    def instance_name(self) -> str:
        return self._name

    def version(self) -> str:
        return VERSION

    def discover(self) -> Sequence[DatabaseInfo]:
        with self._store.read() as con:
            return [self._info(con, name) for name in tables.all_database_names(con)]

    def check_permissions(self) -> PermissionCheck:
        if self._is_sysadmin():
            return PermissionCheck(ok=True, login=self._login, message="sysadmin: yes")
        return PermissionCheck(
            ok=False,
            login=self._login,
            message=f"Login '{self._login}' is not a member of the sysadmin server role.",
            code=ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP,
            remediation_tsql=f"ALTER SERVER ROLE [sysadmin] ADD MEMBER [{self._login}];",
        )

    def backup(
        self,
        request: BackupRequest,
        sink: Sink,
        progress: ProgressCallback | None = None,
    ) -> BackupRecord:
        self._require_sysadmin()
        return self._backup(request, sink, progress, out_of_band=False)

    def history(self, database_name: str, since: datetime | None = None) -> Sequence[BackupRecord]:
        since_us = None if since is None else to_us(since)
        with self._store.read() as con:
            return tables.select_records(con, database_name, since_us)

    def restore(
        self,
        options: RestoreOptions,
        steps: Iterable[RestoreStep],
        stop: StopAt | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self._require_sysadmin()
        RestoreRun(self._store, self._clock, options, stop, progress).run(steps)

    # -- test and demo controls ------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._store.path

    def close(self) -> None:
        self._store.close()

    def create_database(
        self,
        name: str,
        recovery_model: RecoveryModel = RecoveryModel.FULL,
        *,
        read_only: bool = False,
        is_system: bool = False,
    ) -> DatabaseInfo:
        with self._store.write() as con:
            if tables.find_database(con, name) is not None:
                raise EngineError(
                    f"Database '{name}' already exists.", code=ErrorCode.DATABASE_ALREADY_EXISTS
                )
            self._insert_database(con, name, recovery_model, read_only, is_system)
            return self._info(con, name)

    def ensure_database(
        self,
        name: str,
        recovery_model: RecoveryModel = RecoveryModel.FULL,
        *,
        is_system: bool = False,
    ) -> DatabaseInfo:
        """Create the database if it is missing (idempotent); an existing one is left alone."""
        with self._store.write() as con:
            if tables.find_database(con, name) is None:
                self._insert_database(con, name, recovery_model, False, is_system)
            return self._info(con, name)

    def drop_database(self, name: str) -> None:
        with self._store.write() as con:
            db = load_database(con, name)
            con.execute("DELETE FROM rows WHERE guid = ?", (db.guid,))
            con.execute("DELETE FROM journal WHERE guid = ?", (db.guid,))
            con.execute("DELETE FROM databases WHERE name = ?", (name,))

    def database(self, name: str) -> DatabaseInfo:
        with self._store.read() as con:
            return self._info(con, name)

    def set_recovery_model(self, name: str, model: RecoveryModel) -> None:
        """ALTER DATABASE ... SET RECOVERY: a switch to SIMPLE breaks the log chain."""
        with self._store.write() as con:
            load_database(con, name)
            chain = "NULL" if model is RecoveryModel.SIMPLE else "last_log_backup_lsn"
            con.execute(
                f"UPDATE databases SET recovery_model = ?, last_log_backup_lsn = {chain} "
                "WHERE name = ?",
                (model.value, name),
            )

    def set_read_only(self, name: str, read_only: bool) -> None:
        with self._store.write() as con:
            load_database(con, name)
            con.execute("UPDATE databases SET read_only = ? WHERE name = ?", (int(read_only), name))

    def set_sysadmin(self, sysadmin: bool) -> None:
        """Grant or revoke the agent login's sysadmin membership (persisted)."""
        with self._store.write() as con:
            con.execute(
                "INSERT INTO meta (key, value) VALUES ('sysadmin', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                ("1" if sysadmin else "0",),
            )

    def out_of_band_backup(
        self, name: str, backup_type: BackupType, copy_only: bool = False
    ) -> BackupRecord:
        """Another tool's backup: recorded in history with the same effects, data discarded."""
        request = BackupRequest(name, backup_type, copy_only)
        return self._backup(request, _DiscardSink(), None, out_of_band=True)

    def commit(self, name: str, operations: Sequence[Operation]) -> Commit:
        """Commit one transaction (all operations share one LSN and commit time)."""
        with self._store.write() as con:
            db = load_database(con, name)
            if db.state is not DatabaseState.ONLINE:
                raise _not_online(db)
            if db.read_only:
                raise EngineError(
                    f"Database '{name}' is read-only.", code=ErrorCode.DATABASE_READ_ONLY
                )
            commit_us = next_event_us(db, self._clock)
            _apply_commit(con, db.guid, db.next_lsn, commit_us, operations)
            con.execute(
                "UPDATE databases SET next_lsn = ?, last_event_us = ? WHERE name = ?",
                (db.next_lsn + 1, commit_us, name),
            )
            return Commit(name, db.next_lsn, from_us(commit_us))

    def rows(self, name: str) -> dict[int, bytes]:
        """The database's current content."""
        with self._store.read() as con:
            db = load_database(con, name)
            return dict(con.execute("SELECT k, payload FROM rows WHERE guid = ?", (db.guid,)))

    def rows_as_of(
        self, name: str, *, time: datetime | None = None, lsn: int | None = None
    ) -> dict[int, bytes]:
        """The content as of a moment: every transaction committed at or before ``time``
        (or with an LSN at or before ``lsn``), replayed from the never-truncated journal."""
        if (time is None) == (lsn is None):
            raise ValueError("rows_as_of needs exactly one of time or lsn")
        column, bound = ("commit_us", to_us(time)) if time is not None else ("lsn", lsn)
        content: dict[int, bytes] = {}
        with self._store.read() as con:
            db = load_database(con, name)
            cursor = con.execute(
                f"SELECT op, k, payload FROM journal WHERE guid = ? AND {column} <= ? "
                "ORDER BY lsn, seq",
                (db.guid, bound),
            )
            for op, key, payload in cursor:
                if op == OP_PUT:
                    content[key] = payload
                else:
                    content.pop(key, None)
        return content

    # -- backup internals -------------------------------------------------------------

    def _backup(
        self,
        request: BackupRequest,
        sink: Sink,
        progress: ProgressCallback | None,
        *,
        out_of_band: bool,
    ) -> BackupRecord:
        with self._backup_lock(request.database_name):
            started = self._start(request)
            writer = StreamWriter(sink, progress)
            writer.header(_header(self._name, started))
            if started.log_end is not None:
                last_lsn, finish_us = started.log_end
                self._stream_log(writer, started.db.guid, started.first_lsn, last_lsn)
            else:
                last_lsn, finish_us = self._stream_data(writer, started)
            writer.finish({"last_lsn": last_lsn, "finish_us": finish_us})
            return self._finish(started, last_lsn, finish_us, writer.bytes_written, out_of_band)

    def _start(self, request: BackupRequest) -> _Started:
        with self._store.write() as con:
            db = load_database(con, request.database_name)
            _validate(db, request)
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
        return _Started(
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

    def _stream_data(self, writer: StreamWriter, started: _Started) -> tuple[int, int]:
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
                    _CHANGED_SINCE, (guid, started.differential_base_lsn, snapshot_lsn, guid)
                ):
                    if payload is None:
                        writer.delete(key)
                    else:
                        writer.row(key, payload)
        with self._store.write() as con:
            db = self._reload(con, started)
            last_lsn, finish_us = db.next_lsn, next_event_us(db, self._clock)
            con.execute("UPDATE databases SET last_event_us = ? WHERE guid = ?", (finish_us, guid))
        self._stream_log(writer, guid, snapshot_lsn, last_lsn)
        return last_lsn, finish_us

    def _stream_log(self, writer: StreamWriter, guid: str, first: int, last: int) -> None:
        with self._store.read() as con:
            for lsn, commit_us, op, key, payload in con.execute(
                "SELECT lsn, commit_us, op, k, payload FROM journal "
                "WHERE guid = ? AND lsn >= ? AND lsn < ? ORDER BY lsn, seq",
                (guid, first, last),
            ):
                writer.op(lsn, commit_us, op, key, payload)

    def _finish(
        self, started: _Started, last_lsn: int, finish_us: int, size: int, out_of_band: bool
    ) -> BackupRecord:
        request = started.request
        with self._store.write() as con:
            db = self._reload(con, started)
            _validate(db, request)
            begins_chain = False
            kind = request.backup_type
            if kind is BackupType.LOG and not request.copy_only:
                if db.last_log_backup_lsn != started.first_lsn:
                    raise EngineError(
                        "Another log backup completed meanwhile; the log chain moved.",
                        code=ErrorCode.SQL_LSN_VALIDATION_FAILURE,
                    )
                _set(con, db.guid, last_log_backup_lsn=last_lsn)
            if kind is BackupType.FULL and not request.copy_only:
                _set(
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
                _set(con, db.guid, last_log_backup_lsn=started.checkpoint_lsn)
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

    def _reload(self, con: sqlite3.Connection, started: _Started) -> DatabaseRow:
        db = tables.find_database(con, started.db.name)
        if db is None or db.guid != started.db.guid:
            raise EngineError(
                f"Database '{started.db.name}' was dropped or replaced during the backup.",
                code=ErrorCode.SQL_PO_DOES_NOT_EXIST,
            )
        return db

    @contextmanager
    def _backup_lock(self, name: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(name.lower(), threading.Lock())
        with lock:
            yield

    # -- helpers ------------------------------------------------------------------------

    def _insert_database(
        self,
        con: sqlite3.Connection,
        name: str,
        model: RecoveryModel,
        read_only: bool,
        is_system: bool,
    ) -> None:
        con.execute(
            "INSERT INTO databases (name, guid, recovery_model, state, read_only, is_system, "
            "next_lsn, last_event_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                str(uuid.uuid4()).upper(),
                model.value,
                DatabaseState.ONLINE.value,
                int(read_only),
                int(is_system),
                tables.FIRST_LSN,
                to_us(self._clock()),
            ),
        )

    def _info(self, con: sqlite3.Connection, name: str) -> DatabaseInfo:
        db = load_database(con, name)
        (size,) = con.execute(
            "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM rows WHERE guid = ?", (db.guid,)
        ).fetchone()
        return DatabaseInfo(
            name=db.name,
            database_guid=db.guid,
            recovery_model=db.recovery_model,
            state=db.state,
            size_bytes=int(size),
            read_only=db.read_only,
            is_system=db.is_system,
        )

    def _is_sysadmin(self) -> bool:
        with self._store.read() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'sysadmin'").fetchone()
        return row is None or row[0] == "1"

    def _require_sysadmin(self) -> None:
        check = self.check_permissions()
        if not check.ok:
            raise EngineError(
                check.message,
                code=ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP,
                remediation=check.remediation_tsql,
            )


_CHANGED_SINCE = (
    "SELECT j.k, r.payload FROM (SELECT DISTINCT k FROM journal "
    "WHERE guid = ? AND lsn >= ? AND lsn < ?) AS j "
    "LEFT JOIN rows AS r ON r.guid = ? AND r.k = j.k ORDER BY j.k"
)


def _validate(db: DatabaseRow, request: BackupRequest) -> None:
    """SQL Server's refusals, in the order it checks them."""
    if db.state is not DatabaseState.ONLINE:
        raise _not_online(db)
    kind = request.backup_type
    if kind is not BackupType.FULL and db.is_master:
        raise EngineError(
            f"Only full backups of the master database are possible ({kind.value} requested).",
            code=ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE,
            remediation="Back up master with full backups only.",
        )
    if kind is BackupType.LOG and db.recovery_model is RecoveryModel.SIMPLE:
        raise EngineError(
            f"The statement BACKUP LOG is not allowed while the recovery model of "
            f"'{db.name}' is SIMPLE.",
            code=ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE,
            remediation="Use the FULL recovery model, or take full/differential backups only.",
        )
    if kind is BackupType.LOG and db.last_log_backup_lsn is None:
        raise EngineError(
            f"BACKUP LOG cannot be performed because there is no current database backup "
            f"of '{db.name}' (no log chain: take a full or differential first).",
            code=ErrorCode.PARENT_FULL_BACKUP_MISSING,
            remediation="Take a full backup.",
        )
    if kind is BackupType.DIFFERENTIAL and db.diff_base_lsn is None:
        raise EngineError(
            f"Cannot perform a differential backup of '{db.name}': no full backup exists "
            "to base it on.",
            code=ErrorCode.PARENT_FULL_BACKUP_MISSING,
            remediation="Take a full backup.",
        )


def _not_online(db: DatabaseRow) -> EngineError:
    return EngineError(
        f"Database '{db.name}' is {db.state.value}, not ONLINE.",
        code=ErrorCode.DATABASE_NOT_ONLINE,
        remediation="Bring the database online (finish or redo its restore).",
    )


def _apply_commit(
    con: sqlite3.Connection, guid: str, lsn: int, commit_us: int, operations: Sequence[Operation]
) -> None:
    con.executemany(
        "INSERT INTO journal (guid, lsn, seq, commit_us, op, k, payload) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                guid,
                lsn,
                seq,
                commit_us,
                OP_PUT if o.payload is not None else OP_DELETE,
                o.key,
                o.payload,
            )
            for seq, o in enumerate(operations)
        ],
    )
    for o in operations:
        if o.payload is None:
            con.execute("DELETE FROM rows WHERE guid = ? AND k = ?", (guid, o.key))
        else:
            con.execute(
                "INSERT INTO rows (guid, k, payload) VALUES (?, ?, ?) "
                "ON CONFLICT (guid, k) DO UPDATE SET payload = excluded.payload",
                (guid, o.key, o.payload),
            )


def _set(con: sqlite3.Connection, guid: str, **columns: int | None) -> None:
    assignments = ", ".join(f"{name} = ?" for name in columns)
    con.execute(f"UPDATE databases SET {assignments} WHERE guid = ?", (*columns.values(), guid))


def _header(instance: str, started: _Started) -> dict[str, object]:
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


def open_simulated_engine(
    root_dir: Path, instance_name: str, *, clock: Clock = utc_now
) -> SimulatedEngine:
    """The agent's constructor: one instance file under ``root_dir`` (created if missing)."""
    return SimulatedEngine(root_dir, instance_name, clock=clock)
