"""Shared pieces of the benchmarks: results, statistics, an Azurite of their own, data."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.builders import azurite as builders_azurite

REPO = Path(__file__).resolve().parents[1]
AZURITE = builders_azurite.AZURITE
MiB = 1024 * 1024


@dataclass(frozen=True)
class Config:
    """How big to run: ``quick`` for development, ``tiny`` for the test suite."""

    quick: bool = False
    tiny: bool = False
    workdir: Path = Path("bench-results") / "work"

    @property
    def mode(self) -> str:
        return "tiny" if self.tiny else "quick" if self.quick else "full"

    def pick(self, full: Any, quick: Any, tiny: Any) -> Any:
        return tiny if self.tiny else quick if self.quick else full


@dataclass
class Metric:
    """One row of the results table."""

    benchmark: str
    name: str
    value: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    spread: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Result:
    """What one benchmark returns: its rows plus free-form details for the JSON."""

    name: str
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def add(self, name: str, value: float | None, unit: str, **kw: Any) -> Metric:
        metric = Metric(self.name, name, value, unit, **kw)
        self.metrics.append(metric)
        return metric


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float], digits: int = 2) -> str:
    """min..max of the samples, as text."""
    if not values:
        return ""
    return f"{min(values):.{digits}f}..{max(values):.{digits}f} (n={len(values)})"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return float(ordered[rank - 1])


def alternate(
    reps: int, a: Callable[[], float], b: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Run A, B, A, B, ... ``reps`` times each; returns the two lists of measurements."""
    first: list[float] = []
    second: list[float] = []
    for _ in range(reps):
        first.append(a())
        second.append(b())
    return first, second


def ratios(candidate: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Pairwise ratios of side-by-side measurements (same repetition index)."""
    return [c / b for c, b in zip(candidate, baseline, strict=True) if b > 0]


# -- data ------------------------------------------------------------------------------


def page_like_pool(size: int, seed: int = 7, page: int = 8192) -> bytes:
    """``size`` bytes of SQL-Server-like 8 KB pages (about 2:1 under zstd)."""
    from sqlharbor_agent.engines.simulated.payload import page_payload

    rng = random.Random(seed)
    pages = [page_payload(rng, key, page) for key in range(max(1, size // page))]
    return b"".join(pages)[:size]


def random_pool(size: int) -> bytes:
    import os

    return os.urandom(size)


def stream(pool: bytes, total: int, piece: int = MiB) -> Iterator[memoryview]:
    """An engine-like stream: ``total`` bytes in ``piece``-sized writes, cycling ``pool``."""
    view = memoryview(pool)
    sent = 0
    offset = 0
    while sent < total:
        count = min(piece, total - sent, len(pool) - offset)
        yield view[offset : offset + count]
        sent += count
        offset = (offset + count) % len(pool)


# -- Azurite -----------------------------------------------------------------------------


class Azurite(builders_azurite.Azurite):
    """A private Azurite blob service whose CPU time can be read."""

    def cpu_seconds(self) -> float:
        """CPU time Azurite (a separate process) has used so far, from /proc."""
        return proc_cpu_seconds(self.process.pid)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc/<pid>/stat (0.0 when unavailable)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid: int) -> int:
    """Current resident set size of a process (0 when unavailable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def proc_peak_rss_bytes(pid: int) -> int:
    """Peak resident set size (VmHWM) of a running process (0 when unavailable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
