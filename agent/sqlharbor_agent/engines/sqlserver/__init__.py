"""The SQL Server engine plugin: T-SQL through pyodbc, data through VDI (ctypes).

The agent builds ``SqlServerEngine`` from ``SqlServerSettings`` when its configuration
says ``engine: sqlserver``.  Only this package imports pyodbc, lazily (optional extra
``sqlserver``), so everything else, tests included, runs without it.
"""

from __future__ import annotations

from .engine import SqlServerEngine, open_sqlserver_engine
from .settings import AuthMode, ConnectionSettings, SqlServerSettings, VdiTimeouts
from .tsql import StreamGeometry

__all__ = [
    "AuthMode",
    "ConnectionSettings",
    "SqlServerEngine",
    "SqlServerSettings",
    "StreamGeometry",
    "VdiTimeouts",
    "open_sqlserver_engine",
]
