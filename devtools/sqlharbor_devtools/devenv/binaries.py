"""Find or build etcd, kube-apiserver and kubectl for the local control plane.

Called by :mod:`sqlharbor_devtools.devenv.controlplane` (``up``),
:mod:`sqlharbor_devtools.devenv.crds` and ``sqlharbor-dev build``.  Order of preference:
explicit paths (``SQLHARBOR_KUBE_APISERVER``, ``SQLHARBOR_ETCD``, ``SQLHARBOR_KUBECTL``),
``KUBEBUILDER_ASSETS``, an installed kubectl, the build cache
``<cache>/<name>-<version>/<name>``, and last ``go build`` from the pinned modules in the
checkout's ``devtools/controlplane-go`` (the versions come from their go.mod files, so the
cache is keyed by what is built, not where the modules live, and only the first run pays).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlharbor_devtools.devenv.errors import DevEnvError, ToolMissingError
from sqlharbor_devtools.devenv.toolchain import Toolchain

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GoTool:
    """A binary built from one of the pinned Go modules."""

    name: str
    module_dir: str
    package: str
    versioned_module: str
    minutes: int


KUBE_APISERVER = GoTool(
    "kube-apiserver", "kube", "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes", 5
)
ETCD = GoTool("etcd", "etcd", "go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/server/v3", 2)
KUBECTL = GoTool("kubectl", "kube", "k8s.io/kubernetes/cmd/kubectl", "k8s.io/kubernetes", 3)


@dataclass(frozen=True)
class Binaries:
    """The two server binaries ``up`` runs."""

    kube_apiserver: Path
    etcd: Path


def module_version(go_mod: Path, module: str) -> str:
    """The version ``go_mod`` requires of ``module`` (``v1.32.4``)."""
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", re.MULTILINE)
    match = pattern.search(go_mod.read_text())
    if match is None:
        raise DevEnvError(f"{go_mod} does not require {module}")
    return match.group(1)


def _ldflags(tool: GoTool, version: str) -> str:
    flags = ["-s", "-w"]
    if tool.versioned_module == "k8s.io/kubernetes":
        major, minor = version.lstrip("v").split(".")[:2]
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [
                f"-X {pkg}.gitVersion={version}",
                f"-X {pkg}.gitMajor={major}",
                f"-X {pkg}.gitMinor={minor}",
                f"-X {pkg}.gitTreeState=clean",
            ]
    return " ".join(flags)


def cached_path(tool: GoTool, toolchain: Toolchain) -> Path:
    """Where the build cache keeps ``tool`` at the version its go.mod pins."""
    if toolchain.modules_dir is None:
        raise ToolMissingError(
            f"cannot build {tool.name}: the Go modules (devtools/controlplane-go) were not found; "
            "run from a sqlharbor checkout, or set SQLHARBOR_CHECKOUT or "
            "SQLHARBOR_CONTROLPLANE_MODULES"
        )
    version = module_version(
        toolchain.modules_dir / tool.module_dir / "go.mod", tool.versioned_module
    )
    return toolchain.cache_dir / f"{tool.name}-{version}" / tool.name


def build(tool: GoTool, toolchain: Toolchain, progress: Progress) -> Path:
    """Return the cached build of ``tool``, running ``go build`` first if there is none."""
    target = cached_path(tool, toolchain)
    if target.is_file():
        return target
    if toolchain.go is None:
        raise ToolMissingError(f"cannot build {tool.name}: no `go` on PATH")
    assert toolchain.modules_dir is not None  # cached_path checked it
    version = target.parent.name.removeprefix(f"{tool.name}-")
    progress(
        f"building {tool.name} {version} from the Go module proxy "
        f"(first run only, ~{tool.minutes} min)..."
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{tool.name}-", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        result = subprocess.run(
            [
                toolchain.go,
                "build",
                "-trimpath",
                "-ldflags",
                _ldflags(tool, version),
                "-o",
                str(tmp),
                tool.package,
            ],
            cwd=toolchain.modules_dir / tool.module_dir,
            env={**os.environ, "CGO_ENABLED": "0"},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DevEnvError(f"go build {tool.package} failed:\n{result.stderr[-4000:]}")
        tmp.chmod(0o755)
        tmp.replace(target)  # atomic: a concurrent builder sees all or nothing
    finally:
        tmp.unlink(missing_ok=True)
    progress(f"built {target}")
    return target


def _explicit(path: Path | None, what: str) -> Path | None:
    if path is None:
        return None
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolMissingError(f"{what} is set to {path}, which is not an executable file")
    return path


def resolve_binaries(toolchain: Toolchain, progress: Progress) -> Binaries:
    """kube-apiserver and etcd: explicit paths, then KUBEBUILDER_ASSETS, then cache/build."""
    assets = toolchain.kubebuilder_assets
    apiserver = _explicit(toolchain.kube_apiserver, "SQLHARBOR_KUBE_APISERVER")
    etcd = _explicit(toolchain.etcd, "SQLHARBOR_ETCD")
    if assets is not None:
        apiserver = apiserver or _explicit(assets / "kube-apiserver", "KUBEBUILDER_ASSETS")
        etcd = etcd or _explicit(assets / "etcd", "KUBEBUILDER_ASSETS")
    return Binaries(
        kube_apiserver=apiserver or build(KUBE_APISERVER, toolchain, progress),
        etcd=etcd or build(ETCD, toolchain, progress),
    )


def resolve_kubectl(toolchain: Toolchain, progress: Progress) -> Path:
    """kubectl: SQLHARBOR_KUBECTL or the one on PATH, else KUBEBUILDER_ASSETS, else built."""
    if toolchain.kubectl is not None:
        return toolchain.kubectl
    if toolchain.kubebuilder_assets is not None:
        candidate = toolchain.kubebuilder_assets / "kubectl"
        if candidate.is_file():
            return candidate
    return build(KUBECTL, toolchain, progress)
