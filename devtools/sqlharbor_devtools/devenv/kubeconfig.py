"""Write kubeconfig files for the local control plane (mode 0600, credentials embedded).

Called by :mod:`sqlharbor_devtools.devenv.controlplane` for the admin (client certificate) and by
:mod:`sqlharbor_devtools.devenv.serviceaccounts` for a ServiceAccount (bearer token).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from sqlharbor_devtools.devenv.pki import write_private


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_cert: bytes,
    user: str,
    credentials: dict[str, str],
    namespace: str = "default",
    context: str = "sqlharbor-dev",
) -> Path:
    """Write a single-context kubeconfig; ``credentials`` is the kubeconfig ``user`` block."""
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sqlharbor-dev",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": "sqlharbor-dev", "user": user, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    write_private(path, yaml.safe_dump(doc, sort_keys=False).encode("utf-8"))
    return path


def client_cert_credentials(cert: bytes, key: bytes) -> dict[str, str]:
    """A kubeconfig user block for a client certificate."""
    return {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}


def token_credentials(token: str) -> dict[str, str]:
    """A kubeconfig user block for a bearer token."""
    return {"token": token}
