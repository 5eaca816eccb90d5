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
    Conflict,
    NotFound,
    PermanentError,
    TemporaryError,
    TransitionRefused,
)


def translate(
    exc: BaseException, what: str, network: tuple[type[BaseException], ...] = ()
) -> BaseException:
    """The sqlharbor error for ``exc``; ``network`` names the client's transport errors."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "body"):
        reason = _reason(exc)
        if status == 404:
            return NotFound(f"{what}: not found")
        if status == 409:
            return Conflict(f"{what}: conflict ({reason})")
        if status in (401, 403):
            return PermanentError(
                f"{what}: forbidden ({reason})",
                code="Forbidden",
                remediation="Check the RBAC of the service account (manifests/).",
            )
        if status == 422 and any(m in reason for m in TRANSITION_MESSAGES):
            return TransitionRefused(f"{what}: refused ({reason})")
        if status in (400, 422):
            return PermanentError(f"{what}: invalid ({reason})", code="Invalid")
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
    headers = getattr(exc, "headers", None) or {}
    try:
        value = headers.get("Retry-After")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
