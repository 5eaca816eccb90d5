"""The local control plane for development, tests and the demo (``sqlharbor-dev``).

Real etcd and kube-apiserver (built from the Go module proxy and cached when no prebuilt
binaries are given), Azurite as the Azure Blob endpoint, and real kubectl.  Used by the CLI
(:mod:`sqlharbor_devtools.cli.dev`), ``tests/conftest.py`` and the demo::

    plane = ControlPlane.up(Path(".sqlharbor-dev"))
    plane.kubeconfig, plane.blob_connection_string, plane.env()
    agent_kubeconfig = plane.create_service_account_kubeconfig("sqlharbor", "agent-vm1")
    plane.down()
"""

from __future__ import annotations

from sqlharbor_devtools.devenv.azurite import BlobTarget
from sqlharbor_devtools.devenv.binaries import Binaries, resolve_binaries, resolve_kubectl
from sqlharbor_devtools.devenv.checkout import crd_dir, find_repo_root, require_repo_root
from sqlharbor_devtools.devenv.controlplane import ControlPlane
from sqlharbor_devtools.devenv.crds import apply_crds
from sqlharbor_devtools.devenv.errors import (
    DevEnvError,
    NoCheckoutError,
    NotRunningError,
    ToolMissingError,
)
from sqlharbor_devtools.devenv.kubectl import KubectlFailed, KubectlRunner
from sqlharbor_devtools.devenv.serviceaccounts import create_service_account_kubeconfig
from sqlharbor_devtools.devenv.state import default_state_dir
from sqlharbor_devtools.devenv.toolchain import Toolchain

__all__ = [
    "Binaries",
    "BlobTarget",
    "ControlPlane",
    "DevEnvError",
    "KubectlFailed",
    "KubectlRunner",
    "NoCheckoutError",
    "NotRunningError",
    "ToolMissingError",
    "Toolchain",
    "apply_crds",
    "crd_dir",
    "create_service_account_kubeconfig",
    "default_state_dir",
    "find_repo_root",
    "require_repo_root",
    "resolve_binaries",
    "resolve_kubectl",
]
