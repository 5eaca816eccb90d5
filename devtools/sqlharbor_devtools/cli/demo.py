"""``sqlharbor-dev demo``: the whole system on this machine — control plane, operator, an
agent with the simulated engine under a workload — and backups flowing into ``kubectl get``.

Needs a sqlharbor checkout (its ``config/crd/``, ``config/policy/`` and ``config/namespaced/``; see
:mod:`sqlharbor_devtools.devenv.checkout`).  ``--once`` ends with a point-in-time restore
checked by ``sqlharbor-dev simulate-compare``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from sqlharbor.api import RestorePhase, contract
from sqlharbor_devtools.devenv import DevEnvError, crd_dir, require_repo_root
from sqlharbor_devtools.devenv.controlplane import ControlPlane

NAMESPACE = "sqlharbor-demo"


def _protected(stack: Any) -> bool:
    """Every database has a full; every FULL-recovery one has at least three log backups in
    the vault (counted in the vault's catalog, not guessed from status)."""
    from sqlharbor.api import BackupVault
    from sqlharbor.domain.backupset import BackupType
    from sqlharbor.restoreplan import open_catalog
    from sqlharbor_devtools.demo.scenario import INSTANCES

    items, _ = stack.client.list_raw("ProtectedDatabase", stack.namespace)
    if len(items) < sum(len(i.databases) for i in INSTANCES):
        return False
    identities = {i.name: i.vault_identity for i in INSTANCES}
    vault = stack.client.get(BackupVault, stack.namespace, "demo-vault")
    catalog = open_catalog(vault, stack.client.secret_value)
    for item in items:
        status = item.get("status") or {}
        if "lastFull" not in status or not status.get("databaseGuid"):
            return False
        if status.get("recoveryModel") == "SIMPLE":
            continue
        points = catalog.list_points(
            identities[item["spec"]["instanceRef"]["name"]], status["databaseGuid"]
        )
        if sum(p.record.backup_type is BackupType.LOG for p in points) < 3:
            return False
    return True


def _table(stack: Any) -> str:
    result = stack.kubectl("get", "sqlinstances,protecteddatabases,backupjobs", check=False)
    return str(result.stdout + result.stderr)


@click.command()
@click.option("--once", is_flag=True, help="Exit 0 once every database is protected.")
@click.option("--timeout", type=float, default=600.0, show_default=True)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=Path(".sqlharbor-dev"),
    show_default=True,
    envvar="SQLHARBOR_DEV_DIR",
)
def demo(once: bool, timeout: float, state_dir: Path) -> None:
    """Run the demo (Ctrl-C to stop; the control plane stays up: sqlharbor-dev down)."""
    from sqlharbor_devtools.demo import scenario
    from sqlharbor_devtools.demo.stack import Stack

    try:
        checkout = require_repo_root()
        plane = ControlPlane.find(state_dir) or ControlPlane.up(state_dir)
        plane.apply_crds(crd_dir(checkout))
    except DevEnvError as exc:
        raise click.ClickException(f"{exc}\n({exc.code}: {exc.remediation})") from None
    stack = Stack(plane, NAMESPACE, state_dir.resolve() / "demo", checkout=checkout)
    stack.create_namespace()
    click.echo(f"control plane up; namespace {NAMESPACE}; logs in {stack.workdir}")
    try:
        stack.install_vault_secrets()
        instances = []
        for inst in scenario.INSTANCES:
            root = stack.workdir / "simulated"
            dbs = [f"{n}={m}" for n, m in inst.databases.items()]
            stack.seed(root, inst.vault_identity, dbs)
            stack.start_workload(
                inst.name, root, inst.vault_identity, dbs, rate=5, idle=scenario.WORKLOAD_IDLE
            )
            instances.append(
                {"name": inst.name, "engine": "simulated", "simulated": {"rootDir": str(root)}}
            )
        stack.apply(scenario.all_resources())
        stack.start_operator()
        kubeconfig = stack.enroll_agent("demo-vm", [inst.name for inst in scenario.INSTANCES])
        stack.start_agent("demo-vm", stack.write_agent_config("demo-vm", instances, kubeconfig))
        _follow(stack, once=once, timeout=timeout)
        if once:
            _prove_restore(stack, root=stack.workdir / "simulated")
    finally:
        stack.stop()
        click.echo(
            f"processes stopped; the control plane is still up "
            f"(KUBECONFIG={plane.kubeconfig}); stop it with: sqlharbor-dev down"
        )


