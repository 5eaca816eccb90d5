"""Recovery forks of a simulated database, as SQL Server keeps them.

Every database is on a recovery fork (``sys.database_recovery_status.recovery_fork_guid``).
A new database, or a restore into a database that does not exist yet (new GUID), starts
a root fork.  A restore over the database the backups came from (same GUID) keeps the
GUID and starts a child fork at the restored position + 1: every LSN below that
``fork_point_lsn`` is shared with the parent, the parent's later log is history that no
longer leads to the database.  LSNs repeat across forks, so the journal is keyed by fork
and read along a *path*: the fork's own LSNs from its fork point, its parent's below
that, and so on.  Used by ``backup`` (what a backup holds, the forks on its record),
``restore`` (new forks), ``transactions`` (commits, ``rows_as_of``) and ``engine``.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass

_NO_LSN = -1
_BEYOND = (1 << 63) - 1


@dataclass(frozen=True)
class Segment:
    """The LSNs ``[lo, hi)`` of a path that live on ``fork``."""

    fork: str
    lo: int
    hi: int


def new_guid() -> str:
    return str(uuid.uuid4()).upper()


def create(
    con: sqlite3.Connection,
    guid: str,
    created_us: int,
    *,
    parent: str | None = None,
    fork_point_lsn: int = 0,
) -> str:
    """Record a new fork of database ``guid`` (a root fork unless ``parent`` is given)."""
    fork = new_guid()
    con.execute(
        "INSERT INTO forks (guid, fork, parent, fork_point_lsn, created_us) VALUES (?, ?, ?, ?, ?)",
        (guid, fork, parent, fork_point_lsn if parent else 0, created_us),
    )
    return fork


def delete_all(con: sqlite3.Connection, guid: str) -> None:
    """Forget a database's forks and journal (it was dropped or replaced by another one)."""
    con.execute("DELETE FROM journal WHERE guid = ?", (guid,))
    con.execute("DELETE FROM forks WHERE guid = ?", (guid,))


def _parent(con: sqlite3.Connection, guid: str, fork: str) -> tuple[str | None, int]:
    row = con.execute(
        "SELECT parent, fork_point_lsn FROM forks WHERE guid = ? AND fork = ?", (guid, fork)
    ).fetchone()
    return (None, 0) if row is None else (row[0], row[1])


def log_forks(
    con: sqlite3.Connection, guid: str, fork: str, first_lsn: int
) -> tuple[str, str, int | None]:
    """(first fork, last fork, fork point) of a log backup starting at ``first_lsn`` on
    ``fork``: it spans the fork point when it starts at or before it (the first log
    backup after an in-place restore starts exactly there)."""
    parent, fork_point = _parent(con, guid, fork)
    if parent is not None and first_lsn <= fork_point:
        return parent, fork, fork_point
    return fork, fork, None


def path(con: sqlite3.Connection, guid: str, fork: str) -> list[Segment]:
    """The segments of ``fork``'s history, oldest (the root fork) first."""
    segments: list[Segment] = []
    current: str | None = fork
    hi = _BEYOND
    seen: set[str] = set()
    while current is not None and current not in seen:
        seen.add(current)
        parent, fork_point = _parent(con, guid, current)
        lo = fork_point if parent is not None else _NO_LSN
        segments.append(Segment(current, lo, hi))
        current, hi = parent, lo
    return segments[::-1]


def on_path(segments: list[Segment]) -> tuple[str, list[object]]:
    """A SQL condition on ``journal`` (columns ``fork``, ``lsn``) for entries on the path."""
    clause = " OR ".join("(fork = ? AND lsn >= ? AND lsn < ?)" for _ in segments)
    params: list[object] = []
    for segment in segments:
        params += [segment.fork, segment.lo, segment.hi]
    return f"({clause or '0'})", params


def current_at(con: sqlite3.Connection, guid: str, time_us: int) -> str | None:
    """The fork the database was on at ``time_us`` (its first fork before that)."""
    row = con.execute(
        "SELECT fork FROM forks WHERE guid = ? AND created_us <= ? "
        "ORDER BY created_us DESC LIMIT 1",
        (guid, time_us),
    ).fetchone()
    if row is None:
        row = con.execute(
            "SELECT fork FROM forks WHERE guid = ? ORDER BY created_us LIMIT 1", (guid,)
        ).fetchone()
    return None if row is None else str(row[0])
