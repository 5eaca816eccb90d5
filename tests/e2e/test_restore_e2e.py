"""Restores end to end: real kube-apiserver and Azurite, the operator and one agent (serving two
SqlInstances) as real processes, the simulated engine under a workload.

One stack per module (backups take a minute to produce a window worth restoring into);
each test then drives one restore: ``kubectl apply`` of a RestoreJob onto ANOTHER instance,
the ``sqlharbor restore`` CLI, restore-as-files from a vault source, and a refused restore
onto an existing database.  Restored content is compared with the source as of the target
second by ``sqlharbor-dev simulate-compare`` (the source's journal replayed).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlharbor_agent.engines.simulated import open_simulated_engine
from sqlharbor_devtools.demo.stack import Stack
from sqlharbor_devtools.devenv.controlplane import ControlPlane

from sqlharbor.api import API_VERSION, RestorePhase, contract
from sqlharbor.errors import ErrorCode

from .harness import E2E, module_e2e

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SOURCE_ID = "rvm1"  # vault identity of sim-a (default instance)
OTHER_ID = "rvm2"


@dataclass(frozen=True)
class Env:
    e2e: E2E
    target_time: str  # a second inside sales' window, not its end

    @property
    def stack(self) -> Stack:
        return self.e2e.stack

    @property
    def ns(self) -> str:
        return self.e2e.namespace


@pytest.fixture(scope="module")
def env(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with module_e2e(control_plane, tmp_path_factory.mktemp("restore-e2e"), "e2e-r") as e2e:
        stack = e2e.stack
        e2e.apply_vault_and_policy(full="0 1 * * 0", differential=None, log="30s")
        e2e.instance("sim-a", SOURCE_ID, {"sales": "FULL", "taken": "FULL"})
        e2e.instance("sim-b", OTHER_ID, {"other": "FULL"})
        e2e.protect("sim-a", "sales")
        stack.start_workload("w", e2e.root, SOURCE_ID, ["sales"], rate=20)
        stack.start_operator()
        e2e.start_agent("rvm", ["sim-a", "sim-b"])

        def window() -> dict[str, Any] | None:
            status = e2e.pd_status("sim-a-sales")
            if "lastLog" not in status or int(status.get("recoveryPoints", 0)) < 3:
                return None
            return dict(status)

        status = e2e.wait("a full and two logs of sales", window, timeout=150)
        full = datetime.fromisoformat(status["lastFull"]["time"])
        last = datetime.fromisoformat(status["lastLog"]["time"])
        middle = full + (last - full) / 2
        target = middle.replace(microsecond=0)
        assert full < target < last
        yield Env(e2e, target.astimezone(UTC).isoformat().replace("+00:00", "Z"))


def _restore_job(
    name: str, source: dict[str, Any], target: dict[str, Any], point: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "RestoreJob",
        "metadata": {"name": name},
        "spec": {"source": source, "target": target, "pointInTime": point},
    }


def _apply(env: Env, doc: dict[str, Any]) -> None:
    env.stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))


def _finished(env: Env, name: str, timeout: float = 90) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = env.stack.client.get_raw("RestoreJob", env.ns, name).get("status") or {}
        return dict(status) if contract.is_finished({"status": status}) else None

    result: dict[str, Any] = env.e2e.wait(f"RestoreJob {name} to finish", done, timeout=timeout)
    return result


def _compare(
    env: Env, source: str, target: str, target_instance: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sqlharbor_devtools",
            "simulate-compare",
            "--root",
            str(env.e2e.root),
            "--instance",
            SOURCE_ID,
            "--source",
            source,
            "--target",
            target,
            "--target-instance",
            target_instance,
            "--as-of",
            env.target_time,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_kubectl_restore_to_another_instance_matches_source_at_that_second(env: Env) -> None:
    _apply(
        env,
        _restore_job(
            "to-other",
            {"protectedDatabase": "sim-a-sales"},
            {"database": {"instanceRef": {"name": "sim-b"}, "databaseName": "sales_copy"}},
            {"time": env.target_time},
        ),
    )
    status = _finished(env, "to-other")
    assert status["phase"] == RestorePhase.SUCCEEDED, status
    plan = status["plan"]
    assert plan["steps"][0]["backupType"] == "Full"
    assert plan["steps"][-1]["backupType"] == "Log"
    assert plan["stopAt"] is not None
    assert status["progress"]["percent"] == 100
    assert status["progress"]["bytesDone"] == status["progress"]["bytesTotal"] > 0
    labels = env.stack.client.get_raw("RestoreJob", env.ns, "to-other")["metadata"]["labels"]
    assert labels[contract.LABEL_TARGET_INSTANCE] == "sim-b"
    result = _compare(env, "sales", "sales_copy", OTHER_ID)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MATCH" in result.stdout
    # the comparison is not vacuous: the source kept changing after the target second
    now_rows = open_simulated_engine(env.e2e.root, SOURCE_ID).rows("sales")
    copy_rows = open_simulated_engine(env.e2e.root, OTHER_ID).rows("sales_copy")
    assert copy_rows
    assert copy_rows != now_rows


def test_cli_restore_and_points(env: Env) -> None:
    kubeconfig = str(env.stack.plane.kubeconfig)
    base = [str(Path(sys.executable).with_name("sqlharbor"))]  # the installed console script
    points = subprocess.run(
        [*base, "points", "sim-a-sales", "-n", env.ns, "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert points.returncode == 0, points.stderr
    assert "recovery window:" in points.stdout
    assert "Full" in points.stdout
    listing = subprocess.run(
        [*base, "points", "--vault", "demo-vault", "-n", env.ns, "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listing.returncode == 0, listing.stderr
    assert "sales" in listing.stdout
    assert SOURCE_ID in listing.stdout

    result = subprocess.run(
        [
            *base,
            "restore",
            "sim-a-sales",
            "-n",
            env.ns,
            "--kubeconfig",
            kubeconfig,
            "--to-time",
            env.target_time,
            "--target-instance",
            "sim-a",
            "--as-database",
            "sales_cli",
            "--timeout",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert RestorePhase.SUCCEEDED in result.stdout
    compare = _compare(env, "sales", "sales_cli", SOURCE_ID)
    assert compare.returncode == 0, compare.stdout + compare.stderr


def test_restore_as_files_from_a_vault_source(env: Env, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    _apply(
        env,
        _restore_job(
            "as-files",
            {
                "vault": {
                    "vaultRef": {"name": "demo-vault"},
                    "instance": SOURCE_ID,
                    "databaseName": "sales",
                }
            },
            {"files": {"instanceRef": {"name": "sim-b"}, "path": str(folder)}},
            {"time": env.target_time},
        ),
    )
    status = _finished(env, "as-files")
    assert status["phase"] == RestorePhase.SUCCEEDED, status
    description = json.loads((folder / "restore-sequence.json").read_text())
    sequence = description["sequence"]
    assert [s["order"] for s in sequence] == list(range(1, len(sequence) + 1))
    assert sequence[0]["type"] == "Full"
    assert all(s["type"] == "Log" for s in sequence[1:])
    assert len(sequence) == len(status["plan"]["steps"]) >= 2
    for previous, current in itertools.pairwise(sequence[1:]):
        assert current["firstLsn"] == previous["lastLsn"]  # the log chain, in order
    for step in sequence:
        assert (folder / step["file"]).stat().st_size == step["bytes"] > 0
    assert description["stopAt"] is not None
    statements = description["restoreStatements"]
    assert statements[0].startswith("RESTORE DATABASE [sales]")
    assert "STOPAT" in statements[-2]
    assert statements[-1].endswith("WITH RECOVERY;")


def test_restore_onto_existing_database_without_overwrite_is_refused(env: Env) -> None:
    engine = open_simulated_engine(env.e2e.root, SOURCE_ID)
    before = (engine.database("taken"), engine.rows("taken"))
    _apply(
        env,
        _restore_job(
            "refused",
            {"protectedDatabase": "sim-a-sales"},
            {"database": {"instanceRef": {"name": "sim-a"}, "databaseName": "taken"}},
            {"latest": True},
        ),
    )
    status = _finished(env, "refused", timeout=30)
    assert status["phase"] == RestorePhase.FAILED
    assert status["error"]["code"] == ErrorCode.TARGET_EXISTS
    assert "plan" not in status  # refused before any data moved
    assert "agentSession" not in status
    assert (engine.database("taken"), engine.rows("taken")) == before
    again = env.stack.client.get_raw("RestoreJob", env.ns, "refused")["status"]
    assert again["phase"] == RestorePhase.FAILED
