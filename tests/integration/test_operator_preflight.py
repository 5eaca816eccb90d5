"""On a real API server: the operator refuses to start while its CRDs are not served (kopf's
resource scanning is off, so it would never notice them later), and starts once they are.

Runs on a private control plane so the CRDs can be absent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlharbor_devtools.devenv import ControlPlane, crd_dir, require_repo_root
from sqlharbor_devtools.devenv.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def bare_plane(control_plane: ControlPlane, tmp_path: Path) -> Iterator[ControlPlane]:
    # depends on control_plane only so that the binaries are known to be there
    plane = ControlPlane.up(tmp_path / "plane")
    try:
        yield plane
    finally:
        plane.down()


def _operator(kubeconfig: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            # cluster-wide, one replica: no leader Lease (and no namespace for one) needed
            [
                sys.executable,
                "-m",
                "sqlharbor_operator",
                "--kubeconfig",
                str(kubeconfig),
                "--no-leader-elect",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_the_operator_starts_only_when_its_kinds_are_served(
    bare_plane: ControlPlane, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    refused = _operator(bare_plane.kubeconfig, log)
    try:
        assert refused.wait(60) != 0
    finally:
        refused.kill()
    assert "install the CRDs first (kubectl apply -k config/crd)" in log.read_text()

    bare_plane.apply_crds(crd_dir(require_repo_root()))
    started = _operator(bare_plane.kubeconfig, log)
    try:
        wait_for(
            lambda: "Activity 'configure' succeeded" in log.read_text(),
            timeout=60,
            what="the operator to start",
            abort=lambda: None if started.poll() is None else f"exited {started.returncode}",
        )
    finally:
        started.terminate()
        started.wait(30)
