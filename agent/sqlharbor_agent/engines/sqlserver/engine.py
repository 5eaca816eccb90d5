"""``SqlServerEngine``: the Engine Protocol for a real SQL Server, T-SQL plus VDI.

Built by the agent when its configuration says ``engine: sqlserver``
(``SqlServerEngine(SqlServerSettings.from_mapping(section))``); called by the job runner.
Catalog work (msdb and the system views) goes through ``msdb``; every BACKUP / RESTORE
runs on its own connection on the VDI session's T-SQL thread, while the device threads
move the bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlharbor.domain.backupset import BackupRecord, BackupRequest, BackupType, DatabaseInfo
from sqlharbor.errors import EngineError, ErrorCode

from ..base import PermissionCheck, ProgressCallback, RestoreOptions, RestoreStep, Sink, StopAt
from . import msdb
from .connection import Connection, ConnectionFactory, Cursor, connect_pyodbc, execute_drained
from .settings import SqlServerSettings
from .tsql import (
    FileMove,
    StopClause,
    backup_statement,
    restore_statement,
    to_server_local,
)
from .vdi import default_backend
from .vdi.abi import Backend
from .vdi.loop import VdiSession

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


class SqlServerEngine:
    """One SQL Server instance through pyodbc and VDI."""

    def __init__(
        self,
        settings: SqlServerSettings,
        *,
        connect: ConnectionFactory | None = None,
        vdi_backend: Callable[[], Backend] | None = None,
    ) -> None:
        self._settings = settings
        self._connect = connect or (lambda: connect_pyodbc(settings.connection))
        self._backend_factory = vdi_backend or (
            lambda: default_backend(settings.vdi_library, settings.connection.instance)
        )
        self._backend: Backend | None = None

    @property
    def instance_name(self) -> str:
        return self._settings.instance_name

    @contextmanager
    def _cursor(self) -> Iterator[tuple[Connection, Cursor]]:
        connection = self._connect()
        try:
            cursor = connection.cursor()
            try:
                yield connection, cursor
            finally:
                cursor.close()
        finally:
            connection.close()

    def _session(self) -> VdiSession:
        if self._backend is None:
            self._backend = self._backend_factory()
        return VdiSession(self._backend, self._settings.timeouts)

    def version(self) -> str:
        with self._cursor() as (_, cursor):
            return msdb.version(cursor)

    def discover(self) -> Sequence[DatabaseInfo]:
        with self._cursor() as (_, cursor):
            return msdb.discover(cursor)

    def check_permissions(self) -> PermissionCheck:
        with self._cursor() as (_, cursor):
            return msdb.check_permissions(cursor)

    def history(self, database_name: str, since: datetime | None = None) -> Sequence[BackupRecord]:
        with self._cursor() as (_, cursor):
            return msdb.history(cursor, database_name, since)

    def backup(
        self,
        request: BackupRequest,
        sink: Sink,
        progress: ProgressCallback | None = None,
    ) -> BackupRecord:
        geometry = self._settings.geometry
        used: list[str] = []
        with self._cursor() as (_, cursor):

            def run(names: Sequence[str]) -> None:
                used.extend(names)
                execute_drained(
                    cursor,
                    backup_statement(
                        request.database_name,
                        request.backup_type,
                        names,
                        geometry,
                        copy_only=request.copy_only,
                    ),
                )

            self._session().backup(run, [sink], progress, cancel=cursor.cancel)
        with self._cursor() as (_, cursor):
            record = msdb.backup_by_device(cursor, used[0])
        if record is None:
            raise EngineError(
                f"the backup of {request.database_name!r} succeeded but msdb has no record of "
                "its device",
                code=ErrorCode.SQL_SERVER_BACKUP_HISTORY_MISSING,
            )
        return record

    def restore(
        self,
        options: RestoreOptions,
        steps: Iterable[RestoreStep],
        stop: StopAt | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        ordered = list(steps)
        if not ordered:
            raise EngineError("a restore needs at least one backup", code=ErrorCode.RESTORE_EMPTY)
        with self._cursor() as (_, cursor):
            moves = self._moves(cursor, options, ordered[0].record)
            clause = self._stop_clause(cursor, stop)
        for index, step in enumerate(ordered):
            self._restore_one(options, step, moves, clause, index == len(ordered) - 1, progress)
        with self._cursor() as (_, cursor):
            state = msdb.state_of(cursor, options.target_database)
        if state != "ONLINE":
            raise EngineError(
                f"{options.target_database!r} is {state or 'missing'} after the restore: the "
                "stop point lies beyond the last log backup applied",
                code=ErrorCode.RESTORE_STOP_POINT_OUTSIDE_BACKUPS,
                remediation="Pick a point inside the recovery window, or add the later logs.",
            )

    def _restore_one(
        self,
        options: RestoreOptions,
        step: RestoreStep,
        moves: Sequence[FileMove],
        clause: StopClause | None,
        last: bool,
        progress: ProgressCallback | None,
    ) -> None:
        is_log = step.record.backup_type is BackupType.LOG
        with self._cursor() as (_, cursor):

            def run(names: Sequence[str]) -> None:
                execute_drained(
                    cursor,
                    restore_statement(
                        options.target_database,
                        step.record.backup_type,
                        names,
                        self._settings.geometry,
                        recovery=last,
                        replace=options.replace,
                        moves=moves,
                        stop=clause if is_log else None,
                    ),
                )

            self._session().restore(run, [step.source], progress, cancel=cursor.cancel)

    def _stop_clause(self, cursor: Cursor, stop: StopAt | None) -> StopClause | None:
        if stop is None:
            return None
        if stop.lsn is not None:
            return StopClause(lsn=stop.lsn)
        assert stop.time is not None
        offset = msdb.offset_minutes_at(cursor, stop.time)
        return StopClause(local_time=to_server_local(stop.time, offset))

    def _moves(
        self, cursor: Cursor, options: RestoreOptions, first: BackupRecord
    ) -> list[FileMove]:
        """``MOVE`` clauses: none when restoring over the source name without relocation;
        otherwise every file goes to the asked (or instance default) directory, named
        after the target.  Logical names come from the source's ``sys.master_files`` or
        msdb's ``backupfile`` (RESTORE FILELISTONLY would consume the one-shot stream)."""
        relocation = options.relocation
        wants_relocation = relocation.data_dir is not None or relocation.log_dir is not None
        if options.target_database == first.database_name and not wants_relocation:
            return []
        files = msdb.database_files(cursor, first.database_name)
        if not files:
            if wants_relocation:
                raise EngineError(
                    f"the logical file names of {first.database_name!r} are unknown here",
                    code=ErrorCode.RESTORE_FILE_LAYOUT_UNKNOWN,
                    remediation="Restore on the source instance, or without relocation.",
                )
            return []
        default_data, default_log = msdb.default_paths(cursor)
        data_dir = relocation.data_dir or default_data
        log_dir = relocation.log_dir or default_log
        stem = _UNSAFE_FILE_CHARS.sub("_", options.target_database)
        return [
            FileMove(
                f.logical_name,
                _join(log_dir if f.is_log else data_dir, f"{stem}_{f.logical_name}", f),
            )
            for f in files
        ]


def open_sqlserver_engine(section: Mapping[str, Any], instance_name: str) -> SqlServerEngine:
    """The agent's constructor: the config's ``sqlserver:`` section, under ``instance_name``."""
    return SqlServerEngine(
        SqlServerSettings.from_mapping({**section, "instance_name": instance_name})
    )


def _join(directory: str, stem: str, file: msdb.DatabaseFile) -> str:
    separator = "\\" if "\\" in directory else "/"
    extension = ""
    name = file.physical_name.replace("\\", "/").rsplit("/", 1)[-1]
    if "." in name:
        extension = "." + name.rsplit(".", 1)[-1]
    safe = _UNSAFE_FILE_CHARS.sub("_", stem)
    return directory.rstrip("\\/") + separator + safe + extension
