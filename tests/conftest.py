"""Shared pytest harness: the local control plane and fixtures built on it.

Fixtures are lazy: only tests that request them (directly or through another fixture)
start anything, so ``tests/unit`` never touches a control plane.  Any test that uses
``control_plane`` is marked ``integration`` automatically.

- ``control_plane`` (session): a running :class:`sqlharbor_devtools.devenv.ControlPlane`.
  Reuses the one ``$SQLHARBOR_DEV_DIR`` points at when it runs (and leaves it running);
  else starts its own in a temporary directory and stops it at the end.  The CRDs of the
  checkout's ``config/crd`` are applied and Established.  When Go/binaries or node/Azurite are
  absent the tests are skipped with the reason, unless ``SQLHARBOR_REQUIRE_CONTROL_PLANE=1``
  (CI), which turns that into an error.
- ``kubectl`` (session): ``kubectl(*args, input=None, check=True) -> CompletedProcess``
  as the admin; ``.with_kubeconfig(path)`` runs as someone else.
- ``namespace`` (function): a fresh namespace, deleted (without waiting) afterwards.
- ``azurite`` (session): the Azurite connection string.
- ``blob_service`` (function): ``BlobTarget(connection_string, container)`` with a fresh,
  not yet created container name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlharbor_devtools.devenv import (
    BlobTarget,
    ControlPlane,
    KubectlRunner,
    Toolchain,
    ToolMissingError,
    apply_crds,
    crd_dir,
    find_repo_root,
    resolve_kubectl,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "control_plane" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


def _progress(config: pytest.Config, message: str) -> None:
    capture = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if capture is None or reporter is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"[sqlharbor-dev] {message}")


def _tool_missing(exc: ToolMissingError) -> None:
    if os.environ.get("SQLHARBOR_REQUIRE_CONTROL_PLANE") == "1":
        raise exc
    pytest.skip(f"local control plane unavailable: {exc} ({exc.remediation})")


@pytest.fixture(scope="session")
def dev_toolchain() -> Toolchain:
    """Where the control plane's binaries, kubectl and Azurite come from (read from env)."""
    return Toolchain.from_env()


@pytest.fixture(scope="session")
def control_plane(
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    dev_toolchain: Toolchain,
) -> Iterator[ControlPlane]:
    """A running control plane with the CRDs installed (see the module docstring)."""
    existing_dir = os.environ.get("SQLHARBOR_DEV_DIR")
    plane = ControlPlane.find(Path(existing_dir)) if existing_dir else None
    owned = plane is None
    if plane is None:
        try:
            plane = ControlPlane.up(
                tmp_path_factory.mktemp("controlplane"),
                toolchain=dev_toolchain,
                progress=lambda m: _progress(pytestconfig, m),
            )
        except ToolMissingError as exc:
            _tool_missing(exc)
            raise
    try:
        repo = find_repo_root()
        if repo is not None and (crd_dir(repo) / "kustomization.yaml").is_file():
            kubectl = resolve_kubectl(dev_toolchain, lambda m: _progress(pytestconfig, m))
            apply_crds(plane.kubeconfig, crd_dir(repo), kubectl=kubectl)
        yield plane
    finally:
        if owned:
            plane.down()


@pytest.fixture(scope="session")
def kubectl(
    pytestconfig: pytest.Config, control_plane: ControlPlane, dev_toolchain: Toolchain
) -> KubectlRunner:
    """Run kubectl as the control plane's admin."""
    try:
        path = resolve_kubectl(dev_toolchain, lambda m: _progress(pytestconfig, m))
    except ToolMissingError as exc:
        _tool_missing(exc)
        raise
    return KubectlRunner(path, control_plane.kubeconfig)


@pytest.fixture
def namespace(kubectl: KubectlRunner) -> Iterator[str]:
    """A fresh namespace for one test (deletion is not awaited: no controller-manager)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def azurite(control_plane: ControlPlane) -> str:
    """The connection string of the control plane's Azurite (public dev account)."""
    return control_plane.blob_connection_string


@pytest.fixture
def blob_service(azurite: str) -> BlobTarget:
    """The Azurite connection string and a fresh container name (not created yet)."""
    return BlobTarget(connection_string=azurite, container=f"t-{uuid.uuid4().hex[:12]}")
