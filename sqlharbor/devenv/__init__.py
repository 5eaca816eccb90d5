"""The local control plane for development, tests and the demo (``sqlharbor dev``).

Real etcd and kube-apiserver (built from the Go module proxy and cached when no prebuilt
binaries are given), Azurite as the Azure Blob endpoint, and real kubectl.  Used by the CLI
(:mod:`sqlharbor.cli.dev`), ``tests/conftest.py`` and the demo::

    plane = ControlPlane.up(Path(".sqlharbor-dev"))
    plane.kubeconfig, plane.blob_connection_string, plane.env()
    agent_kubeconfig = plane.create_service_account_kubeconfig("sqlharbor", "agent-vm1")
    plane.down()
"""

from __future__ import annotations

from sqlharbor.devenv.azurite import BlobTarget
from sqlharbor.devenv.binaries import Binaries, resolve_binaries, resolve_kubectl
from sqlharbor.devenv.controlplane import ControlPlane
from sqlharbor.devenv.crds import apply_crds
from sqlharbor.devenv.errors import DevEnvError, NotRunningError, ToolMissingError
from sqlharbor.devenv.kubectl import KubectlFailed, KubectlRunner
from sqlharbor.devenv.serviceaccounts import create_service_account_kubeconfig
from sqlharbor.devenv.state import default_state_dir
from sqlharbor.devenv.toolchain import Toolchain, find_repo_root

__all__ = [
    "Binaries",
    "BlobTarget",
    "ControlPlane",
    "DevEnvError",
    "KubectlFailed",
    "KubectlRunner",
    "NotRunningError",
    "ToolMissingError",
    "Toolchain",
    "apply_crds",
    "create_service_account_kubeconfig",
    "default_state_dir",
    "find_repo_root",
    "resolve_binaries",
    "resolve_kubectl",
]
