"""For tests on the simulated engine: a clock moved by hand, a burst of workload, and
backup streams kept in memory (no vault, no Azure) that restore straight into the engine."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlharbor_agent.engines.base import RestoreOptions, RestoreStep, StopAt
from sqlharbor_agent.engines.simulated import SimulatedEngine, Workload

from sqlharbor.domain.backupset import BackupRecord, BackupRequest, BackupType, RecoveryPoint


class FakeClock:
    """A clock tests move by hand (no sleeping)."""

    def __init__(self, start: datetime = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def work(engine: SimulatedEngine, clock: FakeClock, n: int, db: str = "sales") -> None:
    """``n`` workload transactions on ``db``, one second apart (seeded by ``n`` and the
    clock, so repeated bursts differ)."""
    workload = Workload(engine, [db], seed=n + int(clock.now.timestamp()), row_size=128)
    for _ in range(n):
        assert workload.step() is not None
        clock.tick(1)


@dataclass
class MemoryVault:
    """Backup streams kept in memory, keyed by recovery point id."""

    streams: dict[str, bytes] = field(default_factory=dict)
    points: list[RecoveryPoint] = field(default_factory=list)

    def backup(
        self, engine: SimulatedEngine, name: str, kind: BackupType, copy_only: bool = False
    ) -> BackupRecord:
        sink = io.BytesIO()
        record = engine.backup(BackupRequest(name, kind, copy_only), sink)
        point = RecoveryPoint(id=f"rp-{len(self.points):05d}", record=record)
        self.points.append(point)
        self.streams[point.id] = sink.getvalue()
        return record

    def step(self, point: RecoveryPoint) -> RestoreStep:
        return RestoreStep(point.record, io.BytesIO(self.streams[point.id]))

    def point_of(self, record: BackupRecord) -> RecoveryPoint:
        return next(p for p in self.points if p.record == record)

    def of(self, name: str) -> list[RecoveryPoint]:
        return [p for p in self.points if p.record.database_name == name]

    def restore(
        self,
        engine: SimulatedEngine,
        records: list[BackupRecord],
        target: str,
        *,
        replace: bool = False,
        stop: StopAt | None = None,
    ) -> None:
        """RESTORE the backups of ``records``, in order, into ``target``."""
        steps = [self.step(self.point_of(r)) for r in records]
        engine.restore(RestoreOptions(target, replace=replace), steps, stop)
