"""Where the control plane's external tools come from: settings read once, at the edge.

:meth:`Toolchain.from_env` is called by the CLI and the pytest fixtures (the only places that
read the environment); everything else in :mod:`sqlharbor_devtools.devenv` receives a
``Toolchain``.  The Go modules and Azurite come from the sqlharbor checkout
(:mod:`sqlharbor_devtools.devenv.checkout`) unless ``SQLHARBOR_CONTROLPLANE_MODULES`` /
``SQLHARBOR_AZURITE_BLOB`` name them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlharbor_devtools.devenv.checkout import GO_MODULES, find_repo_root

_AZURITE_BLOB = Path("node_modules") / "azurite" / "dist" / "src" / "blob" / "main.js"


@dataclass(frozen=True)
class Toolchain:
    """Explicit binaries (if given), the Go module folder, the build cache and Azurite."""

    cache_dir: Path
    modules_dir: Path | None = None
    go: str | None = None
    kubebuilder_assets: Path | None = None
    kube_apiserver: Path | None = None
    etcd: Path | None = None
    kubectl: Path | None = None
    node: str | None = None
    azurite_blob: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Toolchain:
        """Read ``KUBEBUILDER_ASSETS``, ``SQLHARBOR_*`` overrides, ``PATH`` and the repo layout."""
        env = os.environ if environ is None else environ
        repo = find_repo_root(env)

        def path(name: str) -> Path | None:
            return Path(env[name]).expanduser() if env.get(name) else None

        cache_root = path("SQLHARBOR_CACHE_DIR") or (
            (path("XDG_CACHE_HOME") or Path.home() / ".cache") / "sqlharbor"
        )
        azurite = path("SQLHARBOR_AZURITE_BLOB")
        if azurite is None and repo is not None and (repo / _AZURITE_BLOB).is_file():
            azurite = repo / _AZURITE_BLOB
        which_path = env.get("PATH")
        return cls(
            cache_dir=cache_root,
            modules_dir=path("SQLHARBOR_CONTROLPLANE_MODULES")
            or (repo / GO_MODULES if repo is not None else None),
            go=shutil.which("go", path=which_path),
            kubebuilder_assets=path("KUBEBUILDER_ASSETS"),
            kube_apiserver=path("SQLHARBOR_KUBE_APISERVER"),
            etcd=path("SQLHARBOR_ETCD"),
            kubectl=path("SQLHARBOR_KUBECTL") or _which("kubectl", which_path),
            node=shutil.which("node", path=which_path),
            azurite_blob=azurite,
        )


def _which(name: str, search_path: str | None) -> Path | None:
    found = shutil.which(name, path=search_path)
    return Path(found) if found else None
