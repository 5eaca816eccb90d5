"""Fixtures for the SQL Server plugin tests: the stand-in VDI library, built once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .standin import StandinVdi, build_standin


@pytest.fixture(scope="session")
def standin_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_standin(tmp_path_factory.mktemp("standin-vdi"))
    if path is None:
        pytest.skip("g++ is not installed: the stand-in libsqlvdi.so cannot be built")
    return path


@pytest.fixture
def standin(standin_library: Path) -> Iterator[StandinVdi]:
    vdi = StandinVdi(standin_library)
    yield vdi
    assert vdi.open_sets() == 0, "a virtual device set was left open"
