"""A vault whose storage the operator reaches as an Azure identity (``spec.azureBlob.
credentials.managedIdentity``, ``workloadIdentity`` or ``servicePrincipal``): no account
key anywhere in the cluster, and every job's grant a user delegation SAS.

Real parts: Azurite over HTTPS with ``--oauth basic`` (it checks a bearer token's
audience, issuer and lifetime, not its signature, and issues user delegation keys and
enforces SAS signed with them), the Azure SDKs (azure-identity, azure-storage-blob), and
the token stand-in (``tests/builders/aad_standin``: IMDS and Entra ID).  The code under
test is what the operator runs: ``sqlharbor.vault_access.open_store`` and ``sas_issuer``
with an ``AzureAccess``.  Not exercised: real Entra ID and a real storage account (role
assignments, token signatures, the account's own SAS rules beyond Azurite's).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sqlharbor.api import BackupVault
from sqlharbor.azure_access import AzureAccess, AzureSettings
from sqlharbor.errors import ErrorCode, InvalidInput, SqlHarborError, VaultAccessDenied
from sqlharbor.vault.store_sas import BlobSasStore, ContainerSasStore
from sqlharbor.vault_access import open_store, sas_issuer
from tests.builders import azurite as azurite_builder
from tests.builders.aad_standin import TokenService
from tests.builders.keys import rsa_key
from tests.builders.standin_http import LocalCa

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"
CLIENT = str(uuid.uuid4())


@pytest.fixture(scope="module")
def azurite(
    tmp_path_factory: pytest.TempPathFactory, ca: LocalCa
) -> Iterator[azurite_builder.Azurite]:
    if not azurite_builder.installed():
        pytest.fail("Azurite is not installed: run `npm ci` (make test does)")
    tls = (ca.pki.serving_cert, ca.pki.serving_key)
    with azurite_builder.Azurite(tmp_path_factory.mktemp("azurite-tls"), tls=tls) as server:
        yield server


@pytest.fixture
def azure(ca: LocalCa) -> Iterator[AzureAccess]:
    access = AzureAccess(AzureSettings(ca_bundle=str(ca.ca_file), storage_domains=("127.0.0.1",)))
    yield access
    access.close()


def _vault(account_url: str, credentials: dict[str, object]) -> BackupVault:
    return BackupVault.model_validate(
        {
            "apiVersion": "sqlharbor.io/v1alpha1",
            "kind": "BackupVault",
            "metadata": {"name": "vault", "namespace": NAMESPACE, "generation": 1},
            "spec": {
                "azureBlob": {
                    "accountUrl": account_url,
                    "container": f"identity-{uuid.uuid4().hex[:8]}",
                    "credentials": credentials,
                },
                "encryption": {"keySecretRef": {"name": "kek", "key": "pem"}},
            },
        }
    )


def _read_secret(namespace: str, name: str, key: str) -> bytes:
    assert (namespace, name, key) == (NAMESPACE, "kek", "pem"), "no other Secret is read"
    return rsa_key(0).private_pem()


def test_the_operator_reaches_storage_as_the_managed_identity(
    azurite: azurite_builder.Azurite, imds: TokenService, azure: AzureAccess
) -> None:
    identity = imds.register_managed_identity(CLIENT)
    vault = _vault(azurite.account_url, {"managedIdentity": {"clientId": CLIENT}})
    before = len(imds.log)
    store = open_store(vault, _read_secret, create=True, azure=azure)  # creates the container
    store.put("probe/blob", b"written with a token")
    assert store.get("probe/blob") == b"written with a token"
    assert [info.name for info in store.list("probe/")] == ["probe/blob"]
    store.delete("probe/blob")
    assert not store.exists("probe/blob")
    assert ("imds", identity) in imds.log[before:], "the token came from the managed identity"


def test_grants_are_user_delegation_sas_with_the_job_rights_only(
    azurite: azurite_builder.Azurite, imds: TokenService, azure: AzureAccess, ca: LocalCa
) -> None:
    imds.register_managed_identity(CLIENT)
    vault = _vault(azurite.account_url, {"managedIdentity": {"clientId": CLIENT}})
    container = vault.spec.azure_blob.container
    operator = open_store(vault, _read_secret, create=True, azure=azure)
    operator.put("other/point/manifest.json", b"another point")
    issuer = sas_issuer(vault, _read_secret, azure=azure)
    expires = datetime.now(UTC) + timedelta(hours=1)
    backup = issuer.backup_grant(expires)
    assert "skoid=" in backup, "signed with a user delegation key"
    tls = {"connection_verify": str(ca.ca_file)}

    agent = ContainerSasStore.open(azurite.account_url, container, backup, **tls)
    agent.put("mine/point/data-0000", b"backup bytes")
    assert operator.get("mine/point/data-0000") == b"backup bytes"
    for forbidden in (
        lambda: agent.get("other/point/manifest.json"),
        lambda: list(agent.list("other/")),
        lambda: agent.delete("other/point/manifest.json"),
    ):
        with pytest.raises(VaultAccessDenied):
            forbidden()
    assert operator.get("other/point/manifest.json") == b"another point"

    restore = BlobSasStore.open(
        azurite.account_url,
        container,
        issuer.restore_grant(["mine/point/data-0000"], expires),
        **tls,
    )
    assert restore.get("mine/point/data-0000") == b"backup bytes"
    with pytest.raises(SqlHarborError):
        restore.get("other/point/manifest.json")  # no grant for it at all


def test_an_expired_user_delegation_sas_is_refused(
    azurite: azurite_builder.Azurite, imds: TokenService, azure: AzureAccess, ca: LocalCa
) -> None:
    imds.register_managed_identity(CLIENT)
    vault = _vault(azurite.account_url, {"managedIdentity": {"clientId": CLIENT}})
    open_store(vault, _read_secret, create=True, azure=azure)
    earlier = datetime.now(UTC) - timedelta(hours=2)
    issuer = sas_issuer(vault, _read_secret, azure=azure, now=lambda: earlier)
    token = issuer.backup_grant(earlier + timedelta(minutes=30))  # ended 90 minutes ago
    agent = ContainerSasStore.open(
        azurite.account_url,
        vault.spec.azure_blob.container,
        token,
        connection_verify=str(ca.ca_file),
    )
    with pytest.raises(VaultAccessDenied):
        agent.put("late/blob", b"too late")


@pytest.mark.parametrize("secret_right", [True, False], ids=["right-secret", "wrong-secret"])
def test_a_service_principal_reaches_storage_only_with_its_secret(
    azurite: azurite_builder.Azurite, tokens: TokenService, ca: LocalCa, secret_right: bool
) -> None:
    client_id, secret = str(uuid.uuid4()), uuid.uuid4().hex
    tokens.register_client_secret(client_id, secret)
    principal = {
        "tenantId": tokens.tenant_id,
        "clientId": client_id,
        "clientSecretRef": {"name": "sp", "key": "secret"},
    }
    vault = _vault(azurite.account_url, {"servicePrincipal": principal})

    def read(namespace: str, name: str, key: str) -> bytes:
        if (name, key) == ("sp", "secret"):
            return (secret if secret_right else "not-the-secret").encode()
        return _read_secret(namespace, name, key)

    settings = AzureSettings(
        ca_bundle=str(ca.ca_file),
        authority_host=tokens.authority_url,
        disable_instance_discovery=True,
        storage_domains=("127.0.0.1",),
    )
    with contextlib.closing(AzureAccess(settings)) as azure:
        if secret_right:
            open_store(vault, read, create=True, azure=azure)
            assert "skoid=" in sas_issuer(vault, read, azure=azure).backup_grant(
                datetime.now(UTC) + timedelta(minutes=10)
            )
            return
        with pytest.raises(VaultAccessDenied) as refused:
            sas_issuer(vault, read, azure=azure)
        assert refused.value.code == ErrorCode.STORAGE_AUTHENTICATION_FAILED
        assert "not-the-secret" not in str(refused.value)


def test_an_account_outside_the_allowed_domains_gets_no_token(
    imds: TokenService, ca: LocalCa, tmp_path: Path
) -> None:
    """A BackupVault's author cannot collect the operator's storage tokens."""
    imds.register_managed_identity(CLIENT)
    vault = _vault("https://collector.example.com/acct", {"managedIdentity": {"clientId": CLIENT}})
    azure = AzureAccess(AzureSettings(ca_bundle=str(ca.ca_file)))  # the default domains
    before = len(imds.log)
    try:
        for attempt in (
            lambda: open_store(vault, _read_secret, azure=azure),
            lambda: sas_issuer(vault, _read_secret, azure=azure),
        ):
            with pytest.raises(InvalidInput) as refused:
                attempt()
            assert refused.value.code == ErrorCode.STORAGE_HOST_NOT_ALLOWED
            assert "collector.example.com" in refused.value.message
    finally:
        azure.close()
    assert imds.log[before:] == [], "no token was asked for"
