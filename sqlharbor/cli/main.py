"""Entry point of the ``sqlharbor`` CLI: one click group; each sub-command has its own module."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="sqlharbor")
def cli() -> None:
    """sqlharbor: Kubernetes-native backup for SQL Server on virtual machines."""


def _register() -> None:
    from sqlharbor.cli import agent, points, restore, vault

    cli.add_command(agent.agent)
    cli.add_command(restore.restore)
    cli.add_command(points.points)
    cli.add_command(vault.vault)


def main() -> None:
    _register()
    cli()
