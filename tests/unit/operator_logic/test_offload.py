"""Blocking vault work must not starve the API client (``sqlharbor_operator.offload``).

The API client runs a lookup on the loop's default executor for every request (aiohttp
with ``trust_env``, as kubernetes_asyncio builds its session); a vault thread waiting for a
Secret read through the loop needs that lookup to finish.  These tests rebuild that
round trip with a small default executor: on the default executor the reads time out (the
operator benchmark's 30 s stall), on the Offloader's pool they all answer.
"""

from __future__ import annotations

import ast
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlharbor_operator.offload import Offloader

OPERATOR = Path(__file__).resolve().parents[3] / "operator" / "sqlharbor_operator"
READS = 6
DEFAULT_WORKERS = 2


async def _api_call() -> bytes:
    """What one API request costs the loop: a lookup on the default executor."""
    await asyncio.to_thread(lambda: None)
    return b"value"


def _blocking_reader(loop: asyncio.AbstractEventLoop, timeout: float) -> bytes:
    """``AsyncKubeClient.blocking_secret_reader``'s shape: the read runs on the loop."""
    return asyncio.run_coroutine_threadsafe(_api_call(), loop).result(timeout=timeout)


async def _reads(offload: Offloader, wait: float) -> list[bytes | BaseException]:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(DEFAULT_WORKERS))
    calls = [offload(_blocking_reader, loop, wait) for _ in range(READS)]
    return await asyncio.gather(*calls, return_exceptions=True)


def test_reads_answer_when_vault_work_has_its_own_pool() -> None:
    offload = Offloader(READS)
    began = time.monotonic()
    try:
        results = asyncio.run(_reads(offload, wait=20.0))
    finally:
        offload.shutdown()
    assert results == [b"value"] * READS
    assert time.monotonic() - began < 10, "no read waited for a timeout"


def test_reads_stall_when_vault_work_fills_the_default_executor() -> None:
    """The hazard itself (what ``Offloader()`` without a pool, ``asyncio.to_thread``, does):
    the readers hold every default worker, so the lookups their reads need never run."""
    results = asyncio.run(_reads(Offloader(), wait=1.0))
    assert any(isinstance(r, TimeoutError) for r in results)


def test_a_started_call_is_a_task_the_caller_polls() -> None:
    async def run() -> int:
        offload = Offloader(1)
        task = offload.start(sum, [1, 2, 3])
        result = await task
        offload.shutdown()
        return result

    assert asyncio.run(run()) == 6


def test_after_shutdown_a_call_is_cancelled_not_failed() -> None:
    async def run() -> None:
        offload = Offloader(1)
        offload.shutdown()
        with pytest.raises(asyncio.CancelledError):
            await offload(sum, [1])

    asyncio.run(run())


@pytest.mark.parametrize("path", sorted(OPERATOR.glob("*.py")), ids=lambda p: p.name)
def test_the_operator_runs_no_blocking_work_on_the_default_executor(path: Path) -> None:
    """``asyncio.to_thread`` and ``run_in_executor(None, ...)`` are for the offload module
    alone: everywhere else blocking work goes through ``Runtime.offload``."""
    if path.name == "offload.py":
        return
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        assert name != "to_thread", f"{path.name}:{node.lineno}: use Runtime.offload"
        if name == "run_in_executor" and node.args:
            first = node.args[0]
            assert not (isinstance(first, ast.Constant) and first.value is None), (
                f"{path.name}:{node.lineno}: use Runtime.offload"
            )
