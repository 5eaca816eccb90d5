"""Parametrises the contract suite over every engine this machine can reach."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import MSSQL_ENV, EngineHarness, MssqlHarness, SimulatedHarness


@pytest.fixture(params=["simulated", "sqlserver"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineHarness]:
    built: EngineHarness
    if request.param == "simulated":
        built = SimulatedHarness(tmp_path)
    else:
        connection_string = os.environ.get(MSSQL_ENV)
        if not connection_string:
            pytest.skip(f"no SQL Server: set {MSSQL_ENV} to an ODBC connection string")
        try:
            import pyodbc  # noqa: F401
        except ImportError:
            pytest.skip("pyodbc is not installed (pip install 'sqlharbor[sqlserver]')")
        built = MssqlHarness(connection_string, os.environ.get("SQLHARBOR_TEST_VDI_LIBRARY"))
    try:
        yield built
    finally:
        built.close()
