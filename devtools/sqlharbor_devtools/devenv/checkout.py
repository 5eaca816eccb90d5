"""The sqlharbor source checkout the dev tools work from, found explicitly.

The dev tools are not a product and need a checkout: ``crds/`` (applied to the local API
server), ``manifests/agent/`` (the agent's RBAC in the demo and the end-to-end tests),
``devdevtools/controlplane-go-go/`` (the Go modules kube-apiserver and etcd are built from) and
``node_modules/`` (Azurite).  The checkout is ``$SQLHARBOR_CHECKOUT`` when set (it must be
one), else the current directory or its nearest parent holding
``devdevtools/controlplane-go-go/kube/go.mod``.  Where the dev tools' own files are installed
plays no part: an installed ``sqlharbor_devtools`` run outside a checkout says so instead
of guessing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlharbor_devtools.devenv.errors import NoCheckoutError

CHECKOUT_ENV = "SQLHARBOR_CHECKOUT"
GO_MODULES = Path("devtools") / "controlplane-go"
_MARKER = GO_MODULES / "kube" / "go.mod"


def is_checkout(path: Path) -> bool:
    """True when ``path`` is the root of a sqlharbor checkout."""
    return (path / _MARKER).is_file()


def find_repo_root(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Path | None:
    """``$SQLHARBOR_CHECKOUT``, else the cwd or its nearest parent that is a checkout."""
    env = os.environ if environ is None else environ
    explicit = env.get(CHECKOUT_ENV)
    if explicit:
        root = Path(explicit).expanduser().resolve()
        if not is_checkout(root):
            raise NoCheckoutError(f"{CHECKOUT_ENV}={explicit} is not a sqlharbor checkout")
        return root
    start = (cwd or Path.cwd()).resolve()
    return next((c for c in (start, *start.parents) if is_checkout(c)), None)


def require_repo_root(environ: Mapping[str, str] | None = None) -> Path:
    """Like :func:`find_repo_root`, but raise :class:`NoCheckoutError` when there is none."""
    root = find_repo_root(environ)
    if root is None:
        raise NoCheckoutError(f"no sqlharbor checkout at or above {Path.cwd()}")
    return root
