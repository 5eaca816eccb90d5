"""``sqlharbor vault keygen``: create a vault's RSA wrapping key in a Kubernetes Secret.

Run by an admin.  The private key (RSA-3072, unencrypted PKCS#8 PEM) goes straight from
memory into a new Secret and is never printed; the operator alone reads it (to unwrap
data keys for restores and to publish the public half, which agents wrap with).  An
existing Secret is never overwritten: replacing a vault's key would make every recovery
point it wrapped unreadable.
"""

from __future__ import annotations

import sys

import click

from sqlharbor.errors import AlreadyExists, SqlHarborError
from sqlharbor.kube import KubeClient
from sqlharbor.vault.wrapping import SecretRsaKey


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
