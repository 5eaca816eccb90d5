"""Readiness probes for the control plane's components (plain HTTP(S), no proxies).

Called by :mod:`sqlharbor_devtools.devenv.controlplane` while waiting for etcd, the API server and
Azurite to answer.  Each probe returns a bool and never raises for a component that is
simply not up yet.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path


def _get(
    url: str, *, context: ssl.SSLContext | None = None, timeout: float = 2.0
) -> tuple[int, bytes] | None:
    """``(status, body)`` of a GET, or ``None`` when nothing answered."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as answer:
        with answer:
            return int(answer.code), bytes(answer.read())
    except OSError:
        return None


def etcd_healthy(client_url: str) -> bool:
    """True once etcd's ``/health`` says ``"health": "true"``."""
    answer = _get(f"{client_url}/health")
    if answer is None or answer[0] != 200:
        return False
    try:
        return str(json.loads(answer[1]).get("health")) == "true"
    except ValueError:
        return False


def admin_tls_context(ca_cert: Path, client_cert: Path, client_key: Path) -> ssl.SSLContext:
    """A TLS context that trusts the dev CA and presents the admin client certificate."""
    context = ssl.create_default_context(cafile=str(ca_cert))
    context.load_cert_chain(str(client_cert), str(client_key))
    return context


def apiserver_ready(url: str, context: ssl.SSLContext) -> bool:
    """True once the API server's ``/readyz`` answers 200 ``ok``."""
    answer = _get(f"{url}/readyz", context=context)
    return answer is not None and answer[0] == 200 and answer[1].strip() == b"ok"


def http_answers(url: str) -> bool:
    """True once anything answers HTTP at ``url`` (an error status counts as an answer)."""
    return _get(url) is not None
