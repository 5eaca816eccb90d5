"""``sqlharbor-operator``: run the operator for one or more namespaces (or cluster-wide)."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import click

from sqlharbor_operator.settings import OperatorSettings


@click.command()
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path),
    default=None,
    help="Kubeconfig (default: in-cluster, or $KUBECONFIG).",
)
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    help="Namespace to serve (repeatable); omit for all namespaces.",
)
@click.option(
    "--tick-seconds",
    type=float,
    default=1.0,
    show_default=True,
    help="How often the scheduler looks for due backups.",
)
@click.option(
    "--retention-seconds",
    type=float,
    default=600.0,
    show_default=True,
    help="How often recovery points the policies no longer keep are deleted from the vaults.",
)
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics here.")
@click.option(
    "--health-port",
    type=int,
    default=None,
    help="Serve kopf's health endpoint at http://0.0.0.0:PORT/healthz (liveness, readiness).",
)
@click.option("--log-level", default="INFO", show_default=True)
def main(
    kubeconfig: Path | None,
    namespaces: tuple[str, ...],
    tick_seconds: float,
    retention_seconds: float,
    metrics_port: int | None,
    health_port: int | None,
    log_level: str,
) -> None:
    """Reconcile sqlharbor resources: schedule backups, track recovery points and health."""
    import kopf

    from sqlharbor_operator import handlers, metrics

    settings = OperatorSettings(
        kubeconfig=kubeconfig or _env_path("KUBECONFIG"),
        namespaces=namespaces,
        tick_seconds=tick_seconds,
        retention_interval=timedelta(seconds=retention_seconds),
        metrics_port=metrics_port,
    )
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("azure").setLevel(logging.WARNING)
    if settings.metrics_port is not None:
        metrics.serve(settings.metrics_port)
    kopf.run(
        registry=handlers.registry(),
        memo=handlers.memo(settings),
        standalone=True,
        namespaces=list(settings.namespaces),
        clusterwide=not settings.namespaces,
        liveness_endpoint=(
            f"http://0.0.0.0:{health_port}/healthz" if health_port is not None else None
        ),
    )


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
