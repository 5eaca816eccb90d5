"""Blocking work — the Azure SDK's storage and Key Vault calls, and the Secret reads they
start (``AsyncKubeClient.blocking_secret_reader``) — runs on a thread pool of its own,
never on the event loop's default executor.

Why it matters: the API client (kubernetes_asyncio's aiohttp session, ``trust_env``) runs a
proxy and netrc lookup on the loop's default executor for *every* request.  A vault
thread that waits for a Secret read through the loop therefore needs a free default
worker to get its answer; when vault threads fill that executor, every API call waits
behind them — the Secret reads they wait for, and the leader's Lease renewal — until the
reads time out (seen in the operator benchmark: the loop's API calls stalled for 30 s and
the replica lost its lease).  With vault work on its own pool, the default executor
stays free for the libraries.

``Offloader(workers)`` is built by ``handlers`` and carried by the ``Runtime``; the tick's
concerns (grants, indexing, retention, the key census, restore planning, vault
validation) call ``await rt.offload(fn, *args)``.  Without a pool (``Offloader()``, the
unit tests' runtimes) it is ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Offloader:
    """``await offload(fn, *args, **kwargs)``: ``fn`` on the vault pool."""

    def __init__(self, workers: int | None = None, *, name: str = "sqlharbor-vault") -> None:
        self._workers = workers
        self._closed = False
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name) if workers else None

    async def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._pool is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        if self._closed:  # stopping: background work (an indexing batch) ends here quietly
            raise asyncio.CancelledError("the operator is stopping")
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def start(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Task[T]:
        """``fn`` on the pool as a task the caller polls (``done()``) instead of awaiting."""
        return asyncio.ensure_future(self(fn, *args, **kwargs))

    def shutdown(self) -> None:
        """Stop taking work (a later call is cancelled); running calls end on their own
        (the SDKs' timeouts)."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"Offloader({self._workers or 'to_thread'})"
