"""Install CustomResourceDefinitions into a cluster and wait until they are Established.

Called by :meth:`sqlharbor_devtools.devenv.ControlPlane.apply_crds`, ``sqlharbor-dev up --crds`` and
the pytest ``control_plane`` fixture.  Uses kubectl (server-side apply) so what the tests do
is what a user does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from sqlharbor_devtools.devenv.errors import DevEnvError


def crd_names(files: list[Path]) -> list[str]:
    """``metadata.name`` of every CustomResourceDefinition document in ``files``."""
    names = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                meta: dict[str, Any] = doc.get("metadata") or {}
                names.append(str(meta["name"]))
    return names


def _kubectl(kubectl: Path, kubeconfig: Path, *args: str) -> None:
    result = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DevEnvError(f"kubectl {args[0]} failed: {result.stderr.strip()}")


def apply_crds(
    kubeconfig: Path, crd_dir: Path, *, kubectl: Path, timeout: float = 60.0
) -> list[str]:
    """Apply ``crd_dir/*.yaml`` (server-side) and wait for Established; return the CRD names."""
    files = sorted(crd_dir.glob("*.yaml"))
    if not files:
        return []
    names = crd_names(files)
    apply_args = ["apply", "--server-side", "--force-conflicts", "--field-manager=sqlharbor-dev"]
    for path in files:
        apply_args += ["-f", str(path)]
    _kubectl(kubectl, kubeconfig, *apply_args)
    if names:
        _kubectl(
            kubectl,
            kubeconfig,
            "wait",
            "--for=condition=Established",
            f"--timeout={int(timeout)}s",
            *(f"crd/{n}" for n in names),
        )
    return names
