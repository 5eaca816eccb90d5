"""``sqlharbor points``: a database's recovery points and recovery window, or every database a
vault holds, read from the vault itself (its catalog) with the CLI's kubeconfig.

Works without any ProtectedDatabase (after losing a cluster): ``--vault NAME`` reads the
BackupVault and its storage Secret.  When the CLI's user may read the vault's key Secrets
too, a point under a key the vault no longer lists is shown UNREADABLE and left out of the
window (as the operator's planner leaves it out), and the catalog's endorsement applies (a
line the operator did not endorse is not listed); version-1 points are marked
unauthenticated.  Also used by ``sqlharbor restore`` for its summary of the window.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import click

from sqlharbor.api import BackupPolicy, BackupVault, ProtectedDatabase, SqlInstance
from sqlharbor.domain.backupset import RecoveryPoint
from sqlharbor.errors import SqlHarborError
from sqlharbor.kube import KubeClient
from sqlharbor.restoreplan import (
    SourceIdentity,
    describe_point,
    find_source,
    load_points,
    open_catalog,
    split_readable,
    unreadable_note,
    windows,
)
from sqlharbor.vault import Catalog
from sqlharbor.vault.keyring import Keyring
from sqlharbor.vault_access import load_keyring


@dataclass(frozen=True)
class Located:
    vault: BackupVault
    catalog: Catalog
    source: SourceIdentity
    keys: Keyring | None


def client_of(kubeconfig: str | None) -> KubeClient:
    return KubeClient.from_kubeconfig(kubeconfig)


def catalog_of(
    client: KubeClient, namespace: str, vault_name: str
) -> tuple[BackupVault, Catalog, Keyring | None]:
    """The vault, its catalog (endorsement applied when its keys are readable: as the
    operator sees it) and its keyring if this user may read it."""
    vault = client.get(BackupVault, namespace, vault_name)
    keys = keys_of(client, vault)
    return vault, open_catalog(vault, client.secret_value, keys), keys


def locate_protected(client: KubeClient, namespace: str, name: str) -> Located:
    """The vault, catalog and vault identity of a ProtectedDatabase's backups."""
    pd = client.get(ProtectedDatabase, namespace, name)
    instance = client.get(SqlInstance, namespace, pd.spec.instance_ref.name)
    vault_ref = pd.spec.vault_ref
    if vault_ref is None:
        vault_ref = client.get(BackupPolicy, namespace, pd.spec.policy_ref.name).spec.vault_ref
    if vault_ref is None:
        raise click.ClickException(f"ProtectedDatabase {name} has no vault (spec or policy)")
    vault, catalog, keys = catalog_of(client, namespace, vault_ref.name)
    status = pd.status
    known = (status.chain.database_guid if status and status.chain else None) or (
        status.database_guid if status else None
    )
    source = find_source(
        catalog, instance.spec.vault_identity, database_name=pd.spec.database_name, known_guid=known
    )
    return Located(vault, catalog, source, keys)


def keys_of(client: KubeClient, vault: BackupVault) -> Keyring | None:
    """The vault's keyring, or None when this user may not read its key Secrets."""
    try:
        return load_keyring(vault, client.secret_value)
    except SqlHarborError as exc:
        click.echo(f"(keys not checked: {exc.message})", err=True)
        return None


def print_points(points: list[RecoveryPoint], limit: int, keys: Keyring | None = None) -> None:
    unreadable: list[RecoveryPoint] = []
    if keys is not None:
        points, unreadable = split_readable(points, keys)
    spans = windows(points)
    if not spans:
        click.echo("recovery window: none (no full backup yet)")
    for span in spans:
        click.echo(f"recovery window: {span.start.isoformat()} .. {span.end.isoformat()}")
    shown = points[-limit:] if limit > 0 else points
    newest = f" (newest {len(shown)})" if len(shown) < len(points) else ""
    click.echo(f"{len(points)} recovery point(s){newest}:")
    for point in shown:
        click.echo(f"  {describe_point(point)}")
    if unreadable:
        click.echo(f"UNREADABLE: {unreadable_note(unreadable)}; left out of the window:")
        for point in unreadable[-limit:] if limit > 0 else unreadable:
            click.echo(f"  {describe_point(point)}")


@click.command()
@click.argument("protected_db", required=False)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--vault", "vault_name", help="Read this BackupVault (no ProtectedDatabase needed).")
@click.option("--instance", help="Instance as the vault records it (HOST or HOST\\INSTANCE).")
@click.option("--database", "database_name", help="Database name (with --vault).")
@click.option("--guid", "database_guid", help="Database GUID (with --vault).")
@click.option(
    "--limit", type=int, default=50, show_default=True, help="Newest points shown (0: all)."
)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
def points(
    protected_db: str | None,
    namespace: str,
    vault_name: str | None,
    instance: str | None,
    database_name: str | None,
    database_guid: str | None,
    limit: int,
    kubeconfig: str | None,
) -> None:
    """List recovery points and the recovery window (or a vault's databases), from the vault."""
    if (protected_db is None) == (vault_name is None):
        raise click.UsageError("give either PROTECTED_DB or --vault NAME")
    client = client_of(kubeconfig)
    try:
        if protected_db is not None:
            located = locate_protected(client, namespace, protected_db)
            click.echo(
                f"{protected_db}: {located.source.database_name} on {located.source.instance} "
                f"in vault {located.vault.metadata.name}"
            )
            print_points(load_points(located.catalog, located.source), limit, located.keys)
            return
        assert vault_name is not None
        _, catalog, keys = catalog_of(client, namespace, vault_name)
        if database_name is None and database_guid is None:
            entries = [e for e in catalog.databases() if instance in (None, e.instance)]
            click.echo(f"{len(entries)} database(s) in vault {vault_name}:")
            for e in entries:
                click.echo(f"  {e.instance:<30} {e.database_name:<30} {e.database_guid}")
            return
        if instance is None:
            raise click.UsageError("--database/--guid need --instance")
        source = find_source(
            catalog, instance, database_name=database_name, database_guid=database_guid
        )
        click.echo(f"{source.database_name} on {source.instance} ({', '.join(source.guids)})")
        print_points(load_points(catalog, source), limit, keys)
    except SqlHarborError as exc:
        click.echo(f"error: {exc.code}: {exc.message}", err=True)
        sys.exit(1)
    finally:
        client.close()
