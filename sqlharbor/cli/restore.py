"""``sqlharbor restore``: create a RestoreJob for a ProtectedDatabase and follow it with a
progress bar (bytes, percent, rate) until it succeeds or fails.

The operator plans the job (the chain and the stop point) and the target instance's agent
runs it; this command only writes the RestoreJob and reads its status.  Exit status: 0 on
success, 1 when the restore failed (the error code, message and remediation are printed),
2 on usage or API errors.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from tqdm import tqdm

from sqlharbor.api import API_VERSION, RestorePhase, contract
from sqlharbor.errors import ErrorCode, SqlHarborError
from sqlharbor.kube import KubeClient


def restore_body(
    protected_db: str,
    *,
    to_time: str | None,
    to_lsn: str | None,
    latest: bool,
    recovery_point: str | None,
    target_instance: str | None,
    as_database: str | None,
    overwrite: bool,
    as_files: str | None,
    source_instance: str | None = None,
    recovery_fork: str | None = None,
) -> dict[str, Any]:
    """The RestoreJob manifest the options describe (validated again by the API server)."""
    chosen = [to_time is not None, to_lsn is not None, latest, recovery_point is not None]
    if sum(chosen) != 1:
        raise click.UsageError(
            "give exactly one of --to-time, --to-lsn, --latest, --recovery-point"
        )
    if recovery_fork is not None and to_lsn is None:
        raise click.UsageError("--recovery-fork names the fork of --to-lsn: give --to-lsn too")
    point: dict[str, Any]
    if to_time is not None:
        point = {"time": to_time}
    elif to_lsn is not None:
        point = {"lsn": to_lsn}
        if recovery_fork is not None:
            point["recoveryFork"] = recovery_fork
    elif recovery_point is not None:
        point = {"recoveryPointId": recovery_point}
    else:
        point = {"latest": True}
    target: dict[str, Any]
    if as_files is not None:
        if as_database is not None:
            raise click.UsageError("--as-files and --as-database exclude each other")
        instance = target_instance or source_instance
        if instance is None:
            raise click.UsageError("--as-files needs --target-instance")
        target = {"files": {"instanceRef": {"name": instance}, "path": as_files}}
    else:
        if target_instance is None or as_database is None:
            raise click.UsageError("give --target-instance and --as-database (or --as-files)")
        target = {
            "database": {
                "instanceRef": {"name": target_instance},
                "databaseName": as_database,
                "overwrite": overwrite,
            }
        }
    return {
        "apiVersion": API_VERSION,
        "kind": "RestoreJob",
        "metadata": {"generateName": f"{protected_db[:40]}-restore-"},
        "spec": {
            "source": {"protectedDatabase": protected_db},
            "target": target,
            "pointInTime": point,
        },
    }


def follow(client: KubeClient, namespace: str, name: str, *, timeout: float) -> dict[str, Any]:
    """Poll the job until it finishes (or the deadline passes); show a progress bar."""
    deadline = time.monotonic() + timeout
    bar: tqdm[Any] | None = None
    announced = False
    status: dict[str, Any] = {}
    try:
        while time.monotonic() < deadline:
            status = client.get_raw("RestoreJob", namespace, name).get("status") or {}
            plan = status.get("plan")
            if plan and not announced:
                announced = True
                stop = plan.get("stopAt") or plan.get("stopAtLsn") or "end of the last step"
                click.echo(
                    f"plan: {len(plan['steps'])} step(s) from {plan['databaseName']} on "
                    f"{plan['instance']}, stop at {stop}"
                )
                for number, step in enumerate(plan["steps"], start=1):
                    click.echo(
                        f"  {number}. {step['backupType']:<12} {step['recoveryPointId']}  "
                        f"finished {step['finish']}"
                    )
            progress = status.get("progress") or {}
            if progress.get("bytesTotal") and bar is None:
                bar = tqdm(
                    total=int(progress["bytesTotal"]),
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=name,
                    file=sys.stderr,
                )
            if bar is not None:
                done = int(progress.get("bytesDone", 0))
                bar.update(max(0, done - bar.n))
                if progress.get("message"):
                    bar.set_postfix_str(str(progress["message"])[:60], refresh=False)
            if contract.is_finished({"status": status}):
                return status
            time.sleep(1.0)
    finally:
        if bar is not None:
            bar.close()
    raise click.ClickException(
        f"RestoreJob {name} did not finish within {timeout:.0f}s (phase {status.get('phase')})"
    )


@click.command()
@click.argument("protected_db")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--to-time", help="RFC 3339 time (UTC unless an offset is given).")
@click.option("--to-lsn", help="Exact LSN (STOPATMARK).")
@click.option(
    "--recovery-fork",
    help="With --to-lsn: the recovery fork the LSN is on (after an in-place restore).",
)
@click.option("--latest", is_flag=True, help="The latest restorable point.")
@click.option("--recovery-point", help="A recovery point id.")
@click.option("--target-instance", help="SqlInstance to restore into (or whose host gets files).")
@click.option("--as-database", help="Target database name.")
@click.option("--overwrite", is_flag=True, help="Replace the target database if it exists.")
@click.option("--as-files", help="Write the backup streams and a JSON sequence to this folder.")
@click.option("--no-follow", is_flag=True, help="Create the RestoreJob and exit.")
@click.option("--timeout", type=float, default=3600.0, show_default=True)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
def restore(
    protected_db: str,
    namespace: str,
    to_time: str | None,
    to_lsn: str | None,
    recovery_fork: str | None,
    latest: bool,
    recovery_point: str | None,
    target_instance: str | None,
    as_database: str | None,
    overwrite: bool,
    as_files: str | None,
    no_follow: bool,
    timeout: float,
    kubeconfig: str | None,
) -> None:
    """Restore PROTECTED_DB to a point in time, an LSN, a recovery point or the latest."""
    client = KubeClient.from_kubeconfig(kubeconfig)
    try:
        source_instance = None
        if as_files is not None and target_instance is None:
            pd = client.get_raw("ProtectedDatabase", namespace, protected_db)
            source_instance = pd["spec"]["instanceRef"]["name"]
        body = restore_body(
            protected_db,
            to_time=to_time,
            to_lsn=to_lsn,
            latest=latest,
            recovery_point=recovery_point,
            target_instance=target_instance,
            as_database=as_database,
            overwrite=overwrite,
            as_files=as_files,
            source_instance=source_instance,
            recovery_fork=recovery_fork,
        )
        created = client.create("RestoreJob", namespace, body)
        name = created["metadata"]["name"]
        click.echo(f"restorejob.sqlharbor.io/{name} created")
        if no_follow:
            return
        status = follow(client, namespace, name, timeout=timeout)
    except SqlHarborError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    finally:
        client.close()
    if status.get("phase") == RestorePhase.SUCCEEDED:
        click.echo(f"Succeeded: {status.get('message', '')}")
        return
    error = status.get("error") or {}
    code = error.get("code", ErrorCode.UNKNOWN)
    click.echo(f"Failed: {code}: {error.get('message', status.get('message'))}", err=True)
    if error.get("remediation"):
        click.echo(f"  remediation: {error['remediation']}", err=True)
    sys.exit(1)
