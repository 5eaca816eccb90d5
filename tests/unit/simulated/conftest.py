from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlharbor_agent.engines.simulated import SimulatedEngine

from sqlharbor.domain.backupset import RecoveryModel
from tests.builders.simulated import FakeClock, MemoryVault


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock) -> Iterator[SimulatedEngine]:
    eng = SimulatedEngine(tmp_path, "VM1\\SQL01", clock=clock)
    eng.create_database("sales", RecoveryModel.FULL)
    yield eng
    eng.close()


@pytest.fixture
def vault() -> MemoryVault:
    return MemoryVault()
