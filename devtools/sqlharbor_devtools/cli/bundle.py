"""``sqlharbor-dev bundle build``: the agent's wheel, Linux pex and Windows wheelhouse
(``make agent-bundle``).

Registered by :mod:`sqlharbor_devtools.cli.main`; a thin layer over
:mod:`sqlharbor_devtools.bundle`.  Exit codes: 0 built (or already up to date), 1 a build
step failed.
"""

from __future__ import annotations

from pathlib import Path

import click

from sqlharbor_devtools.bundle import BundleError, BundleOptions, build_bundle
from sqlharbor_devtools.devenv import DevEnvError, require_repo_root


def _progress(message: str) -> None:
    click.echo(f"[bundle] {message}", err=True)


@click.group()
def bundle() -> None:
    """The agent's offline bundles, built from PyPI packages (no other network needed)."""


@bundle.command("build")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Where the wheel, the pex, the Windows zip and their build record go.",
)
@click.option("--force", is_flag=True, help="Rebuild even when the bundle is up to date.")
@click.option(
    "--refresh",
    is_flag=True,
    help="Download the dependency wheels again instead of using the cached ones.",
)
def build(out_dir: Path, force: bool, refresh: bool) -> None:
    """Build dist/sqlharbor-agent-<version>-linux-x86_64.pex and its siblings."""
    try:
        repo = require_repo_root()
        options = BundleOptions.from_env(repo, out_dir.resolve(), force=force, refresh=refresh)
        built = build_bundle(options, _progress)
    except (DevEnvError, BundleError) as exc:
        raise click.ClickException(f"{exc}\n({exc.code}: {exc.remediation})") from None
    for path in built.files:
        click.echo(f"{path}  {path.stat().st_size / 1e6:.1f} MB")
    state = "up to date" if built.reused else f"{built.seconds:.0f} s"
    click.echo(f"{built.record}  ({state})")
