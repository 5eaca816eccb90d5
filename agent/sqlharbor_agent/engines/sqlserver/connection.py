"""The narrow connection Protocol the plugin uses, pyodbc behind it, and SQL error mapping.

``engine`` and ``grant`` call :func:`connect_pyodbc` (the only place pyodbc is
imported, lazily: it is the optional ``sqlserver`` extra), :func:`execute_drained`
and :func:`map_sql_error`.  Tests pass a recording fake that satisfies :class:`Cursor`.

pyodbc rules that matter here: connections run in autocommit (BACKUP and RESTORE refuse
to run inside a transaction), and after BACKUP / RESTORE every result set must be
drained with ``nextset()`` or the errors SQL Server sends late are lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlharbor.errors import EngineError, ErrorCode, SqlHarborError, TemporaryError

from .settings import ConnectionSettings


class Cursor(Protocol):
    """The subset of a DB-API / pyodbc cursor the plugin uses."""

    @property
    def description(self) -> Sequence[Sequence[Any]] | None: ...

    def execute(self, sql: str, *params: Any) -> Any: ...

    def fetchall(self) -> Sequence[Sequence[Any]]: ...

    def nextset(self) -> bool | None: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class Connection(Protocol):
    def cursor(self) -> Cursor: ...

    def close(self) -> None: ...


ConnectionFactory = Callable[[], Connection]


def connect_pyodbc(settings: ConnectionSettings) -> Connection:
    """Open an autocommit pyodbc connection; errors become ``UserErrorOpeningSQLConnection``."""
    try:
        import pyodbc  # optional extra, imported only here
    except ImportError as exc:
        raise EngineError(
            "pyodbc is not installed",
            code=ErrorCode.OPENING_SQL_CONNECTION,
            remediation="pip install 'sqlharbor[sqlserver]' and the Microsoft ODBC driver.",
        ) from exc
    try:
        conn: Connection = pyodbc.connect(
            settings.odbc_connection_string(),
            autocommit=True,
            timeout=settings.login_timeout_s,
        )
    except pyodbc.Error as exc:
        raise map_sql_error(exc, context=f"connecting to {settings.server}") from None
    return conn


def rows_as_dicts(cursor: Cursor) -> list[dict[str, Any]]:
    """Fetch the current result set as dicts keyed by column name."""
    columns = [str(c[0]) for c in cursor.description or ()]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def query(cursor: Cursor, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Run one SELECT with parameters (never formatted into the text) and fetch it."""
    try:
        cursor.execute(sql, *params)
        return rows_as_dicts(cursor)
    except Exception as exc:
        raise map_sql_error(exc) from None


def execute_drained(cursor: Cursor, sql: str) -> None:
    """Execute BACKUP / RESTORE and drain every result set so late errors surface."""
    try:
        cursor.execute(sql)
        while cursor.nextset():
            pass
    except Exception as exc:
        raise map_sql_error(exc) from None


@dataclass(frozen=True)
class _Rule:
    code: ErrorCode
    remediation: str
    temporary: bool = False


_CHAIN = _Rule(
    ErrorCode.SQL_LSN_VALIDATION_FAILURE,
    "The log chain is broken (another tool took a backup?). The next backup becomes a full.",
)
_NO_FULL = _Rule(ErrorCode.PARENT_FULL_BACKUP_MISSING, "Take a full backup first.")
_EXISTS = _Rule(
    ErrorCode.TARGET_EXISTS,
    "Restore under a new name, relocate the files, or allow overwriting the target.",
)
_PERMISSION = _Rule(
    ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP,
    "Grant the agent's login sysadmin (sqlharbor-agent grant-permissions), then rediscover.",
)
_CONNECT = _Rule(
    ErrorCode.OPENING_SQL_CONNECTION,
    "Check that the instance is running and reachable, and the login and password.",
)
_CONNECT_TEMP = _Rule(_CONNECT.code, _CONNECT.remediation, temporary=True)

#: SQL Server error numbers → stable codes.  3013 ("terminating abnormally") is only a
#: trailer: the specific error before it decides.
SQL_ERROR_RULES: dict[int, _Rule] = {
    4214: _NO_FULL,
    3035: _NO_FULL,
    4305: _CHAIN,
    4326: _CHAIN,
    4330: _CHAIN,
    3159: _EXISTS,
    1834: _EXISTS,
    9002: _Rule(
        ErrorCode.TRANSACTION_LOG_FULL,
        "Free log space (grow the log file), then take a log backup.",
    ),
    4208: _Rule(
        ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE,
        "Log backups need FULL or BULK_LOGGED recovery; change the policy or recovery model.",
    ),
    3024: _Rule(
        ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE,
        "Only full backups are possible for master.",
    ),
    911: _Rule(ErrorCode.SQL_PO_DOES_NOT_EXIST, "The database was dropped or renamed."),
    4341: _Rule(
        ErrorCode.LOG_BACKUP_CONTAINS_BULK_LOGGED_CHANGES,
        "Pick a point in time outside the bulk-logged log backup.",
    ),
    18456: _CONNECT,
    4060: _CONNECT,
    15247: _PERMISSION,
    262: _PERMISSION,
    229: _PERMISSION,
    3110: _PERMISSION,
    3101: _Rule(
        ErrorCode.DATABASE_IN_USE,
        "Close the connections to the target database and retry.",
        temporary=True,
    ),
    1205: _Rule(ErrorCode.SQL_DEADLOCK, "Retried automatically.", temporary=True),
}

#: ODBC SQLSTATEs for connection failures (network, timeouts, link failure).
_SQLSTATE_RULES: dict[str, _Rule] = {
    "08001": _CONNECT_TEMP,
    "08S01": _CONNECT_TEMP,
    "HYT00": _CONNECT_TEMP,
    "28000": _CONNECT,
}

_NUMBER = re.compile(r"\((\d{1,6})\)")


def sql_error_numbers(message: str) -> list[int]:
    """The native error numbers pyodbc puts in parentheses, in order."""
    return [int(m) for m in _NUMBER.findall(message)]


def map_sql_error(exc: BaseException, *, context: str = "") -> SqlHarborError:
    """A driver exception (pyodbc's, or a fake's with the same ``args``) as ``EngineError``
    / ``TemporaryError`` with a stable ``ErrorCode``: the pyodbc boundary, the only code
    that looks inside a driver error."""
    if isinstance(exc, SqlHarborError):
        return exc
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    sqlstate = str(args[0]) if len(args) >= 2 else ""
    message = str(args[1]) if len(args) >= 2 else str(exc)
    prefix = f"{context}: " if context else ""
    text = f"{prefix}{message}"
    rule = next(
        (SQL_ERROR_RULES[n] for n in sql_error_numbers(message) if n in SQL_ERROR_RULES),
        _SQLSTATE_RULES.get(sqlstate),
    )
    if rule is None:
        return EngineError(
            text, code=ErrorCode.SQL_SERVER_ERROR, remediation="See the SQL Server error log."
        )
    cls = TemporaryError if rule.temporary else EngineError
    return cls(text, code=rule.code, remediation=rule.remediation)
