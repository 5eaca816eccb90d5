"""Test doubles for the T-SQL layer: a recording cursor with scripted results and errors.

``FakeOdbcError`` mimics a pyodbc error: ``args == (sqlstate, message)`` with native error
numbers in parentheses, as the Microsoft ODBC driver formats them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class FakeOdbcError(Exception):
    """Shaped like ``pyodbc.Error``."""


def sql_error(number: int, text: str, sqlstate: str = "42000") -> FakeOdbcError:
    return FakeOdbcError(
        sqlstate,
        f"[{sqlstate}] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]{text} ({number}) "
        "(SQLExecDirectW)",
    )


Result = list[dict[str, Any]]
Handler = Callable[[str, tuple[Any, ...]], Result | None]


@dataclass
class FakeServer:
    """What the fake cursors answer: handlers tried in order, each may return rows or raise."""

    handlers: list[Handler] = field(default_factory=list)
    executed: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Raised from the first ``nextset()`` after an execute whose text starts with the key.
    late_errors: dict[str, Exception] = field(default_factory=dict)

    def on(self, needle: str, rows: Result | Callable[[tuple[Any, ...]], Result]) -> None:
        def handler(sql: str, params: tuple[Any, ...]) -> Result | None:
            if needle not in sql:
                return None
            return rows(params) if callable(rows) else rows

        self.handlers.append(handler)

    def connect(self) -> FakeConnection:
        return FakeConnection(self)

    def statements(self, prefix: str = "") -> list[str]:
        with self.lock:
            return [s for s, _ in self.executed if s.startswith(prefix)]


class FakeCursor:
    def __init__(self, server: FakeServer) -> None:
        self._server = server
        self._rows: Result = []
        self._late: Exception | None = None
        self.description: Sequence[Sequence[Any]] | None = None
        self.cancelled = False

    def execute(self, sql: str, *params: Any) -> FakeCursor:
        with self._server.lock:
            self._server.executed.append((sql, params))
        self._late = next(
            (e for k, e in self._server.late_errors.items() if sql.startswith(k)), None
        )
        for handler in self._server.handlers:
            rows = handler(sql, params)
            if rows is not None:
                self._set(rows)
                return self
        self._set([])
        return self

    def _set(self, rows: Result) -> None:
        self._rows = rows
        self.description = [(k,) for k in rows[0]] if rows else [("dummy",)]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r.values()) for r in self._rows]

    def nextset(self) -> bool:
        if self._late is not None:
            late, self._late = self._late, None
            raise late
        return False

    def cancel(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        pass


class FakeConnection:
    def __init__(self, server: FakeServer) -> None:
        self._server = server
        self.closed = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self._server)

    def close(self) -> None:
        self.closed = True
