"""What the sync client (``kube.client``) and the async one (``kube.aio``) share besides error
translation: the body of an Event sqlharbor posts, and one key of a Secret decoded (the
value never appears in an error message)."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from sqlharbor.api.contract import reporting_controller
from sqlharbor.errors import ErrorCode, PermanentError


def event_body(
    *,
    namespace: str,
    regarding: Mapping[str, Any],
    reason: str,
    note: str,
    type_: str,
    action: str,
    reporter: str,
) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event about ``regarding`` (apiVersion, kind, name, ...)."""
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{regarding.get('name', 'sqlharbor')}-",
            "namespace": namespace,
        },
        "eventTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": reporting_controller(reporter),
        "reportingInstance": f"{reporter}-{uuid.getnode():x}",
        "action": action,
        "reason": reason,
        "note": note[:1024],
        "type": type_,
        "regarding": {
            k: regarding[k]
            for k in ("apiVersion", "kind", "name", "namespace", "uid")
            if regarding.get(k)
        },
    }


def secret_key(data: Mapping[str, str] | None, namespace: str, name: str, key: str) -> bytes:
    """``key`` of a Secret's (base64) ``data``, decoded."""
    data = data or {}
    if key not in data:
        raise PermanentError(
            f"Secret {namespace}/{name} has no key '{key}' (it has: "
            f"{', '.join(sorted(data)) or 'no keys'})",
            code=ErrorCode.SECRET_KEY_MISSING,
            remediation=f"Add the key '{key}' to Secret {name}, or fix the reference.",
        )
    return base64.b64decode(data[key])
