"""``kubectl sqlharbor vault endorse VAULT`` on a real API server and Azurite: a vault
whose catalog predates endorsement is endorsed point by point (progress shown), then
requires endorsement; a line its manifest contradicts keeps the vault as it was."""

from __future__ import annotations

import json
import uuid

from click.testing import CliRunner
from sqlharbor_devtools.devenv import ControlPlane, KubectlRunner

from sqlharbor.cli.main import _register, cli
from sqlharbor.domain.backupset import BackupType
from sqlharbor.vault import AzureBlobStore, Layout, Vault
from sqlharbor.vault.keyring import PublicWrapper
from tests.builders.keys import keyring, rsa_key
from tests.builders.records import GUID, backup_record

INSTANCE = "HOST\\SQL01"


def _setup(kubectl: KubectlRunner, namespace: str, azurite: str) -> tuple[str, AzureBlobStore]:
    container = f"en-{uuid.uuid4().hex[:10]}"
    secrets = {
        "vault-storage": ("connectionString", azurite),
        "vault-kek": ("kek", rsa_key(0).private_pem().decode()),
    }
    for name, (key, value) in secrets.items():
        kubectl(
            "create", "secret", "generic", name, f"--from-literal={key}={value}", "-n", namespace
        )
    vault = {
        "apiVersion": "sqlharbor.io/v1alpha1",
        "kind": "BackupVault",
        "metadata": {"name": "vault"},
        "spec": {
            "azureBlob": {
                "container": container,
                "prefix": "prod",
                "credentials": {"secretRef": {"name": "vault-storage", "key": "connectionString"}},
            },
            "encryption": {"keySecretRef": {"name": "vault-kek", "key": "kek"}},
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(vault))
    return container, AzureBlobStore.from_connection_string(azurite, container)


def _legacy_points(store: AzureBlobStore, count: int) -> None:
    """Points indexed the way sqlharbor 0.9 did: lines without endorsement."""
    legacy = Vault(store, Layout("prod"), PublicWrapper(rsa_key(0).public()))
    for n in range(1, count + 1):
        writer = legacy.open_writer(INSTANCE, "Sales", GUID, BackupType.LOG)
        writer.write(b"log" * 100)
        writer.commit(
            backup_record(
                BackupType.LOG, guid=GUID, first_lsn=n * 1000 + 1000, last_lsn=n * 1000 + 1100
            )
        )


def _endorse(control_plane: ControlPlane, namespace: str) -> tuple[int, str]:
    _register()
    args = [
        "vault",
        "endorse",
        "vault",
        "-n",
        namespace,
        "--kubeconfig",
        str(control_plane.kubeconfig),
    ]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output


def test_endorse_a_legacy_vault(
    control_plane: ControlPlane, kubectl: KubectlRunner, namespace: str, azurite: str
) -> None:
    _, store = _setup(kubectl, namespace, azurite)
    _legacy_points(store, 3)
    code, output = _endorse(control_plane, namespace)
    assert code == 0, output
    assert "endorsed 3/3 point(s) (100%)" in output
    assert "3 point(s): 3 endorsed, 0 deleted meanwhile, 0 refused" in output
    catalog = Vault(store, Layout("prod"), keyring(0)).catalog
    assert catalog.endorsement.required()
    assert len(catalog.list_points(INSTANCE, GUID)) == 3
    assert rsa_key(0).private_pem().decode().splitlines()[1] not in output


def test_a_contradicted_line_keeps_the_vault_as_it_was(
    control_plane: ControlPlane,
    kubectl: KubectlRunner,
    namespace: str,
    azurite: str,
) -> None:
    _, store = _setup(kubectl, namespace, azurite)
    _legacy_points(store, 2)
    layout = Layout("prod")
    [segment] = [b.name for b in store.list(layout.points_dir(INSTANCE, GUID))]
    lines = store.get(segment).splitlines(keepends=True)
    edited = json.loads(lines[0])
    edited["l"] = "999999"  # the line now says another LSN range than its manifest
    store.append(segment, json.dumps(edited).encode() + b"\n")
    code, output = _endorse(control_plane, namespace)
    assert code == 1, output
    assert "1 refused" in output
    assert "endorsement NOT required yet" in output
    assert not Vault(store, layout, keyring(0)).catalog.endorsement.required()
