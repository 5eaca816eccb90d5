"""``sqlharbor-dev image build``: the operator's OCI image archive (``make image``).

Registered by :mod:`sqlharbor_devtools.cli.main`; a thin layer over
:mod:`sqlharbor_devtools.image`.  Exit codes: 0 built (or already up to date), 1 a build
step failed or a tool is missing.
"""

from __future__ import annotations

from pathlib import Path

import click

from sqlharbor_devtools.devenv import DevEnvError, require_repo_root
from sqlharbor_devtools.image import BuildOptions, ImageError, build_image


def _progress(message: str) -> None:
    click.echo(f"[image] {message}", err=True)


@click.group()
def image() -> None:
    """The operator's OCI image, built from Debian and PyPI packages (no registry needed)."""


@image.command("build")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Where sqlharbor-operator-<version>.oci.tar and its build record go.",
)
@click.option("--force", is_flag=True, help="Rebuild even when the archive is up to date.")
@click.option(
    "--refresh-base",
    is_flag=True,
    help="Rebuild the cached Debian base root too (picks up new Debian security updates).",
)
def build(out_dir: Path, force: bool, refresh_base: bool) -> None:
    """Build dist/sqlharbor-operator-<version>.oci.tar (an OCI image archive)."""
    try:
        repo = require_repo_root()
        options = BuildOptions.from_env(
            repo, out_dir.resolve(), force=force, refresh_base=refresh_base
        )
        built = build_image(options, _progress)
    except (DevEnvError, ImageError) as exc:
        raise click.ClickException(f"{exc}\n({exc.code}: {exc.remediation})") from None
    click.echo(
        f"{built.archive}  {built.ref}  {built.compressed_bytes / 1e6:.1f} MB compressed, "
        f"{built.unpacked_bytes / 1e6:.1f} MB unpacked"
        + ("  (up to date)" if built.reused else f"  ({built.seconds:.0f} s)")
    )
