"""The API server accepts a BackupVault whose storage is reached as an Azure identity, and one
with its keys in Key Vault once it names the Azure
identity the operator reaches them with (each kind of ``encryption.identity``, and a Key
Vault key as a previous key); the refusals are in the invalid corpus (invalid/vault_*)."""

from __future__ import annotations

import json
from typing import Any

import pytest

CLIENT = "3f1b6c2e-8a4d-4c1e-9f2a-7b5d0e6c9a11"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
KEY = "https://myvault.vault.azure.net/keys/kek"
IDENTITIES = {
    "workload": {"workloadIdentity": {}},
    "workload-other-app": {"workloadIdentity": {"clientId": CLIENT}},
    "managed-system": {"managedIdentity": {}},
    "managed-user": {"managedIdentity": {"clientId": CLIENT}},
    "service-principal": {
        "servicePrincipal": {
            "tenantId": TENANT,
            "clientId": CLIENT,
            "clientSecretRef": {"name": "operator-sp", "key": "clientSecret"},
        }
    },
}


def _vault(name: str, encryption: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "sqlharbor.io/v1alpha1",
            "kind": "BackupVault",
            "metadata": {"name": name},
            "spec": {
                "azureBlob": {
                    "container": "sqlharbor-backups",
                    "credentials": {"secretRef": {"name": "vault-storage", "key": "conn"}},
                },
                "encryption": encryption,
            },
        }
    )


@pytest.mark.parametrize("kind", sorted(IDENTITIES))
def test_a_key_vault_key_with_an_identity_is_accepted(
    kubectl: Any, namespace: str, kind: str
) -> None:
    encryption = {
        "keyVaultKeyId": f"{KEY}/0123456789abcdef0123456789abcdef",
        "identity": IDENTITIES[kind],
        "previousKeys": [{"keyVaultKeyId": KEY}, {"keySecretRef": {"name": "old", "key": "pem"}}],
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=_vault(f"kv-{kind}", encryption))
    stored = json.loads(
        kubectl("get", "backupvaults", f"kv-{kind}", "-n", namespace, "-o", "json").stdout
    )
    assert stored["spec"]["encryption"]["identity"] == IDENTITIES[kind]


@pytest.mark.parametrize("kind", sorted(IDENTITIES))
def test_storage_reached_with_an_identity_is_accepted(
    kubectl: Any, namespace: str, kind: str
) -> None:
    """No account key in the cluster: the operator reaches the account as an identity."""
    document = json.loads(_vault(f"blob-{kind}", {"keySecretRef": {"name": "kek", "key": "pem"}}))
    document["spec"]["azureBlob"]["credentials"] = IDENTITIES[kind]
    document["spec"]["azureBlob"]["accountUrl"] = "https://acct.blob.core.windows.net"
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(document))
    stored = json.loads(
        kubectl("get", "backupvaults", f"blob-{kind}", "-n", namespace, "-o", "json").stdout
    )
    assert stored["spec"]["azureBlob"]["credentials"] == IDENTITIES[kind]
