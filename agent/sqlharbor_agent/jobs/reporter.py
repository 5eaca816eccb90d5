"""``JobReporter``: the only writer of one job's status while the agent runs it.

Collects per-database results and progress from worker threads and writes them as status
merge patches, at most every ``interval`` seconds for progress (so a 30-second log job
costs two or three writes, not hundreds), and always once at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlharbor.api import DatabaseResult, JobPhase, Progress

Writer = Callable[[dict[str, Any]], None]


class JobReporter:
    def __init__(self, write: Writer, *, interval: float, bytes_total: int | None = None) -> None:
        self._write = write
        self._interval = interval
        self._lock = threading.Lock()
        self._results: dict[str, DatabaseResult] = {}
        self._order: list[str] = []
        self._bytes_done = 0
        self._bytes_stored = 0
        self._bytes_total = bytes_total
        self._started = time.monotonic()
        self._last_write = 0.0
        self._message: str | None = None

    def set_result(self, result: DatabaseResult) -> None:
        with self._lock:
            if result.name not in self._results:
                self._order.append(result.name)
            self._results[result.name] = result
        self._maybe_flush()

    def add_progress(self, done: int = 0, stored: int = 0, message: str | None = None) -> None:
        with self._lock:
            self._bytes_done += done
            self._bytes_stored += stored
            if message:
                self._message = message
        self._maybe_flush()

    def progress(self) -> Progress:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        percent = None
        if self._bytes_total:
            percent = min(100, int(self._bytes_done * 100 / self._bytes_total))
        return Progress(
            bytes_done=self._bytes_done,
            bytes_total=self._bytes_total,
            bytes_stored=self._bytes_stored,
            percent=percent,
            rate_bytes_per_second=int(self._bytes_done / elapsed),
            message=self._message,
        )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            results = [self._results[n] for n in self._order]
            return {
                "progress": self.progress().to_wire(),
                "databases": [r.to_wire() for r in results],
                "succeeded": sum(r.phase is JobPhase.SUCCEEDED for r in results),
                "failed": sum(r.phase is JobPhase.FAILED for r in results),
            }

    def results(self) -> list[DatabaseResult]:
        with self._lock:
            return [self._results[n] for n in self._order]

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if now - self._last_write < self._interval:
            return
        self._last_write = now
        try:
            self._write(self.snapshot())
        except Exception:  # progress is best effort; the final write is not
            self._last_write = now

    def final(self, extra: dict[str, Any]) -> None:
        status = self.snapshot()
        status.update(extra)
        self._write(status)
