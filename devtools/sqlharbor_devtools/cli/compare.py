"""``sqlharbor-dev simulate-compare``: check a restored simulated database against its source
as of a moment (the source's never-truncated journal replayed with ``rows_as_of``).

Used by ``sqlharbor-dev demo`` and the end-to-end tests to prove a point-in-time restore; exits 0
and prints one line when the contents are equal, 1 with a diff summary otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sqlharbor.errors import SqlHarborError


@click.command("simulate-compare")
@click.option("--root", type=click.Path(path_type=Path), required=True, help="Simulated root.")
@click.option("--instance", required=True, help="Source instance (HOST or HOST\\INSTANCE).")
@click.option("--source", required=True, help="Source database name.")
@click.option("--target", required=True, help="Restored database name.")
@click.option("--as-of", "as_of", required=True, help="RFC 3339 time the restore stopped at.")
@click.option(
    "--target-instance", default=None, help="Instance of the restored database (default: same)."
)
def simulate_compare(
    root: Path, instance: str, source: str, target: str, as_of: str, target_instance: str | None
) -> None:
    """Exit 0 when TARGET's rows equal SOURCE's rows as of the time given."""
    from sqlharbor_agent.engines.simulated import open_simulated_engine

    from sqlharbor.restoreplan import parse_time

    try:
        moment = parse_time(as_of)
        source_engine = open_simulated_engine(root, instance)
        target_engine = (
            source_engine
            if target_instance in (None, instance)
            else open_simulated_engine(root, target_instance or instance)
        )
        expected = source_engine.rows_as_of(source, time=moment)
        actual = target_engine.rows(target)
    except SqlHarborError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    if not (missing or extra or changed):
        click.echo(
            f"MATCH: {target} has the {len(actual)} rows {source} had at {moment.isoformat()}"
        )
        return
    click.echo(
        f"MISMATCH: {target} vs {source} as of {moment.isoformat()}: "
        f"{len(missing)} missing (e.g. {missing[:5]}), {len(extra)} extra (e.g. {extra[:5]}), "
        f"{len(changed)} changed (e.g. {changed[:5]}); expected {len(expected)} rows, "
        f"found {len(actual)}",
        err=True,
    )
    sys.exit(1)
