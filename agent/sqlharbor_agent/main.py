"""``sqlharbor-agent``: the VM agent's command line.

``run --config agent.yaml`` serves the configured instances until SIGTERM/SIGINT;
``grant-permissions`` prints (or applies) the T-SQL that gives the agent's login what it
needs.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click

from sqlharbor.api.contract import agent_account
from sqlharbor.errors import SqlHarborError
from sqlharbor.kube import KubeClient
from sqlharbor.vault import WriterSettings
from sqlharbor_agent.config import load_config
from sqlharbor_agent.credentials import TokenRenewer
from sqlharbor_agent.jobs.loop import retry_delay
from sqlharbor_agent.session import Session
from sqlharbor_agent.worker import InstanceWorker


@click.group()
@click.version_option(package_name="sqlharbor", prog_name="sqlharbor-agent")
def cli() -> None:
    """The sqlharbor agent for SQL Server VMs."""


@cli.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Agent configuration file (YAML).",
)
@click.option("--log-level", default="INFO", show_default=True)
def run(config_path: Path, log_level: str) -> None:
    """Serve the configured instances until stopped."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        config = load_config(config_path)
        client = KubeClient.from_kubeconfig(str(config.kubeconfig) if config.kubeconfig else None)
    except SqlHarborError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    session = Session(agent_id=config.agent_id)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    renewer = TokenRenewer(client, _kubeconfig_file(config.kubeconfig), config.token_seconds, stop)
    if renewer.enabled and renewer.account != agent_account(config.agent_id):
        click.echo(
            f"error: this kubeconfig belongs to ServiceAccount {renewer.account}, but the "
            f"config's agentId {config.agent_id} needs {agent_account(config.agent_id)}: set "
            "agentId to the name the agent was enrolled with",
            err=True,
        )
        sys.exit(2)
    if renewer.enabled:
        try:
            renewer.renew()
        except SqlHarborError as exc:
            click.echo(
                f"error: cannot renew the agent's API token: {exc.message} (was the agent "
                "revoked, or did its bootstrap token expire? enrol it again: kubectl sqlharbor "
                f"agent enroll {config.agent_id} --instance ...)",
                err=True,
            )
            sys.exit(2)
        threading.Thread(target=renewer.run, name="token-renewer", daemon=True).start()
    writer = WriterSettings(
        chunk_size=config.chunk_size,
        max_in_flight=config.upload_concurrency * 2,
        parallelism=config.upload_concurrency,
    )
    logging.getLogger(__name__).info(
        "agent %s session %s starting", config.agent_id, session.session_id
    )
    workers = [
        InstanceWorker(config, inst, client, session, writer, stop) for inst in config.instances
    ]
    for worker in workers:
        _start_with_retry(worker, stop)
    stop.wait()
    for worker in workers:
        worker.join()


def _kubeconfig_file(configured: Path | None) -> Path | None:
    """The kubeconfig file the renewed token is written back to."""
    if configured is not None:
        return configured
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first) if first else None


def _start_with_retry(worker: InstanceWorker, stop: threading.Event) -> None:
    delay = 0.5
    while not stop.is_set():
        try:
            worker.start()
            return
        except SqlHarborError as exc:
            logging.getLogger(__name__).warning("cannot start worker: %s", exc)
            stop.wait(retry_delay(exc, delay))
            delay = min(delay * 2, 10)


def _register_plugins() -> None:
    try:
        from sqlharbor_agent.engines.sqlserver.grant import grant_permissions
    except ImportError:
        return
    cli.add_command(grant_permissions, "grant-permissions")


def main() -> None:
    _register_plugins()
    cli(prog_name="sqlharbor-agent")
