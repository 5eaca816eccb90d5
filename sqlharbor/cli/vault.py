"""``sqlharbor vault keygen``, ``vault rekey`` and ``vault endorse``: a vault's keys and
catalog, run by an admin.

``keygen SECRET`` creates a vault's RSA wrapping key in a Kubernetes Secret.  The private
key (RSA-3072, unencrypted PKCS#8 PEM) goes straight from memory into a new Secret and is
never printed; the operator alone reads it (to unwrap data keys for restores and to
publish the public half, which agents wrap with).  An existing Secret is never
overwritten: replacing a vault's key would make every recovery point it wrapped
unreadable.  To rotate: create a new key, make it the vault's current key and list the old
one under ``spec.encryption.previousKeys``; ``rekey VAULT`` then re-wraps every point's
data key with the current key (manifests only, resumable, with progress), after which the
old key can go.  ``endorse VAULT`` brings a catalog that predates endorsement under it
(``sqlharbor.vault.endorse``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import click

from sqlharbor.api import BackupVault
from sqlharbor.errors import AlreadyExists, SqlHarborError
from sqlharbor.kube import KubeClient
from sqlharbor.vault.endorse import EndorseReport
from sqlharbor.vault.endorse import endorse as endorse_vault
from sqlharbor.vault.rekey import RekeyReport
from sqlharbor.vault.rekey import rekey as rekey_vault
from sqlharbor.vault.wrapping import SecretRsaKey
from sqlharbor.vault_access import SecretReader, load_keyring, open_vault

T = TypeVar("T")


@click.group()
def vault() -> None:
    """Manage vault keys."""


@vault.command()
@click.argument("secret")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--key", "data_key", default="key", show_default=True, help="Key inside the Secret.")
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
def keygen(secret: str, namespace: str, data_key: str, kubeconfig: str | None) -> None:
    """Create Secret SECRET holding a new RSA-3072 wrapping key for a BackupVault.

    \b
    Then reference it from the vault:
      spec.encryption.keySecretRef: {name: SECRET, key: key}
    """
    key = SecretRsaKey.generate()
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret, "labels": {"app.kubernetes.io/part-of": "sqlharbor"}},
        "type": "Opaque",
        "stringData": {data_key: key.private_pem().decode("ascii")},
    }
    try:
        client = KubeClient.from_kubeconfig(kubeconfig)
        client.call(
            f"create Secret {namespace}/{secret}",
            client.core.create_namespaced_secret,
            namespace,
            body,
        )
    except AlreadyExists:
        click.echo(
            f"error: Secret {namespace}/{secret} already exists; it is never overwritten "
            "(replacing a vault's key makes its recovery points unreadable)",
            err=True,
        )
        sys.exit(1)
    except SqlHarborError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    public = key.public()
    click.echo(
        f"created Secret {namespace}/{secret} with an RSA-{key.bits} wrapping key "
        f"(key id {public.key_id}); use it as spec.encryption.keySecretRef "
        f"{{name: {secret}, key: {data_key}}}"
    )


@vault.command()
@click.argument("name")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
def rekey(name: str, namespace: str, kubeconfig: str | None) -> None:
    """Re-wrap every recovery point of BackupVault NAME with its current key.

    Data is not touched; points already under the current key are skipped, so an
    interrupted run is finished by running it again.  Afterwards the previous keys can be
    removed from spec.encryption.previousKeys.
    """

    def run(resource: BackupVault, read: SecretReader) -> RekeyReport:
        keyring = load_keyring(resource, read)
        return rekey_vault(open_vault(resource, read), keyring, progress=_progress("rekeyed"))

    report = _on_vault(kubeconfig, namespace, name, run)
    click.echo(
        f"{report.points} point(s): {report.rekeyed} rekeyed, {report.current} already under "
        f"the current key, {report.gone} deleted meanwhile, {len(report.failed)} failed"
    )
    for point, why in report.failed:
        click.echo(f"  {point}: {why}", err=True)
    if report.failed:
        sys.exit(1)


@vault.command()
@click.argument("name")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
def endorse(name: str, namespace: str, kubeconfig: str | None) -> None:
    """Endorse the existing catalog of BackupVault NAME, then require endorsement.

    For a vault whose catalog predates endorsement (sqlharbor 0.9): each listed point's
    manifest is checked against its catalog line and the line endorsed with the vault's
    key; then only endorsed lines count, so a point an agent forges is never restored.
    Run it once, right after upgrading; running it again is harmless.
    """

    def run(resource: BackupVault, read: SecretReader) -> EndorseReport:
        return endorse_vault(open_vault(resource, read), progress=_progress("endorsed"))

    report = _on_vault(kubeconfig, namespace, name, run)
    click.echo(
        f"{report.points} point(s): {report.endorsed} endorsed, {report.gone} deleted "
        f"meanwhile, {len(report.refused)} refused"
    )
    for point, why in report.refused:
        click.echo(f"  {point}: {why}", err=True)
    if not report.required:
        click.echo("endorsement NOT required yet: fix the refused points, then run again")
        sys.exit(1)
    click.echo("the vault now requires endorsement: only endorsed catalog lines count")


def _progress(verb: str) -> Callable[[int, int, float], None]:
    """Prints ``VERB done/total point(s) (percent), rate`` at most every 2 s and at the end."""
    shown = [0.0]

    def progress(done: int, total: int, seconds: float) -> None:
        if done == total or seconds - shown[0] >= 2:
            shown[0] = seconds
            rate = done / seconds if seconds > 0 else 0.0
            click.echo(
                f"{verb} {done}/{total} point(s) ({100 * done // max(total, 1)}%), "
                f"{rate:.1f} points/s"
            )

    return progress


def _on_vault(
    kubeconfig: str | None,
    namespace: str,
    name: str,
    run: Callable[[BackupVault, SecretReader], T],
) -> T:
    """``run`` on BackupVault NAME with the CLI's kubeconfig; an error is printed with its
    code and ends the command."""
    client = KubeClient.from_kubeconfig(kubeconfig)
    try:
        return run(client.get(BackupVault, namespace, name), client.secret_value)
    except SqlHarborError as exc:
        click.echo(f"error: {exc.code}: {exc.message}", err=True)
        sys.exit(1)
    finally:
        client.close()
