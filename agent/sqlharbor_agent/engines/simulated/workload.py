"""A workload generator for the simulated engine: transactions with inserts, updates, deletes.

Used by the demo (in a thread, or as its own process with
``python -m sqlharbor_agent.engines.simulated.workload --root DIR --instance NAME``) and
by the tests (``step()`` commits exactly one transaction, so a test drives it together
with a fake clock and never sleeps).  Each transaction touches one to a few rows of one
database; row bodies come from ``payload.page_payload`` (about 2:1 with zstd).
Deterministic for a seed, given the same sequence of calls.  ``Pace`` can alternate
busy and idle phases (the demo's databases go quiet now and then, so their log backups
come out empty the way an idle SQL Server database's do).
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlharbor.errors import EngineError
from sqlharbor_agent.engines.simulated.engine import SimulatedEngine, open_simulated_engine
from sqlharbor_agent.engines.simulated.payload import page_payload
from sqlharbor_agent.engines.simulated.transactions import Commit, Operation


@dataclass(frozen=True)
class WorkloadShape:
    """How transactions look: key space (rows per database), row size, ops per transaction."""

    max_rows: int = 500
    row_size: int = 1024
    max_ops: int = 4
    delete_ratio: float = 0.15


@dataclass(frozen=True)
class Pace:
    """Busy for ``active_s`` seconds, then idle (no commits) for ``idle_s``, repeating;
    ``idle_s == 0`` means always busy."""

    active_s: float = 0.0
    idle_s: float = 0.0

    def __post_init__(self) -> None:
        if self.active_s < 0 or self.idle_s < 0 or (self.idle_s and not self.active_s):
            raise ValueError("a pace needs a positive busy phase and a non-negative idle phase")

    def idle_for(self, elapsed_s: float) -> float:
        """How long to stay quiet ``elapsed_s`` seconds after the start (0: busy now)."""
        if not self.idle_s:
            return 0.0
        phase = elapsed_s % (self.active_s + self.idle_s)
        return 0.0 if phase < self.active_s else self.active_s + self.idle_s - phase


class Workload:
    """Commits random transactions to ``databases`` at about ``rate`` per second when run."""

    def __init__(
        self,
        engine: SimulatedEngine,
        databases: Sequence[str],
        seed: int = 0,
        rate: float = 10.0,
        row_size: int = 1024,
        shape: WorkloadShape | None = None,
        pace: Pace | None = None,
    ) -> None:
        if not databases:
            raise ValueError("the workload needs at least one database")
        self._engine = engine
        self._databases = list(databases)
        self._rng = random.Random(seed)
        self._interval = 1.0 / rate if rate > 0 else 0.0
        base = shape or WorkloadShape()
        self._shape = WorkloadShape(base.max_rows, row_size, base.max_ops, base.delete_ratio)
        self._pace = pace or Pace()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.commits = 0
        self.skipped = 0

    def step(self, database: str | None = None) -> Commit | None:
        """Commit one transaction (to ``database`` or a random one); None if it was refused
        (the database is restoring, read-only or gone), which a live workload shrugs off."""
        name = database or self._rng.choice(self._databases)
        try:
            commit = self._engine.commit(name, self._operations())
        except EngineError:
            self.skipped += 1
            return None
        self.commits += 1
        return commit

    def run(self, stop: threading.Event, limit: int | None = None) -> None:
        """Commit until ``stop`` is set (or ``limit`` transactions), paced by ``rate`` and
        quiet during the idle phases of ``pace``."""
        done = 0
        started = time.monotonic()
        while not stop.is_set() and (limit is None or done < limit):
            quiet = self._pace.idle_for(time.monotonic() - started)
            if quiet:
                stop.wait(quiet)
                continue
            self.step()
            done += 1
            stop.wait(self._interval)

    def start(self) -> None:
        """Run in a daemon thread until ``stop()``."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name="simulated-workload", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _operations(self) -> list[Operation]:
        shape = self._shape
        count = self._rng.randint(1, shape.max_ops)
        ops = []
        for _ in range(count):
            key = self._rng.randrange(shape.max_rows)
            if self._rng.random() < shape.delete_ratio:
                ops.append(Operation(key, None))
            else:
                ops.append(Operation(key, page_payload(self._rng, key, shape.row_size)))
        return ops


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Commit transactions to simulated databases.")
    parser.add_argument("--root", required=True, help="directory holding the instance files")
    parser.add_argument("--instance", required=True)
    parser.add_argument("--database", action="append", required=True, dest="databases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=10.0, help="transactions per second")
    parser.add_argument("--row-size", type=int, default=1024)
    parser.add_argument("--count", type=int, default=None, help="stop after this many")
    parser.add_argument("--active-seconds", type=float, default=0.0, help="busy phase length")
    parser.add_argument("--idle-seconds", type=float, default=0.0, help="idle phase length")
    args = parser.parse_args(argv)
    engine = open_simulated_engine(Path(args.root), args.instance)
    pace = Pace(args.active_seconds, args.idle_seconds)
    workload = Workload(engine, args.databases, args.seed, args.rate, args.row_size, pace=pace)
    try:
        workload.run(threading.Event(), limit=args.count)
    except KeyboardInterrupt:
        pass
    finally:
        engine.close()
    print(f"committed {workload.commits} transactions, skipped {workload.skipped}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