def _prove_restore(stack: Any, *, root: Path, timeout: float = 240.0) -> None:
    """Restore sales to a second inside its window into sales_restored (a RestoreJob through
    the operator and the agent), then check the content against the source as of that second."""
    import subprocess
    import sys
    from datetime import datetime

    from sqlharbor.api import API_VERSION
    from sqlharbor_devtools.demo.scenario import INSTANCES

    source = INSTANCES[0]
    pd = f"{source.name}-sales"
    status = stack.client.get_raw("ProtectedDatabase", stack.namespace, pd).get("status") or {}
    window = status.get("recoveryWindow") or {}
    earliest = datetime.fromisoformat(window["earliest"])
    latest = datetime.fromisoformat(window["latest"])
    target = (earliest + (latest - earliest) / 2).replace(microsecond=0)
    if not earliest < target < latest:
        raise click.ClickException(f"sales' recovery window is too short: {window}")
    when = target.isoformat().replace("+00:00", "Z")
    name = f"sales-restore-{int(time.time())}"
    click.echo(
        f"\n=== point-in-time restore ===\nrecovery window of sales: {window['earliest']} .. "
        f"{window['latest']}\nrestoring sales as of {when} into sales_restored "
        f"(RestoreJob {name})"
    )
    stack.apply(
        [
            {
                "apiVersion": API_VERSION,
                "kind": "RestoreJob",
                "metadata": {"name": name},
                "spec": {
                    "source": {"protectedDatabase": pd},
                    "target": {
                        "database": {
                            "instanceRef": {"name": source.name},
                            "databaseName": "sales_restored",
                            "overwrite": True,  # the demo may run again on the same state
                        }
                    },
                    "pointInTime": {"time": when},
                },
            }
        ]
    )

    def finished() -> dict[str, Any] | None:
        job = stack.client.get_raw("RestoreJob", stack.namespace, name)
        st = job.get("status") or {}
        return dict(st) if contract.is_finished(job) else None

    result = stack.wait_for(f"RestoreJob {name}", finished, timeout)
    click.echo(stack.kubectl("get", "restorejobs", check=False).stdout)
    if result["phase"] != RestorePhase.SUCCEEDED:
        error = result.get("error") or {}
        raise click.ClickException(
            f"the restore failed: {error.get('code')}: {error.get('message')}"
        )
    click.echo(f"restore: {result.get('message', '')}")
    compare = subprocess.run(
        [
            sys.executable,
            "-m",
            "sqlharbor_devtools",
            "simulate-compare",
            "--root",
            str(root),
            "--instance",
            source.vault_identity,
            "--source",
            "sales",
            "--target",
            "sales_restored",
            "--as-of",
            when,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    click.echo(f"check: {(compare.stdout + compare.stderr).strip()}")
    if compare.returncode != 0:
        raise click.ClickException("sales_restored does not match sales as of the restore point")


def _follow(stack: Any, *, once: bool, timeout: float) -> None:
    started = time.monotonic()
    next_print = 0.0
    while True:
        elapsed = time.monotonic() - started
        done = _protected(stack)
        if elapsed >= next_print or done:
            click.echo(f"\n=== t+{int(elapsed)}s ===\n{_table(stack)}")
            next_print = elapsed + 15
        if once and done:
            click.echo(
                "every protected database has a full backup and (FULL recovery) at "
                "least three log backups in its recovery window"
            )
            return
        if elapsed > timeout:
            raise click.ClickException(
                f"not every database was protected after {timeout}s; "
                f"see the logs in {stack.workdir}"
            )
        try:
            time.sleep(2)
        except KeyboardInterrupt:
            return
