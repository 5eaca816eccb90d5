"""Backups end to end: real kube-apiserver and Azurite, the operator and agents as real
processes, the simulated engine under a workload (issue: backups end to end)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlharbor_agent.engines.simulated import open_simulated_engine
from sqlharbor_agent.engines.simulated.transactions import Operation

from sqlharbor.api import JobPhase, contract
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import ErrorCode
from sqlharbor.vault import AzureBlobStore

from .harness import E2E

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

FAST = {"full": "0 1 * * 0", "differential": None, "log": "30s"}


def _manifests(e2e: E2E) -> list[str]:
    store = AzureBlobStore.from_connection_string(
        e2e.stack.plane.blob_connection_string, e2e.container
    )
    return [b.name for b in store.list("demo/") if b.name.endswith("manifest.json")]


def _succeeded_results(e2e: E2E) -> list[dict[str, Any]]:
    return [
        r
        for job in e2e.jobs()
        for r in (job.get("status") or {}).get("databases", [])
        if r.get("phase") == JobPhase.SUCCEEDED
    ]


def test_policy_produces_fulls_differentials_and_logs(e2e: E2E) -> None:
    e2e.apply_vault_and_policy(full="*/30 * * * *", differential="* * * * *", log="30s")
    e2e.instance("sim1", "vm1", {"sales": "FULL", "stock": "FULL", "reports": "SIMPLE"})
    e2e.protect("sim1", "sales", "stock", "reports")
    e2e.stack.start_workload("w", e2e.root, "vm1", ["sales", "stock", "reports"], rate=10)
    e2e.stack.start_operator()
    e2e.start_agent("vm1", ["sim1"])

    first = e2e.wait(
        "first fulls",
        lambda: all(
            "lastFull" in e2e.pd_status(f"sim1-{db}") for db in ("sales", "stock", "reports")
        ),
    )
    assert first
    latest_before = e2e.pd_status("sim1-sales")["recoveryWindow"]["latest"]

    # every log job seen while waiting (garbage collection keeps only the last three)
    log_jobs: dict[str, dict[str, Any]] = {}

    def complete(db: str) -> bool:
        s = e2e.pd_status(f"sim1-{db}")
        return {"lastFull", "lastDifferential", "lastLog"} <= s.keys()

    def all_complete() -> bool:
        log_jobs.update(
            (j["metadata"]["name"], j) for j in e2e.jobs() if j["spec"]["type"] == "Log"
        )
        return complete("sales") and complete("stock")

    e2e.wait("a differential and a log of every FULL database", all_complete, timeout=150)
    sales = e2e.pd_status("sim1-sales")
    assert sales["recoveryWindow"]["latest"] > latest_before, "the recovery window advanced"
    assert sales["recoveryWindow"]["earliest"] <= sales["lastFull"]["time"]
    assert sales["health"] == "Healthy", sales.get("message")
    assert sales["logChain"] == "Healthy"
    ready = next(c for c in sales["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    # log chain as recorded: each later log starts where the one before ended
    assert int(sales["lastLog"]["lastLsn"]) > int(sales["lastFull"]["firstLsn"])

    reports = e2e.pd_status("sim1-reports")
    assert "lastLog" not in reports, "no log backups under SIMPLE recovery"
    assert reports["logChain"] == "NotApplicable"
    assert "SIMPLE recovery" in reports["message"]

    table = e2e.stack.kubectl("get", "protecteddatabases").stdout
    header, *rows = table.splitlines()
    for column in ("HEALTH", "LAST BACKUP", "EARLIEST", "LATEST", "RPO"):
        assert column in header
    assert any(
        "sim1-sales" in r and "Healthy" in r and sales["recoveryWindow"]["latestText"][:16] in r
        for r in rows
    ), table

    # log backups of both FULL databases travel in one job (they fall into step after
    # one round of log backups, which can take longer than the wait above on a busy host)
    def shared_log_job() -> bool:
        log_jobs.update(
            (j["metadata"]["name"], j) for j in e2e.jobs() if j["spec"]["type"] == "Log"
        )
        return any(len(j["spec"]["databases"]) == 2 for j in log_jobs.values())

    e2e.wait("a log job carrying both FULL databases", shared_log_job, timeout=120)
    assert len(_manifests(e2e)) == len(_succeeded_results(e2e))


def test_out_of_band_log_backup_triggers_auto_heal_full(e2e: E2E) -> None:
    e2e.apply_vault_and_policy(**FAST)
    identity = e2e.instance("sim1", "vm1", {"sales": "FULL"})
    e2e.protect("sim1", "sales")
    e2e.stack.start_workload("w", e2e.root, identity, ["sales"], rate=10)
    e2e.stack.start_operator()
    e2e.start_agent("vm1", ["sim1"])
    e2e.wait("a full and a log", lambda: "lastLog" in e2e.pd_status("sim1-sales"))
    first_full = e2e.pd_status("sim1-sales")["lastFull"]["recoveryPointId"]

    engine = open_simulated_engine(e2e.root, identity)
    try:
        engine.out_of_band_backup("sales", BackupType.LOG)
    finally:
        engine.close()

    e2e.wait(
        "the chain break in status",
        lambda: (
            e2e.pd_status("sim1-sales").get("lastError", {}).get("code")
            == ErrorCode.SQL_LSN_VALIDATION_FAILURE
            or e2e.pd_status("sim1-sales")["lastFull"]["recoveryPointId"] != first_full
        ),
    )

    def healed() -> dict[str, Any] | None:
        for job in e2e.jobs():
            if (
                job["spec"]["reason"] == "AutoHeal"
                and job["spec"]["type"] == "Full"
                and (job.get("status") or {}).get("phase") == JobPhase.SUCCEEDED
            ):
                return job
        return None

    job = e2e.wait("an auto-heal full", healed)
    assert "LogChainBroken" in job["spec"]["reasonMessage"]
    assert "another tool" in job["spec"]["reasonMessage"]
    e2e.wait(
        "protection resumes",
        lambda: (
            e2e.pd_status("sim1-sales")["lastFull"]["recoveryPointId"] != first_full
            and e2e.pd_status("sim1-sales").get("health") == "Healthy"
        ),
    )
    events = e2e.stack.kubectl("get", "events", "-o", "jsonpath={.items[*].reason}").stdout
    assert "AutoHeal" in events


def _fill(root: Path, identity: str, database: str, rows: int, size: int) -> None:
    engine = open_simulated_engine(root, identity)
    try:
        payload = os.urandom(size)
        for key in range(rows):
            engine.commit(database, [Operation(key, payload[key % 64 :] + payload[: key % 64])])
    finally:
        engine.close()


def test_killed_agent_leaves_no_partial_point_and_the_job_is_redone(e2e: E2E) -> None:
    e2e.apply_vault_and_policy(**FAST)
    identity = e2e.instance("sim1", "vm1", {"big": "FULL"})
    _fill(e2e.root, identity, "big", rows=400, size=256 * 1024)  # ~100 MB, incompressible
    e2e.protect("sim1", "big")
    e2e.stack.start_operator()
    slow = {"uploadConcurrency": 1, "chunkSize": 65536}
    agent = e2e.start_agent("vm1", ["sim1"], **slow)

    victim = e2e.wait("a full backup in progress", e2e.job_moving_bytes)
    agent.popen.send_signal(signal.SIGKILL)
    agent.popen.wait(10)
    assert _manifests(e2e) == [], "no recovery point is visible from the killed backup"

    e2e.start_agent("vm1", ["sim1"])
    name = victim["metadata"]["name"]
    failed = e2e.wait(
        "the interrupted job failed",
        lambda: (
            e2e.stack.client.get_raw("BackupJob", e2e.namespace, name)
            .get("status", {})
            .get("phase")
            == JobPhase.FAILED
        ),
    )
    assert failed
    job = e2e.stack.client.get_raw("BackupJob", e2e.namespace, name)
    assert job["status"]["error"]["code"] in (ErrorCode.AGENT_RESTARTED, ErrorCode.AGENT_LOST)
    e2e.wait(
        "a full after the restart", lambda: "lastFull" in e2e.pd_status("sim1-big"), timeout=180
    )
    assert len(_manifests(e2e)) == len(_succeeded_results(e2e)) >= 1


def test_a_reassigned_instance_moves_to_the_new_agent_and_no_job_runs_twice(e2e: E2E) -> None:
    """Enrolling a second agent for a running instance (``agent enroll --reassign``) moves
    it: the operator assigns the new jobs to the new agent, the API server fences the old
    one out of the instance's status and jobs, and no job is claimed twice."""
    e2e.apply_vault_and_policy(**FAST)
    identity = e2e.instance("sim1", "vm1", {"a": "FULL", "b": "FULL", "c": "FULL"})
    e2e.protect("sim1", "a", "b", "c")
    e2e.stack.start_workload("w", e2e.root, identity, ["a", "b", "c"], rate=10)
    e2e.stack.start_operator()
    first = e2e.start_agent("vm1", ["sim1"])
    e2e.wait("a job the first agent ran", lambda: _succeeded_by(e2e, "vm1/"))
    second = e2e.start_agent("vm2", ["sim1"])  # enrolls vm2 for sim1 with --reassign
    e2e.wait(
        "two jobs the second agent ran",
        lambda: len(_succeeded_by(e2e, "vm2/")) >= 2,
        timeout=150,
    )
    claims: dict[str, list[str]] = {}
    for process in (first, second):
        for line in process.log.read_text().splitlines():
            if "claimed BackupJob" in line:
                claims.setdefault(line.rsplit(" ", 1)[-1], []).append(process.name)
    assert all(len(who) == 1 for who in claims.values()), claims
    for job in e2e.jobs():
        session = (job.get("status") or {}).get("agentSession") or ""
        assigned = job["metadata"]["labels"].get(contract.LABEL_AGENT)
        assert not session or session.startswith(f"{assigned}/"), (job["metadata"], session)
    assert "ValidatingAdmissionPolicy 'sqlharbor-agent-fence'" in first.log.read_text()
    assert second.alive(), second.tail()
    assert len(_manifests(e2e)) == len(_succeeded_results(e2e))


