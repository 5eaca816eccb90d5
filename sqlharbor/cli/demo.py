"""``sqlharbor demo``: the whole system on this machine — control plane, operator, an agent
with the simulated engine under a workload — and backups flowing into ``kubectl get``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from sqlharbor.devenv.controlplane import ControlPlane

NAMESPACE = "sqlharbor-demo"


def _protected(stack: Any) -> bool:
    from sqlharbor.demo.scenario import INSTANCES

    items, _ = stack.client.list_raw("ProtectedDatabase", stack.namespace)
    if len(items) < sum(len(i.databases) for i in INSTANCES):
        return False
    for item in items:
        status = item.get("status") or {}
        if "lastFull" not in status:
            return False
        simple = status.get("recoveryModel") == "SIMPLE"
        logs = int(status.get("recoveryPoints", 0)) - 1
        if not simple and ("lastLog" not in status or logs < 3):
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
    """Run the demo (Ctrl-C to stop; the control plane stays up: sqlharbor dev down)."""
    from sqlharbor.demo import scenario
    from sqlharbor.demo.stack import REPO, Stack

    plane = ControlPlane.find(state_dir) or ControlPlane.up(state_dir)
    plane.apply_crds(REPO / "crds")
    stack = Stack(plane, NAMESPACE, state_dir.resolve() / "demo")
    stack.create_namespace()
    click.echo(f"control plane up; namespace {NAMESPACE}; logs in {stack.workdir}")
    try:
        stack.install_vault_secrets()
        kubeconfig = stack.agent_kubeconfig()
        instances = []
        for inst in scenario.INSTANCES:
            root = stack.workdir / "simulated"
            dbs = [f"{n}={m}" for n, m in inst.databases.items()]
            stack.seed(root, inst.vault_identity, dbs)
            stack.start_workload(inst.name, root, inst.vault_identity, dbs, rate=5)
            instances.append(
                {"name": inst.name, "engine": "simulated", "simulated": {"rootDir": str(root)}}
            )
        stack.apply(scenario.all_resources())
        stack.start_operator()
        stack.start_agent("demo-vm", stack.write_agent_config("demo-vm", instances, kubeconfig))
        _follow(stack, once=once, timeout=timeout)
    finally:
        stack.stop()
        click.echo(
            f"processes stopped; the control plane is still up "
            f"(KUBECONFIG={plane.kubeconfig}); stop it with: sqlharbor dev down"
        )


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
