"""An in-place restore end to end: real kube-apiserver and Azurite, the operator and one agent
as real processes, the simulated engine under a workload.

``sales`` is backed up, then restored ONTO ITSELF to an earlier second (a RestoreJob with
``overwrite``).  As on SQL Server the database keeps its GUID and starts a new recovery
fork whose LSNs overlap the old fork's.  Then: discovery reports the new fork, the
operator's next backup is an auto-heal full with reason ``DatabaseRestoredInPlace``, the
vault holds points of both forks under one GUID, and restores to a second on either
fork give exactly the content the database had then.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlharbor_agent.engines.simulated import open_simulated_engine
from sqlharbor_devtools.demo.stack import Process, Stack
from sqlharbor_devtools.devenv.controlplane import ControlPlane

from sqlharbor.api import API_VERSION, JobPhase, RestorePhase, contract

from .harness import E2E, module_e2e

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SOURCE_ID = "fvm1"
OTHER_ID = "fvm2"


@dataclass
class Env:
    e2e: E2E
    workload: Process

    @property
    def stack(self) -> Stack:
        return self.e2e.stack


@pytest.fixture(scope="module")
def env(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with module_e2e(control_plane, tmp_path_factory.mktemp("forks-e2e"), "e2e-f") as e2e:
        e2e.apply_vault_and_policy(full="0 1 * * 0", differential=None, log="30s")
        e2e.instance("sim-a", SOURCE_ID, {"sales": "FULL"})
        e2e.instance("sim-b", OTHER_ID, {"other": "FULL"})
        e2e.protect("sim-a", "sales")
        workload = e2e.stack.start_workload("w", e2e.root, SOURCE_ID, ["sales"], rate=20)
        e2e.stack.start_operator()
        e2e.start_agent("fvm", ["sim-a", "sim-b"])
        yield Env(e2e, workload)


def _second(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _middle(a: str, b: str) -> datetime:
    start, end = datetime.fromisoformat(a), datetime.fromisoformat(b)
    return (start + (end - start) / 2).replace(microsecond=0)


def _restore(env: Env, point: str, target: dict[str, Any]) -> dict[str, Any]:
    name = f"r-{uuid.uuid4().hex[:8]}"
    doc = {
        "apiVersion": API_VERSION,
        "kind": "RestoreJob",
        "metadata": {"name": name},
        "spec": {
            "source": {"protectedDatabase": "sim-a-sales"},
            "target": {"database": target},
            "pointInTime": {"time": point},
        },
    }
    env.stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))

    def done() -> dict[str, Any] | None:
        status = env.stack.client.get_raw("RestoreJob", env.e2e.namespace, name).get("status")
        return dict(status) if status and contract.is_finished({"status": status}) else None

    result: dict[str, Any] = env.e2e.wait(f"RestoreJob {name}", done, timeout=120)
    assert result["phase"] == RestorePhase.SUCCEEDED, result
    return result


def _sales(env: Env) -> dict[str, Any] | None:
    inst = env.stack.client.get_raw("SqlInstance", env.e2e.namespace, "sim-a")
    for db in (inst.get("status") or {}).get("databases") or []:
        if db["name"] == "sales":
            return dict(db)
    return None


def _rows(root: Path, instance: str, database: str, **as_of: Any) -> dict[int, bytes]:
    engine = open_simulated_engine(root, instance)
    try:
        return engine.rows_as_of(database, **as_of) if as_of else engine.rows(database)
    finally:
        engine.close()


def test_an_in_place_restore_starts_a_fork_that_heals_and_both_forks_restore(env: Env) -> None:
    e2e, root = env.e2e, env.e2e.root

    def first_logs() -> dict[str, Any] | None:
        status = e2e.pd_status("sim-a-sales")
        if "lastLog" not in status or int(status.get("recoveryPoints", 0)) < 3:
            return None
        return status

    status = e2e.wait("a full and two logs of sales", first_logs, timeout=150)
    before_fork = _middle(status["lastFull"]["time"], status["lastLog"]["time"])
    expected_then = _rows(root, SOURCE_ID, "sales", time=before_fork)
    assert expected_then, "the workload wrote nothing before the chosen second"
    old = _sales(env)
    assert old is not None
    assert old.get("recoveryForkGuid")

    # restore sales onto itself at that second, with the workload paused
    env.workload.stop()
    _restore(
        env,
        _second(before_fork),
        {"instanceRef": {"name": "sim-a"}, "databaseName": "sales", "overwrite": True},
    )
    assert _rows(root, SOURCE_ID, "sales") == expected_then
    env.workload = env.stack.start_workload("w2", root, SOURCE_ID, ["sales"], rate=20)

    # same GUID, a new fork: discovery says so, and the next backup is a full that heals
    def new_fork() -> dict[str, Any] | None:
        db = _sales(env)
        fork = db and db.get("recoveryForkGuid")
        return db if fork and fork != old["recoveryForkGuid"] else None

    now = e2e.wait("discovery to report the new recovery fork", new_fork, timeout=60)
    assert now["databaseGuid"] == old["databaseGuid"]

    def heal_full() -> dict[str, Any] | None:
        for job in e2e.jobs():
            spec, st = job["spec"], job.get("status") or {}
            if (
                "DatabaseRestoredInPlace" in (spec.get("reasonMessage") or "")
                and st.get("phase") == JobPhase.SUCCEEDED
            ):
                return dict(job)
        return None

    healed = e2e.wait("an auto-heal full after the in-place restore", heal_full, timeout=90)
    assert healed["spec"]["type"] == "Full"
    assert healed["spec"]["reason"] == "AutoHeal"
    heal_finish = datetime.fromisoformat(healed["status"]["databases"][0]["finish"])
    seen: set[datetime] = set()  # log finishes after the heal (jobs are garbage collected)

    def two_logs_after_heal() -> datetime | None:
        for job in e2e.jobs():
            st = job.get("status") or {}
            if job["spec"]["type"] != "Log" or st.get("phase") != JobPhase.SUCCEEDED:
                continue
            for db in st.get("databases") or []:
                finish = db.get("finish") and datetime.fromisoformat(db["finish"])
                if db.get("name") == "sales" and finish and finish > heal_finish:
                    seen.add(finish)
        return max(seen) if len(seen) >= 2 else None

    last_log = e2e.wait("two logs on the new fork", two_logs_after_heal, timeout=120)
    after_fork = (heal_finish + (last_log - heal_finish) / 2).replace(microsecond=0)

    # a second on the new fork: its content as the database had it then
    _restore(
        env,
        _second(after_fork),
        {"instanceRef": {"name": "sim-b"}, "databaseName": "after_fork", "overwrite": True},
    )
    assert _rows(root, OTHER_ID, "after_fork") == _rows(root, SOURCE_ID, "sales", time=after_fork)
    # a second on the old fork, planned from the same vault folder (same GUID)
    _restore(
        env,
        _second(before_fork),
        {"instanceRef": {"name": "sim-b"}, "databaseName": "before_fork", "overwrite": True},
    )
    assert _rows(root, OTHER_ID, "before_fork") == expected_then
