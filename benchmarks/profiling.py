"""cProfile across worker threads: wrap a function so each thread's calls are profiled,
then merge every thread's profile into one ``pstats`` summary."""

from __future__ import annotations

import cProfile
import functools
import io
import pstats
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class ThreadProfiles:
    """Collects one ``cProfile.Profile`` per thread that runs a wrapped function."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _profile(self) -> cProfile.Profile:
        profile: cProfile.Profile | None = getattr(self._local, "profile", None)
        if profile is None:
            profile = cProfile.Profile()
            self._local.profile = profile
            with self._lock:
                self._profiles.append(profile)
        return profile

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def profiled(*args: Any, **kwargs: Any) -> Any:
            return self._profile().runcall(fn, *args, **kwargs)

        return profiled

    @contextmanager
    def patched(self, owner: Any, attribute: str) -> Iterator[None]:
        original = getattr(owner, attribute)
        setattr(owner, attribute, self.wrap(original))
        try:
            yield
        finally:
            setattr(owner, attribute, original)

    def stats(self, main: cProfile.Profile | None = None) -> pstats.Stats | None:
        profiles = [*self._profiles, *([main] if main is not None else [])]
        if not profiles:
            return None
        stats = pstats.Stats(profiles[0], stream=io.StringIO())
        for profile in profiles[1:]:
            stats.add(profile)
        return stats


def top_functions(stats: pstats.Stats | None, limit: int = 12) -> list[dict[str, Any]]:
    """The functions with the most own time (tottime), summed over the profiled threads."""
    if stats is None:
        return []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in raw.items():
        short = filename.rsplit("site-packages/", 1)[-1].rsplit("/work/main/", 1)[-1]
        rows.append(
            {
                "function": f"{short}:{line}({name})",
                "calls": calls,
                "tottime": round(tottime, 3),
                "cumtime": round(cumtime, 3),
            }
        )
    rows.sort(key=lambda r: -float(r["tottime"]))
    return rows[:limit]
