"""Transactions in a simulated database: ``commit`` (journal + current rows, one LSN per
transaction, on the database's current recovery fork) and the content they add up to,
now (``rows``) or as of a moment (``rows_as_of``, replayed from the never-truncated
journal along the fork's path: the truth restores are checked against).  Used by
``SimulatedEngine``'s controls and the workload.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlharbor.domain.backupset import DatabaseState
from sqlharbor.errors import EngineError, ErrorCode
from sqlharbor_agent.engines.simulated import forks
from sqlharbor_agent.engines.simulated.backup_rules import not_online
from sqlharbor_agent.engines.simulated.store import Store
from sqlharbor_agent.engines.simulated.stream import OP_DELETE, OP_PUT
from sqlharbor_agent.engines.simulated.tables import (
    Clock,
    from_us,
    load_database,
    next_event_us,
    to_us,
)


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


def commit(store: Store, clock: Clock, name: str, operations: Sequence[Operation]) -> Commit:
    """Commit one transaction (all operations share one LSN and commit time)."""
    with store.write() as con:
        db = load_database(con, name)
        if db.state is not DatabaseState.ONLINE:
            raise not_online(db)
        if db.read_only:
            raise EngineError(f"Database '{name}' is read-only.", code=ErrorCode.DATABASE_READ_ONLY)
        commit_us = next_event_us(db, clock)
        apply_commit(con, db.guid, db.fork_guid, db.next_lsn, commit_us, operations)
        con.execute(
            "UPDATE databases SET next_lsn = ?, last_event_us = ? WHERE name = ?",
            (db.next_lsn + 1, commit_us, name),
        )
        return Commit(name, db.next_lsn, from_us(commit_us))


def rows(store: Store, name: str) -> dict[int, bytes]:
    """The database's current content."""
    with store.read() as con:
        db = load_database(con, name)
        return dict(con.execute("SELECT k, payload FROM rows WHERE guid = ?", (db.guid,)))


def rows_as_of(
    store: Store,
    name: str,
    *,
    time: datetime | None = None,
    lsn: int | None = None,
    fork: str | None = None,
) -> dict[int, bytes]:
    """The content as of a moment: every transaction committed at or before ``time``
    (or with an LSN at or before ``lsn``), replayed from the never-truncated journal.

    History follows recovery forks: at ``time`` the database was on the fork current
    then (before an in-place restore: the old fork, with the transactions the restore
    later discarded); ``lsn`` is read along ``fork`` (default: the current fork)."""
    if (time is None) == (lsn is None):
        raise ValueError("rows_as_of needs exactly one of time or lsn")
    column, bound = ("commit_us", to_us(time)) if time is not None else ("lsn", lsn)
    content: dict[int, bytes] = {}
    with store.read() as con:
        db = load_database(con, name)
        if fork is None and time is not None:
            fork = forks.current_at(con, db.guid, to_us(time))
        on_path, params = forks.on_path(forks.path(con, db.guid, fork or db.fork_guid))
        cursor = con.execute(
            f"SELECT op, k, payload FROM journal WHERE guid = ? AND {column} <= ? "
            f"AND {on_path} ORDER BY lsn, seq",
            (db.guid, bound, *params),
        )
        for op, key, payload in cursor:
            if op == OP_PUT:
                content[key] = payload
            else:
                content.pop(key, None)
    return content


def apply_commit(
    con: sqlite3.Connection,
    guid: str,
    fork: str,
    lsn: int,
    commit_us: int,
    operations: Sequence[Operation],
) -> None:
    con.executemany(
        "INSERT INTO journal (guid, fork, lsn, seq, commit_us, op, k, payload) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                guid,
                fork,
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
