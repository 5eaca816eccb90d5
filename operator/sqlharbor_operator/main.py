"""``sqlharbor-operator``: run the operator for one or more namespaces (or cluster-wide)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

import click


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
@click.option("--log-level", default="INFO", show_default=True)
def main(
    kubeconfig: Path | None,
    namespaces: tuple[str, ...],
    tick_seconds: float,
    retention_seconds: float,
    metrics_port: int | None,
    log_level: str,
) -> None:
    """Reconcile sqlharbor resources: schedule backups, track recovery points and health."""
    import kopf

    _cap_malloc_arenas()
    if kubeconfig is not None:
        os.environ["KUBECONFIG"] = str(kubeconfig)
    os.environ["SQLHARBOR_TICK_SECONDS"] = str(tick_seconds)
    os.environ["SQLHARBOR_RETENTION_SECONDS"] = str(retention_seconds)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("azure").setLevel(logging.WARNING)
    from sqlharbor_operator import handlers  # noqa: F401  (registers the handlers)

    if metrics_port is not None:
        from sqlharbor_operator import metrics

        metrics.serve(metrics_port)

    kopf.run(
        standalone=True,
        namespaces=list(namespaces),
        clusterwide=not namespaces,
    )


def _cap_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core);
    the operator's API threads each handle whole status bodies, and the arenas they leave
    fragmented are resident memory that is never given back.  Same as the usual
    ``MALLOC_ARENA_MAX=2`` for Python services, set before the threads start.  No-op
    elsewhere (musl, macOS, Windows)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if sys.platform != "linux" or name is None:
        return
    m_arena_max = -8  # <malloc.h>
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).mallopt(m_arena_max, arenas)
