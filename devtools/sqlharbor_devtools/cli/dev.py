"""``sqlharbor-dev up|down|env|status|build|apply-crds``: the local control plane (etcd,
kube-apiserver, Azurite).

Registered by :mod:`sqlharbor_devtools.cli.main`; a thin layer over
:mod:`sqlharbor_devtools.devenv`.  The state directory is ``--state-dir``, else
``$SQLHARBOR_DEV_DIR``, else ``.sqlharbor-dev`` in the current directory.  Exit codes: 0
success (including ``up`` when one is already running, which says so, and ``down`` when
nothing runs); 1 a control plane error; 3 ``env``/``status`` when nothing runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from sqlharbor_devtools.devenv import (
    ControlPlane,
    DevEnvError,
    NotRunningError,
    Toolchain,
    apply_crds,
    require_repo_root,
    resolve_binaries,
    resolve_kubectl,
)
from sqlharbor_devtools.devenv.checkout import crd_dir as checkout_crd_dir
from sqlharbor_devtools.devenv.state import DEFAULT_DIR_NAME

EXIT_NOT_RUNNING = 3

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SQLHARBOR_DEV_DIR",
    default=DEFAULT_DIR_NAME,
    show_default=True,
    help="Where the control plane keeps its kubeconfig, env file, pids, logs and data.",
)


def _progress(message: str) -> None:
    click.echo(message, err=True)


class _NotRunning(click.ClickException):
    exit_code = EXIT_NOT_RUNNING


def _fail(exc: DevEnvError) -> click.ClickException:
    kind = _NotRunning if isinstance(exc, NotRunningError) else click.ClickException
    return kind(f"{exc}\n({exc.code}: {exc.remediation})")


@click.command()
@state_dir_option
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for readiness.")
@click.option(
    "--crds",
    "crd_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also apply the CRDs in this folder (a kustomization, e.g. config/crd, or *.yaml "
    "files) and wait until they are Established.",
)
def up(state_dir: Path, timeout: float, crd_dir: Path | None) -> None:
    """Start etcd, kube-apiserver and Azurite (detached) and write kubeconfig and env."""
    try:
        toolchain = Toolchain.from_env()
        plane = ControlPlane.up(state_dir, toolchain=toolchain, timeout=timeout, progress=_progress)
        if crd_dir is not None:
            names = plane.apply_crds(crd_dir, toolchain=toolchain)
            _progress(f"applied {len(names)} CRD(s) from {crd_dir}")
    except DevEnvError as exc:
        raise _fail(exc) from None
    if plane.reused:
        _progress(
            f"a control plane is already running from {plane.state_dir}; not starting another"
        )
    else:
        _progress(f"control plane is up: {plane.apiserver_url}")
    _progress(f'use it with: eval "$(sqlharbor-dev env --state-dir {plane.state_dir})"')


@click.command()
@state_dir_option
@click.option("--purge", is_flag=True, help="Also delete the state directory.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for exit.")
def down(state_dir: Path, purge: bool, timeout: float) -> None:
    """Stop everything ``up`` started and wait for the processes to exit."""
    plane = ControlPlane.find(state_dir)
    try:
        if plane is None:
            _progress(f"no control plane is running from {state_dir}")
        else:
            plane.down(timeout=timeout)
            _progress(f"stopped the control plane in {plane.state_dir}")
    except DevEnvError as exc:
        raise _fail(exc) from None
    if purge and state_dir.is_dir():
        shutil.rmtree(state_dir)


@click.command()
@state_dir_option
def env(state_dir: Path) -> None:
    """Print ``export`` lines for KUBECONFIG, AZURE_STORAGE_CONNECTION_STRING, SQLHARBOR_DEV_DIR."""
    try:
        plane = ControlPlane.attach(state_dir)
    except DevEnvError as exc:
        raise _fail(exc) from None
    click.echo(plane.env_script(), nl=False)


@click.command()
@state_dir_option
def status(state_dir: Path) -> None:
    """Say whether a control plane runs from the state directory, and whether it answers."""
    plane = ControlPlane.find(state_dir)
    if plane is None:
        click.echo(f"not running ({state_dir})")
        raise SystemExit(EXIT_NOT_RUNNING)
    health = "healthy" if plane.healthy() else "NOT answering"
    click.echo(f"running, {health}: {plane.apiserver_url} (state {plane.state_dir})")
    for record in plane.processes:
        click.echo(f"  {record.name}: pid {record.pid}, log {record.log}")


@click.command()
def build() -> None:
    """Find or build kube-apiserver, etcd and kubectl; print their paths."""
    try:
        toolchain = Toolchain.from_env()
        binaries = resolve_binaries(toolchain, _progress)
        kubectl = resolve_kubectl(toolchain, _progress)
    except DevEnvError as exc:
        raise _fail(exc) from None
    click.echo(f"kube-apiserver: {binaries.kube_apiserver}")
    click.echo(f"etcd: {binaries.etcd}")
    click.echo(f"kubectl: {kubectl}")


@click.command("apply-crds")
@state_dir_option
@click.argument("crd_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
def apply_crds_command(state_dir: Path, crd_dir: Path | None) -> None:
    """Apply CRD_DIR (a kustomization or *.yaml files; default: the checkout's config/crd)
    and wait until Established."""
    try:
        crd_dir = crd_dir or checkout_crd_dir(require_repo_root())
        plane = ControlPlane.attach(state_dir)
        kubectl = resolve_kubectl(Toolchain.from_env(), _progress)
        names = apply_crds(plane.kubeconfig, crd_dir, kubectl=kubectl)
    except DevEnvError as exc:
        raise _fail(exc) from None
    for name in names:
        click.echo(f"established: {name}")
