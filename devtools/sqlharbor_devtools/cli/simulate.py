"""``sqlharbor-dev simulate``: create the simulated engine's databases (if missing) and run a
workload against them.  Used by the demo, the end-to-end tests and benchmarks; never
presented as SQL Server.  The engine itself (and its ``Workload``) stays in the agent, which
loads it through its engine factory; only this test control lives in the dev tools."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from sqlharbor.domain.backupset import RecoveryModel


@click.command()
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder of the simulated engine's state (the agent's simulated.rootDir).",
)
@click.option(
    "--instance",
    required=True,
    help="Instance name as the vault knows it (HOST or HOST\\INSTANCE).",
)
@click.option(
    "--database",
    "databases",
    multiple=True,
    required=True,
    help="NAME or NAME=FULL|BULK_LOGGED|SIMPLE (repeatable).",
)
@click.option(
    "--rate",
    type=float,
    default=5.0,
    show_default=True,
    help="Transactions per second (0: create the databases and exit).",
)
@click.option("--row-size", type=int, default=2048, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--count", type=int, default=None, help="Stop after this many transactions.")
@click.option(
    "--idle",
    type=(float, float),
    default=None,
    metavar="BUSY IDLE",
    help="Alternate BUSY seconds of transactions with IDLE seconds of none (idle databases "
    "get empty log backups).",
)
def simulate(
    root: Path,
    instance: str,
    databases: tuple[str, ...],
    rate: float,
    row_size: int,
    seed: int,
    count: int | None,
    idle: tuple[float, float] | None,
) -> None:
    """Create simulated databases and commit transactions to them until stopped."""
    from sqlharbor_agent.engines.simulated import open_simulated_engine
    from sqlharbor_agent.engines.simulated.workload import Pace, Workload

    engine = open_simulated_engine(root, instance)
    names = []
    for item in databases:
        name, _, model = item.partition("=")
        engine.ensure_database(
            name, RecoveryModel(model.upper() or "FULL"), is_system=name.lower() == "master"
        )
        names.append(name)
    click.echo(f"{len(names)} database(s) ready on {instance}: {', '.join(names)}")
    if rate <= 0:
        engine.close()
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    workload = Workload(engine, names, seed, rate, row_size, pace=Pace(*idle) if idle else None)
    try:
        workload.run(stop, limit=count)
    except KeyboardInterrupt:
        pass
    finally:
        engine.close()
    click.echo(f"committed {workload.commits} transactions")
