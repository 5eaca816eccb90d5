"""Translation of Kubernetes API failures into the sqlharbor error tree, for the sync client
(``kube.client``, agent and CLI) and the async one (``kube.aio``, operator) alike.

Both clients raise an ``ApiException`` with ``status``, ``reason``, ``body`` and
``headers``; network failures surface as ``OSError`` (sockets), urllib3's ``HTTPError``
(sync) or aiohttp's ``ClientError`` / ``asyncio.TimeoutError`` (async).  Nothing else in
the tree inspects them.
"""

from __future__ import annotations

import json
from typing import Any

from sqlharbor.api.contract import TRANSITION_MESSAGES
from sqlharbor.errors import (
    AccessDenied,
    Conflict,
    ErrorCode,
    NotFound,
    PermanentError,
    TemporaryError,
    TransitionRefused,
    retry_after_seconds,
)


def translate(
    exc: BaseException, what: str, network: tuple[type[BaseException], ...] = ()
) -> BaseException:
    """The sqlharbor error for ``exc``; ``network`` names the client's transport errors.

    404 ``NotFound``, 409 ``Conflict``, 401/403 ``AccessDenied`` (code Forbidden), a refused
    transition ``TransitionRefused``, 400/422 ``PermanentError`` (code Invalid); anything
    else (429, 5xx, the network) ``TemporaryError`` with the server's Retry-After."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "body"):
        reason = _reason(exc)
        if status == 404:
            return NotFound(f"{what}: not found")
        if status == 409:
            return Conflict(f"{what}: conflict ({reason})")
        if status in (401, 403):
            return AccessDenied(f"{what}: forbidden ({reason})")
        if status == 422 and any(m in reason for m in TRANSITION_MESSAGES):
            return TransitionRefused(f"{what}: refused ({reason})")
        if status in (400, 422):
            return PermanentError(f"{what}: invalid ({reason})", code=ErrorCode.INVALID)
        return TemporaryError(
            f"{what}: API server error {status} ({reason})",
            retry_after=_retry_after(exc),
        )
    if isinstance(exc, (OSError, TimeoutError, *network)):
        return TemporaryError(f"{what}: cannot reach the API server ({type(exc).__name__})")
    return exc


def _reason(exc: Any) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except (ValueError, TypeError, AttributeError):
        return str(getattr(exc, "reason", ""))


def _retry_after(exc: Any) -> float | None:
    """The server's Retry-After (seconds or an HTTP date), when it sent one (429, 503)."""
    headers = getattr(exc, "headers", None) or {}
    try:
        return retry_after_seconds(headers.get("Retry-After"))
    except (TypeError, AttributeError):
        return None