def _succeeded_by(e2e: E2E, prefix: str) -> list[str]:
    return [
        j["metadata"]["name"]
        for j in e2e.jobs()
        if (j.get("status") or {}).get("phase") == JobPhase.SUCCEEDED
        and str((j.get("status") or {}).get("agentSession", "")).startswith(prefix)
    ]


def test_bad_references_show_conditions_that_say_what_is_wrong(e2e: E2E) -> None:
    stack = e2e.stack
    e2e.apply_vault_and_policy(**FAST)  # vault "demo-vault" with valid secrets
    from sqlharbor_devtools.demo import scenario

    broken_vault = scenario.vault("no-key", container=e2e.container)
    broken_vault["spec"]["encryption"]["keySecretRef"] = {"name": "missing-kek", "key": "kek"}
    short_key = scenario.vault("short-key", container=e2e.container)
    short_key["spec"]["encryption"]["keySecretRef"] = {"name": "short", "key": "kek"}
    stack.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "short"},
                "stringData": {"kek": "dG9vIHNob3J0"},
            },
            broken_vault,
            short_key,
            scenario.policy("to-nowhere", vault_name="absent"),
            scenario.policy("to-broken", vault_name="no-key"),
            scenario.instance(scenario.DemoInstance("lonely", "vm9", "MSSQLSERVER", {})),
            scenario.protected_database("lonely", "db1", policy_name="to-nowhere"),
            scenario.protected_database("lonely", "db2", policy_name="to-broken"),
            scenario.protected_database("lonely", "db3"),
            scenario.protected_database("lonely", "db4", policy_name="no-such-policy"),
        ]
    )
    # the Secrets these vaults name are granted as a user would (config/rbac/role.yaml):
    # the operator then sees one missing and one too short, not a refusal
    stack.start_operator(secret_names=["missing-kek", "short"])

    def vault_status(name: str) -> dict[str, Any]:
        return dict(stack.client.get_raw("BackupVault", e2e.namespace, name).get("status") or {})

    e2e.wait(
        "vault validation",
        lambda: all(vault_status(v).get("phase") for v in ("demo-vault", "no-key", "short-key")),
    )
    assert vault_status("demo-vault")["phase"] == "Available"
    assert vault_status("no-key")["phase"] == "Unavailable"
    assert "missing-kek" in vault_status("no-key")["message"]
    assert vault_status("short-key")["phase"] == "Unavailable"
    assert "32 bytes" in vault_status("short-key")["message"]
    assert "dG9vIHNob3J0" not in str(vault_status("short-key")), "the key is never echoed"

    def ready(name: str) -> dict[str, Any] | None:
        status = e2e.pd_status(name)
        for cond in status.get("conditions", []):
            if cond["type"] == "Ready":
                return dict(cond)
        return None

    e2e.wait(
        "conditions on every database", lambda: all(ready(f"lonely-db{i}") for i in range(1, 5))
    )
    expectations = {
        "lonely-db1": (ErrorCode.VAULT_NOT_FOUND, "absent"),
        "lonely-db2": (ErrorCode.VAULT_UNAVAILABLE, "missing-kek"),
        "lonely-db3": (ErrorCode.INSTANCE_NOT_SERVED, "sqlharbor-agent"),
        "lonely-db4": (ErrorCode.POLICY_NOT_FOUND, "no-such-policy"),
    }
    for name, (reason, words) in expectations.items():
        cond = ready(name)
        assert cond is not None
        assert cond["status"] == "False"
        assert cond["reason"] == reason, (name, cond)
        assert words in cond["message"], (name, cond)
        assert e2e.pd_status(name)["health"] == "Unhealthy"
    assert e2e.jobs() == [], "nothing is dispatched for unresolved databases"


