"""Per-engine adapters for the contract suite: create a database, write rows, read rows.

The contract tests only talk to the Engine Protocol plus these few workload verbs, so the
same tests run against the simulated engine (always) and a real SQL Server (when
``SQLHARBOR_TEST_MSSQL`` holds an ODBC connection string).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlharbor_agent.engines.base import Engine
from sqlharbor_agent.engines.simulated import Operation, SimulatedEngine

MSSQL_ENV = "SQLHARBOR_TEST_MSSQL"


class EngineHarness(Protocol):
    engine: Engine
    can_revoke_sysadmin: bool

    def new_database_name(self) -> str: ...

    def create_database(self, name: str) -> None: ...

    def write_rows(self, name: str, rows: Mapping[int, bytes]) -> None: ...

    def read_rows(self, name: str) -> dict[int, bytes]: ...

    def now(self) -> datetime:
        """The engine's clock (UTC), the one commit times are taken from."""
        ...

    def revoke_sysadmin(self) -> None: ...

    def close(self) -> None: ...


def wait_until_after(harness: EngineHarness, moment: datetime, timeout_s: float = 5.0) -> None:
    """Poll the engine's clock until it has passed ``moment`` (no blind sleeps)."""
    deadline = time.monotonic() + timeout_s
    while harness.now() <= moment:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the engine clock did not pass {moment.isoformat()}")
        time.sleep(0.005)


class SimulatedHarness:
    can_revoke_sysadmin = True

    def __init__(self, root: Path) -> None:
        self.engine: SimulatedEngine = SimulatedEngine(root, "contract-sim")
        self.engine.set_sysadmin(True)

    def new_database_name(self) -> str:
        return f"contract_{uuid.uuid4().hex[:8]}"

    def create_database(self, name: str) -> None:
        self.engine.create_database(name)

    def write_rows(self, name: str, rows: Mapping[int, bytes]) -> None:
        self.engine.commit(name, [Operation(k, v) for k, v in rows.items()])

    def read_rows(self, name: str) -> dict[int, bytes]:
        return self.engine.rows(name)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def revoke_sysadmin(self) -> None:
        self.engine.set_sysadmin(False)

    def close(self) -> None:
        self.engine.close()


class MssqlHarness:
    """A real SQL Server 2022 (see docs/sqlserver.md).  Databases are dropped on close."""

    can_revoke_sysadmin = False  # the test login would lock itself out

    def __init__(self, connection_string: str, vdi_library: str | None = None) -> None:
        import pyodbc
        from sqlharbor_agent.engines.sqlserver.engine import SqlServerEngine
        from sqlharbor_agent.engines.sqlserver.settings import (
            AuthMode,
            ConnectionSettings,
            SqlServerSettings,
        )
        from sqlharbor_agent.engines.sqlserver.tsql import quote_identifier

        self._pyodbc: Any = pyodbc
        self._connection_string = connection_string
        self._quote = quote_identifier
        self._created: list[str] = []
        settings = SqlServerSettings(
            instance_name="contract-mssql",
            connection=ConnectionSettings(auth=AuthMode.INTEGRATED),  # unused: connect= below
            **({"vdi_library": vdi_library} if vdi_library else {}),
        )
        self.engine = SqlServerEngine(settings, connect=self._connect)

    def _connect(self) -> Any:
        return self._pyodbc.connect(self._connection_string, autocommit=True)

    def _run(self, sql: str, *params: Any) -> list[Any]:
        connection = self._connect()
        try:
            cursor = connection.cursor()
            cursor.execute(sql, *params)
            rows = cursor.fetchall() if cursor.description else []
            while cursor.nextset():
                pass
            return list(rows)
        finally:
            connection.close()

    def new_database_name(self) -> str:
        return f"sqlharbor contract ]{uuid.uuid4().hex[:6]}"  # hostile on purpose

    def create_database(self, name: str) -> None:
        q = self._quote(name)
        self._run(f"CREATE DATABASE {q}")
        self._created.append(name)
        self._run(f"ALTER DATABASE {q} SET RECOVERY FULL")
        self._run(f"CREATE TABLE {q}.dbo.t (k int PRIMARY KEY, v varbinary(max) NOT NULL)")

    def write_rows(self, name: str, rows: Mapping[int, bytes]) -> None:
        q = self._quote(name)
        values = " ".join(
            f"MERGE {q}.dbo.t AS t USING (SELECT ? AS k, ? AS v) AS s ON t.k = s.k "
            "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (k, v) "
            "VALUES (s.k, s.v);"
            for _ in rows
        )
        params = [p for k, v in rows.items() for p in (k, v)]
        self._run(f"BEGIN TRANSACTION; {values} COMMIT;", *params)

    def read_rows(self, name: str) -> dict[int, bytes]:
        return {
            int(k): bytes(v) for k, v in self._run(f"SELECT k, v FROM {self._quote(name)}.dbo.t")
        }

    def now(self) -> datetime:
        value = self._run("SELECT SYSUTCDATETIME()")[0][0]
        return value.replace(tzinfo=UTC)

    def revoke_sysadmin(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        for name in self._created:
            q = self._quote(name)
            for extra in ("", "_pitr", "_latest"):
                target = self._quote(name + extra) if extra else q
                self._run(
                    f"IF DB_ID({_literal(name + extra)}) IS NOT NULL "
                    f"BEGIN ALTER DATABASE {target} SET SINGLE_USER WITH ROLLBACK IMMEDIATE; "
                    f"DROP DATABASE {target}; END"
                )


def _literal(value: str) -> str:
    from sqlharbor_agent.engines.sqlserver.tsql import quote_literal

    return quote_literal(value)


def tick() -> timedelta:
    """A margin comfortably above SQL Server's datetime step (3.33 ms)."""
    return timedelta(milliseconds=50)
