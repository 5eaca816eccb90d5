"""The simulated instance's on-disk store: one SQLite file per instance.

Used only by the simulated engine (``engine``, ``restore``) and its workload.  The file
survives process restarts and is shared safely by several threads (one connection per
thread) and by several processes (WAL journal, a busy timeout, ``BEGIN IMMEDIATE`` for
every write), so an agent can back up while a workload process commits.

Tables mirror what SQL Server keeps: ``databases`` (sys.databases plus the LSN state of
sys.database_recovery_status), ``rows`` (the data pages), ``journal`` (the transaction
log; truncation is logical, so the journal doubles as the truth a restore is checked
against) and ``backupset`` (msdb.dbo.backupset).
"""

from __future__ import annotations

import re
import sqlite3
import threading
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
    last_log_backup_lsn INTEGER
);
CREATE TABLE IF NOT EXISTS rows (
    guid TEXT NOT NULL, k INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (guid, k)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    guid TEXT NOT NULL, lsn INTEGER NOT NULL, seq INTEGER NOT NULL,
    commit_us INTEGER NOT NULL, op INTEGER NOT NULL, k INTEGER NOT NULL, payload BLOB,
    PRIMARY KEY (guid, lsn, seq)
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
    start_us INTEGER NOT NULL,
    finish_us INTEGER NOT NULL,
    recovery_model TEXT NOT NULL,
    begins_log_chain INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    out_of_band INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS backupset_by_name ON backupset (database_name, finish_us);
"""

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
        self._connection().executescript(_SCHEMA)

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
