"""``sqlharbor dev``: the local control plane (etcd, kube-apiserver, Azurite)."""

from __future__ import annotations

import click


@click.group()
def dev() -> None:
    """Run a local control plane for development, tests and the demo."""
