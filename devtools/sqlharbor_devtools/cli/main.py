"""Entry point of ``sqlharbor-dev``: the developer's command line, not part of the product.

One click group; the verbs live in their own modules: ``up``, ``down``, ``env``, ``status``,
``build``, ``apply-crds`` (:mod:`.dev`, the local control plane), ``demo`` (:mod:`.demo`),
``image build`` (:mod:`.image`, the operator's OCI image), ``bundle build`` (:mod:`.bundle`,
the agent's offline bundles),
``simulate`` and ``simulate-compare`` (:mod:`.simulate`, :mod:`.compare`, the simulated
engine's workload and restore check).  Also run as ``python -m sqlharbor_devtools``.
"""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="sqlharbor-devtools")
def cli() -> None:
    """sqlharbor-dev: local control plane, demo and simulator workload (development only)."""


def _register() -> None:
    from sqlharbor_devtools.cli import bundle, compare, demo, dev, image, simulate

    for command in (
        dev.up,
        dev.down,
        dev.env,
        dev.status,
        dev.build,
        dev.apply_crds_command,
        demo.demo,
        simulate.simulate,
        compare.simulate_compare,
        image.image,
        bundle.bundle,
    ):
        cli.add_command(command)


def main() -> None:
    _register()
    cli()
