"""Poll a condition until it holds or a deadline passes.

Used by the control plane to wait for etcd, the API server and Azurite to answer, for
processes to exit and for CRDs to become Established; never a bare sleep standing in for
a condition.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlharbor_devtools.devenv.errors import DevEnvError


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    abort: Callable[[], str | None] | None = None,
) -> None:
    """Return once ``condition()`` is true; raise :class:`DevEnvError` after ``timeout`` s.

    ``abort`` is checked on every round; a non-``None`` answer is a reason to stop waiting
    at once (a process that exited, say) and becomes the error message.
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if abort is not None and (reason := abort()) is not None:
            raise DevEnvError(f"gave up waiting for {what}: {reason}")
        if time.monotonic() >= deadline:
            raise DevEnvError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
