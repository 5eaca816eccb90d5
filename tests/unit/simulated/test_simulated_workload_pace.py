"""The workload's busy and idle phases (the demo's idle databases get empty log backups)."""

from __future__ import annotations

import types

import pytest
from sqlharbor_agent.engines.simulated import Pace, SimulatedEngine, Workload
from sqlharbor_agent.engines.simulated import workload as workload_module


def test_pace_alternates_busy_and_idle() -> None:
    pace = Pace(10, 5)
    assert [pace.idle_for(t) for t in (0, 9.5, 10, 12, 15, 26)] == [0, 0, 5, 3, 0, 4]
    assert Pace().idle_for(1_000) == 0
    with pytest.raises(ValueError, match="busy phase"):
        Pace(0, 5)


class _FakeTime:
    """A monotonic clock that only ``wait`` moves; ``wait`` is also the stop event's."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return False

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


def test_workload_is_quiet_during_idle_phases(
    engine: SimulatedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeTime()
    monkeypatch.setattr(workload_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    workload = Workload(engine, ["sales"], rate=1, row_size=64, pace=Pace(3, 10))
    workload.run(fake, limit=6)  # type: ignore[arg-type]
    assert workload.commits == 6
    assert fake.waits == [1, 1, 1, 10, 1, 1, 1]
