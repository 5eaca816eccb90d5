"""Install CustomResourceDefinitions into a cluster and wait until they are Established.

Called by :meth:`sqlharbor_devtools.devenv.ControlPlane.apply_crds`, ``sqlharbor-dev up --crds`` and
the pytest ``control_plane`` fixture.  Uses kubectl (server-side apply) so what the tests do
is what a user does: a folder with a ``kustomization.yaml`` (the checkout's ``config/crd``,
:func:`sqlharbor_devtools.devenv.checkout.crd_dir`) is applied with ``-k``, any other folder
as its ``*.yaml`` files.  With the checkout's ``config/crd`` comes the rest of what
``config/default`` installs cluster-wide besides the operator: the agent fence policy of
its sibling ``config/policy`` (every test and the demo run their agents inside it).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from sqlharbor_devtools.devenv.errors import DevEnvError


def crd_names(files: list[Path]) -> list[str]:
    """``metadata.name`` of every CustomResourceDefinition document in ``files``."""
    return _names([doc for path in files for doc in yaml.safe_load_all(path.read_text())])


def _names(documents: list[Any]) -> list[str]:
    names = []
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            meta: dict[str, Any] = doc.get("metadata") or {}
            names.append(str(meta["name"]))
    return names


def _kubectl(kubectl: Path, kubeconfig: Path | None, *args: str) -> str:
    config = [] if kubeconfig is None else [f"--kubeconfig={kubeconfig}"]
    result = subprocess.run(
        [str(kubectl), *config, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DevEnvError(f"kubectl {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def apply_crds(
    kubeconfig: Path, crd_dir: Path, *, kubectl: Path, timeout: float = 60.0
) -> list[str]:
    """Apply ``crd_dir`` (server-side) and wait for Established; return the CRD names.

    ``crd_dir`` is a kustomization (``kubectl apply -k``) or a folder of ``*.yaml`` files."""
    apply_args = ["apply", "--server-side", "--force-conflicts", "--field-manager=sqlharbor-dev"]
    if (crd_dir / "kustomization.yaml").is_file():
        rendered = _kubectl(kubectl, None, "kustomize", str(crd_dir))
        names = _names(list(yaml.safe_load_all(rendered)))
        apply_args += ["-k", str(crd_dir)]
    else:
        files = sorted(crd_dir.glob("*.yaml"))
        if not files:
            return []
        names = crd_names(files)
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
    policy = crd_dir.parent / "policy"
    if (crd_dir / "kustomization.yaml").is_file() and (policy / "kustomization.yaml").is_file():
        _kubectl(kubectl, kubeconfig, *apply_args[:4], "-k", str(policy))
    return names
