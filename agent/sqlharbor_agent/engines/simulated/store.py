"""The simulated instance's on-disk store: one SQLite file per instance.

Used only by the simulated engine (``engine``, ``restore``) and its workload.  The file
survives process restarts and is shared safely by several threads (one connection per
thread) and by several processes (WAL journal, a busy timeout, ``BEGIN IMMEDIATE`` for
every write), so an agent can back up while a workload process commits.

Tables mirror what SQL Server keeps: ``databases`` (sys.databases plus the LSN and fork
state of sys.database_recovery_status), ``forks`` (each database's recovery forks: where
a fork left its parent), ``rows`` (the data pages), ``journal`` (the transaction log of
every fork; truncation is logical, so the journal doubles as the truth a restore is
checked against), ``backupset`` and ``backupmediafamily`` (msdb's, with server-local
times and their ``time_zone``).  Files written before forks, time zones and the
differential base's backup set existed are brought up to date when opened
(``PRAGMA user_version``).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS databases (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    guid TEXT NOT NULL UNIQUE,
    recovery_model TEXT NOT NULL,
    state TEXT NOT NULL,
    read_only INTEGER NOT NULL DEFAULT 0,
    is_system INTEGER NOT NULL DEFAULT 0,
    next_lsn INTEGER NOT NULL,
    last_event_us INTEGER NOT NULL,
    diff_base_lsn INTEGER,
    full_checkpoint_lsn INTEGER,
    last_log_backup_lsn INTEGER,
    fork_guid TEXT NOT NULL DEFAULT '',
    diff_base_guid TEXT
);
CREATE TABLE IF NOT EXISTS forks (
    guid TEXT NOT NULL, fork TEXT NOT NULL, parent TEXT, fork_point_lsn INTEGER NOT NULL,
    created_us INTEGER NOT NULL, PRIMARY KEY (guid, fork)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rows (
    guid TEXT NOT NULL, k INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (guid, k)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    guid TEXT NOT NULL, fork TEXT NOT NULL, lsn INTEGER NOT NULL, seq INTEGER NOT NULL,
    commit_us INTEGER NOT NULL, op INTEGER NOT NULL, k INTEGER NOT NULL, payload BLOB,
    PRIMARY KEY (guid, fork, lsn, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS journal_by_time ON journal (guid, commit_us);
CREATE TABLE IF NOT EXISTS backupset (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    backup_set_id TEXT NOT NULL UNIQUE,
    database_name TEXT NOT NULL COLLATE NOCASE,
    database_guid TEXT NOT NULL,
    backup_type TEXT NOT NULL,
    is_copy_only INTEGER NOT NULL,
    first_lsn INTEGER NOT NULL,
    last_lsn INTEGER NOT NULL,
    checkpoint_lsn INTEGER NOT NULL,
    database_backup_lsn INTEGER NOT NULL,
    differential_base_lsn INTEGER,
    start_local_us INTEGER NOT NULL,
    finish_local_us INTEGER NOT NULL,
    time_zone INTEGER NOT NULL DEFAULT 0,
    recovery_model TEXT NOT NULL,
    begins_log_chain INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    out_of_band INTEGER NOT NULL,
    first_recovery_fork_guid TEXT NOT NULL DEFAULT '',
    last_recovery_fork_guid TEXT NOT NULL DEFAULT '',
    fork_point_lsn INTEGER,
    server_name TEXT NOT NULL DEFAULT '',
    media_set_id TEXT NOT NULL DEFAULT '',
    position INTEGER NOT NULL DEFAULT 1,
    differential_base_guid TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS backupset_by_name ON backupset (database_name, finish_local_us);
CREATE TABLE IF NOT EXISTS backupmediafamily (
    media_set_id TEXT NOT NULL, family_sequence_number INTEGER NOT NULL,
    mirror INTEGER NOT NULL, physical_device_name TEXT NOT NULL, device_type TEXT NOT NULL,
    PRIMARY KEY (media_set_id, family_sequence_number, mirror)
) WITHOUT ROWID;
"""

#: ``PRAGMA user_version`` of the layout above; files of version 0 predate forks and
#: server-local history times and are migrated by ``_migrate_from_v0``, files of version 2
#: predate ``backupset.differential_base_guid`` (``_migrate_from_v2``).
SCHEMA_VERSION = 3

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def instance_file(root_dir: Path, instance_name: str) -> Path:
    """The SQLite file that holds one simulated instance."""
    return root_dir / f"{_UNSAFE.sub('_', instance_name)}.sqlite3"