def test_auto_protection_protects_new_databases(e2e: E2E) -> None:
    e2e.apply_vault_and_policy(**FAST)
    identity = e2e.instance("sim1", "vm1", {"app": "FULL", "scratch_tmp": "SIMPLE"})
    e2e.stack.apply(
        [
            {
                "apiVersion": "sqlharbor.io/v1alpha1",
                "kind": "SqlInstance",
                "metadata": {"name": "sim1"},
                "spec": {
                    "host": "vm1",
                    "engine": "simulated",
                    "autoProtection": {
                        "enabled": True,
                        "policyRef": {"name": "demo-fast"},
                        "exclude": ["scratch_*"],
                    },
                },
            }
        ]
    )
    e2e.stack.start_operator()
    e2e.start_agent("vm1", ["sim1"])

    def auto_protected() -> list[dict[str, Any]]:
        items, _ = e2e.stack.client.list_raw(
            "ProtectedDatabase", e2e.namespace, label_selector=contract.LABEL_AUTO_PROTECTED
        )
        return items

    first = e2e.wait("the discovered database is protected", auto_protected)
    assert [pd["spec"]["databaseName"] for pd in first] == ["app"]
    # a database created later is picked up by the next discovery
    e2e.stack.seed(e2e.root, identity, ["late=FULL"])
    e2e.wait("the new database is protected", lambda: len(auto_protected()) == 2)
    names = sorted(pd["spec"]["databaseName"] for pd in auto_protected())
    assert names == ["app", "late"]
    e2e.wait(
        "a full of the new database",
        lambda: any(
            "lastFull" in (pd.get("status") or {}) and pd["spec"]["databaseName"] == "late"
            for pd in auto_protected()
        ),
    )
