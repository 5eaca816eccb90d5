"""The system survives an Azurite restart and a kube-apiserver restart: the agent and the
operator keep running, retry with backoff, and backups resume (issue: backups end to end).

Runs on a private control plane so that restarting its components cannot disturb other
tests.  The outages are real: the process is stopped, stays down for a few seconds, and is
started again with the same command line, port and data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlharbor_devtools.demo import scenario
from sqlharbor_devtools.demo.stack import Stack
from sqlharbor_devtools.devenv import crd_dir, require_repo_root
from sqlharbor_devtools.devenv.controlplane import ControlPlane

from .harness import E2E, Window, assert_no_forbidden

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

OUTAGE_SECONDS = 8


@pytest.fixture
def private(
    control_plane: ControlPlane, tmp_path: Path
) -> Iterator[tuple[E2E, list[Any], list[Window]]]:
    # depends on control_plane only so that the binaries are known to be there
    plane = ControlPlane.up(tmp_path / "plane")
    plane.apply_crds(crd_dir(require_repo_root()))
    stack = Stack(plane, f"r-{uuid.uuid4().hex[:6]}", tmp_path / "stack")
    stack.create_namespace()
    stack.install_vault_secrets()
    restarted: list[Any] = []
    outages: list[Window] = []  # kill of the API server until its /readyz passes again
    try:
        yield E2E(stack, tmp_path / "simulated"), restarted, outages
        assert_no_forbidden(stack, excused=outages)
    finally:
        stack.stop()
        for process in restarted:
            process.terminate()
            process.wait(20)
        plane.down()


def _restart(plane: ControlPlane, name: str, outage: float) -> subprocess.Popen[bytes]:
    record = next(p for p in plane.processes if p.name == name)
    proc = Path(f"/proc/{record.pid}")
    argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
    env = dict(
        line.split("=", 1)
        for line in (proc / "environ").read_bytes().decode(errors="replace").split("\0")
        if "=" in line
    )
    cwd = os.readlink(proc / "cwd")
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while proc.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(outage)  # the outage itself, not a wait for a condition
    with record.log.open("ab") as log:
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def test_backups_resume_after_azurite_and_apiserver_restarts(
    private: tuple[E2E, list[Any], list[Window]],
) -> None:
    e2e, restarted, outages = private
    plane = e2e.stack.plane
    e2e.stack.apply(
        [
            scenario.vault(container=e2e.container),
            scenario.policy(full="0 1 * * 0", differential=None, log="30s"),
        ]
    )
    identity = e2e.instance("sim1", "vm1", {"sales": "FULL"})
    e2e.protect("sim1", "sales")
    e2e.stack.start_workload("w", e2e.root, identity, ["sales"], rate=10)
    operator = e2e.stack.start_operator()
    agent = e2e.start_agent("vm1", ["sim1"])
    e2e.wait("a full and a log", lambda: "lastLog" in e2e.pd_status("sim1-sales"))

    for component in ("azurite", "kube-apiserver"):
        before = e2e.pd_status("sim1-sales")["lastLog"]["time"]
        down = datetime.now(UTC)
        restarted.append(_restart(plane, component, OUTAGE_SECONDS))
        e2e.wait(f"{component} ready again", plane.healthy, timeout=60)
        outages.append((down, datetime.now(UTC)))
        e2e.wait(
            f"a log backup after the {component} restart",
            lambda b=before: (
                e2e.pd_status("sim1-sales").get("lastLog", {}).get("time", "") > b
                and e2e.pd_status("sim1-sales").get("health") == "Healthy"
            ),
            timeout=180,
        )
        assert operator.alive(), operator.tail()
        assert agent.alive(), agent.tail()
