"""``SimulatedEngine``: a durable, on-disk stand-in for one SQL Server instance.

The agent calls it through the ``Engine`` Protocol (``engines.base``) wherever no SQL
Server exists (the demo, the tests); test and demo code also use its controls
(``create_database``, ``set_recovery_model``, ``out_of_band_backup``, ``commit``,
``rows_as_of`` ...).  It is never presented as SQL Server: ``version()`` says so.

Backup semantics follow SQL Server (DESIGN.md section 4): per-database LSNs; a full
takes a checkpoint, copies the data, then the log written meanwhile; a differential
holds what changed since the last non-copy-only full; a log backup holds the log since
the previous log backup and truncates it (copy-only: no truncation); log backups need
a log chain, which a full or differential starts and a switch to SIMPLE breaks; a log
backup of an idle database is empty.  Every database is on a recovery fork (``forks``);
history is msdb's, with server-local times in the instance's ``time_zone`` (``history``).
Backups of one database are serialised within the process.  Restores live in
``restore``.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
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
from sqlharbor_agent.engines.simulated import forks, history, tables, transactions
from sqlharbor_agent.engines.simulated.backup import BackupRun, header
from sqlharbor_agent.engines.simulated.history import Server
from sqlharbor_agent.engines.simulated.restore import RestoreRun
from sqlharbor_agent.engines.simulated.store import Store, instance_file
from sqlharbor_agent.engines.simulated.stream import StreamWriter
from sqlharbor_agent.engines.simulated.tables import (
    Clock,
    load_database,
    to_us,
    utc_now,
)
from sqlharbor_agent.engines.simulated.transactions import Commit, Operation

DEFAULT_LOGIN = "NT SERVICE\\SQLHarborAgent"
VERSION = "sqlharbor simulated engine 1.0 (a stand-in with SQL Server backup semantics)"


class _DiscardSink:
    def write(self, data: bytes | memoryview, /) -> int:
        return len(data)


class SimulatedEngine:
    """One simulated instance, stored in ``<root_dir>/<instance_name>.sqlite3``.

    ``time_zone`` is the server's offset from UTC in msdb's 15-minute units (4: UTC+1);
    history keeps server-local times with it and returns UTC, as msdb is read."""

    def __init__(
        self,
        root_dir: Path,
        instance_name: str,
        *,
        clock: Clock = utc_now,
        login: str = DEFAULT_LOGIN,
        time_zone: int = 0,
    ) -> None:
        self._name = instance_name
        self._server = Server(instance_name, time_zone)
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
            return history.select_records(con, database_name, since_us)

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

    @property
    def time_zone(self) -> int:
        """msdb's ``time_zone`` of this server (15-minute units from UTC)."""
        return self._server.time_zone

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
            forks.delete_all(con, db.guid)
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

    def commit(self, name: str, operations: Sequence[Operation]) -> Commit:
        """Commit one transaction (all operations share one LSN and commit time)."""
        return transactions.commit(self._store, self._clock, name, operations)

    def rows(self, name: str) -> dict[int, bytes]:
        """The database's current content."""
        return transactions.rows(self._store, name)

    def rows_as_of(
        self,
        name: str,
        *,
        time: datetime | None = None,
        lsn: int | None = None,
        fork: str | None = None,
    ) -> dict[int, bytes]:
        """The content as of a moment (see ``transactions.rows_as_of``)."""
        return transactions.rows_as_of(self._store, name, time=time, lsn=lsn, fork=fork)

    def out_of_band_backup(
        self, name: str, backup_type: BackupType, copy_only: bool = False, stripes: int = 1
    ) -> BackupRecord:
        """Another tool's backup to disk (``stripes`` files): recorded in history with the
        same effects as ours (a copy-only one has none), data discarded."""
        request = BackupRequest(name, backup_type, copy_only)
        return self._backup(request, _DiscardSink(), None, out_of_band=True, stripes=stripes)

    # -- backup internals -------------------------------------------------------------

    def _backup(
        self,
        request: BackupRequest,
        sink: Sink,
        progress: ProgressCallback | None,
        *,
        out_of_band: bool,
        stripes: int = 1,
    ) -> BackupRecord:
        with self._backup_lock(request.database_name):
            run = BackupRun(self._store, self._clock, self._server)
            started = run.start(request)
            writer = StreamWriter(sink, progress)
            writer.header(header(self._name, started))
            if started.log_end is not None:
                last_lsn, finish_us = started.log_end
                run.stream_log(writer, started, started.first_lsn, last_lsn)
            else:
                last_lsn, finish_us = run.stream_data(writer, started)
            writer.finish({"last_lsn": last_lsn, "finish_us": finish_us})
            files = (
                history.disk_files(
                    self._server, started.db.name, request.backup_type, started.start_us, stripes
                )
                if out_of_band
                else history.virtual_device()
            )
            return run.finish(
                started,
                last_lsn,
                finish_us,
                writer.bytes_written,
                out_of_band=out_of_band,
                files=files,
            )

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
        guid, now_us = str(uuid.uuid4()).upper(), to_us(self._clock())
        con.execute(
            "INSERT INTO databases (name, guid, recovery_model, state, read_only, is_system, "
            "next_lsn, last_event_us, fork_guid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                guid,
                model.value,
                DatabaseState.ONLINE.value,
                int(read_only),
                int(is_system),
                tables.FIRST_LSN,
                now_us,
                forks.create(con, guid, now_us),
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
            recovery_fork_guid=db.fork_guid,
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


def open_simulated_engine(
    root_dir: Path, instance_name: str, *, clock: Clock = utc_now, time_zone: int = 0
) -> SimulatedEngine:
    """The agent's constructor: one instance file under ``root_dir`` (created if missing)."""
    return SimulatedEngine(root_dir, instance_name, clock=clock, time_zone=time_zone)