class Store:
    """Thread-safe access to one instance file: a connection per thread, explicit transactions."""

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.write() as con:
            _migrate(con)

    @property
    def path(self) -> Path:
        return self._path

    def _connection(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, else rolled back."""
        con = self._connection()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot while writers carry on (WAL)."""
        con = self._connection()
        con.execute("BEGIN")
        try:
            yield con
        finally:
            con.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this store opened (call once no thread uses it)."""
        with self._lock:
            connections, self._all = self._all, []
        for con in connections:
            con.close()
        self._local = threading.local()


def _migrate(con: sqlite3.Connection) -> None:
    """Create the tables, or bring a file of an older layout up to date (in one transaction)."""
    (version,) = con.execute("PRAGMA user_version").fetchone()
    if version >= SCHEMA_VERSION:
        return
    existing = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
    old = "databases" in existing
    if old and version < 2:
        _migrate_from_v0(con)
    if old:
        _migrate_from_v2(con)
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            con.execute(statement)
    if old and version < 2:
        _give_every_database_a_fork(con)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _migrate_from_v0(con: sqlite3.Connection) -> None:
    """Version 0: no forks, one journal per GUID, UTC history times, no media."""
    con.execute("ALTER TABLE databases ADD COLUMN fork_guid TEXT NOT NULL DEFAULT ''")
    con.execute("ALTER TABLE databases ADD COLUMN diff_base_guid TEXT")
    con.execute("ALTER TABLE journal RENAME TO journal_v0")
    con.execute("DROP INDEX IF EXISTS journal_by_time")
    con.execute("DROP INDEX IF EXISTS backupset_by_name")
    con.execute("ALTER TABLE backupset RENAME COLUMN start_us TO start_local_us")
    con.execute("ALTER TABLE backupset RENAME COLUMN finish_us TO finish_local_us")
    for column in (
        "time_zone INTEGER NOT NULL DEFAULT 0",  # version 0 kept UTC: offset 0 is exact
        "first_recovery_fork_guid TEXT NOT NULL DEFAULT ''",
        "last_recovery_fork_guid TEXT NOT NULL DEFAULT ''",
        "fork_point_lsn INTEGER",
        "server_name TEXT NOT NULL DEFAULT ''",
        "media_set_id TEXT NOT NULL DEFAULT ''",
        "position INTEGER NOT NULL DEFAULT 1",
    ):
        con.execute(f"ALTER TABLE backupset ADD COLUMN {column}")


def _migrate_from_v2(con: sqlite3.Connection) -> None:
    """Version 2: a differential's history row did not name its base full.  Its
    ``differential_base_guid`` stays "" (unknown): the chain rules pair it by LSN."""
    _add_missing_columns(con, "backupset", {"differential_base_guid": "TEXT NOT NULL DEFAULT ''"})
    # files written while version 2 briefly lacked it (the base is then unknown too)
    _add_missing_columns(con, "databases", {"diff_base_guid": "TEXT"})


def _add_missing_columns(con: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    present = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
    for name, declaration in columns.items():
        if name not in present:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def _give_every_database_a_fork(con: sqlite3.Connection) -> None:
    """Each database of a version 0 file gets a root fork that holds its whole journal."""
    rows = con.execute("SELECT guid, last_event_us FROM databases WHERE fork_guid = ''")
    for guid, created_us in rows.fetchall():
        fork = str(uuid.uuid4()).upper()
        con.execute("UPDATE databases SET fork_guid = ? WHERE guid = ?", (fork, guid))
        con.execute(
            "INSERT INTO forks (guid, fork, parent, fork_point_lsn, created_us) "
            "VALUES (?, ?, NULL, 0, ?)",
            (guid, fork, created_us),
        )
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'journal_v0'").fetchone():
        con.execute(
            "INSERT INTO journal (guid, fork, lsn, seq, commit_us, op, k, payload) "
            "SELECT j.guid, d.fork_guid, j.lsn, j.seq, j.commit_us, j.op, j.k, j.payload "
            "FROM journal_v0 AS j JOIN databases AS d ON d.guid = j.guid"
        )
        con.execute("DROP TABLE journal_v0")
