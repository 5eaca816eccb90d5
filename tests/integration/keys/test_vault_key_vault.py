"""A BackupVault whose keys are in Key Vault, end to end through the real azure-identity and
azure-keyvault-keys SDKs against the stand-ins (tests/builders/{aad,keyvault}_standin.py):
``vault_access.load_keyring`` with each kind of ``encryption.identity``, a restore grant
(``grants.checked_plan``) of points the agent wrapped with Key Vault's public key, and the
operator's vault validation (``Validator`` with ``VaultOpener.probe_key_vault``) reporting
a denied or unreachable Key Vault with its stable code.  No real Key Vault or Entra ID."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlharbor_operator.grants import checked_plan
from sqlharbor_operator.runtime import Api
from sqlharbor_operator.state import State
from sqlharbor_operator.validation import Validator
from sqlharbor_operator.vaults import VaultAccess, VaultOpener

from sqlharbor.api import BackupVault
from sqlharbor.api.jobs import PlanStep, RestorePlanStatus
from sqlharbor.azure_access import AzureAccess, AzureSettings
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import AccessDenied, ErrorCode, InvalidInput
from sqlharbor.vault import Layout, Manifest, Vault
from sqlharbor.vault.identity import WorkloadIdentity
from sqlharbor.vault.keyring import Keyring, PublicWrapper
from sqlharbor.vault.keyvault import KeyVaultKey
from sqlharbor.vault.sas import SasIssuer
from sqlharbor.vault.wrapping import SecretRsaKey, WrappingKey
from sqlharbor.vault_access import load_keyring
from tests.builders.aad_standin import TokenService
from tests.builders.keys import rsa_key
from tests.builders.keyvault_standin import KeyVaultStandin
from tests.builders.records import GUID, backup_record
from tests.builders.standin_http import LocalCa, closed_port
from tests.builders.stores import MemoryBlobStore

INSTANCE = "HOST\\SQL01"
NS = "ns"
ISSUER = SasIssuer("https://acct.blob.core.windows.net", "c", account_key="a2V5")
OLD_KEY_PEM = rsa_key(7).private_pem()


class Secrets:
    """A dict-based Secret reader, recording what was read."""

    def __init__(self, values: dict[tuple[str, str], bytes]) -> None:
        self.values = values
        self.read: list[tuple[str, str, str]] = []

    def __call__(self, namespace: str, name: str, key: str) -> bytes:
        self.read.append((namespace, name, key))
        return self.values[(name, key)]


def backup_vault(key_url: str, identity: dict[str, Any], *, previous: bool = True) -> BackupVault:
    encryption: dict[str, Any] = {"keyVaultKeyId": key_url, "identity": identity}
    if previous:
        encryption["previousKeys"] = [{"keySecretRef": {"name": "old-key", "key": "pem"}}]
    return BackupVault.model_validate(
        {
            "kind": "BackupVault",
            "metadata": {"name": "kv", "namespace": NS, "generation": 1},
            "spec": {
                "azureBlob": {
                    "container": "backups",
                    "credentials": {"secretRef": {"name": "storage", "key": "conn"}},
                },
                "encryption": encryption,
            },
        }
    )


@pytest.fixture
def azure(tokens: TokenService, ca: LocalCa, tmp_path: Path) -> Iterator[AzureAccess]:
    """The operator's settings for the stand-ins, with a workload identity 'injected'."""
    client_id = str(uuid.uuid4())
    assertion = f"federated-{uuid.uuid4().hex}"
    token_file = tmp_path / "sa-token"
    token_file.write_text(assertion)
    tokens.register_federated(client_id, assertion)
    settings = AzureSettings(
        ca_bundle=str(ca.ca_file),
        authority_host=tokens.authority_url,
        disable_instance_discovery=True,
        key_vault_domains=("127.0.0.1",),
        verify_challenge_resource=False,
        workload_identity=WorkloadIdentity(
            tokens.tenant_id, client_id, str(token_file), authority_host=tokens.authority_url
        ),
        timeout_seconds=5.0,
        retry_total=0,
    )
    keys = AzureAccess(settings)
    yield keys
    keys.close()


def identity_of(
    kind: str, tokens: TokenService, keyvault: KeyVaultStandin, azure: AzureAccess, *perms: str
) -> tuple[dict[str, Any], Secrets]:
    """The BackupVault's ``encryption.identity`` of ``kind``, granted ``perms``, and the
    Secrets the operator can read."""
    secrets = Secrets({("old-key", "pem"): OLD_KEY_PEM, ("storage", "conn"): b"x"})
    if kind == "servicePrincipal":
        client_id, secret = str(uuid.uuid4()), f"s-{uuid.uuid4().hex}"
        keyvault.grant(tokens.register_client_secret(client_id, secret), *perms)
        secrets.values[("operator-sp", "clientSecret")] = secret.encode()
        ref = {"name": "operator-sp", "key": "clientSecret"}
        spec = {"tenantId": tokens.tenant_id, "clientId": client_id, "clientSecretRef": ref}
        return {"servicePrincipal": spec}, secrets
    if kind == "managedIdentity":
        client_id = str(uuid.uuid4())
        keyvault.grant(tokens.register_managed_identity(client_id), *perms)
        return {"managedIdentity": {"clientId": client_id}}, secrets
    pod = azure.settings.workload_identity
    assert pod is not None
    keyvault.grant(f"workload:{pod.client_id}", *perms)
    return {"workloadIdentity": {}}, secrets


def agent_point(store: MemoryBlobStore, public: WrappingKey, first: int, last: int) -> Manifest:
    """A point written the agent's way: wrapped with the public key it was granted."""
    agent = Vault(store, Layout("p"), PublicWrapper(public), indexes=False)
    backup_type = BackupType.FULL if first == 1000 else BackupType.LOG
    writer = agent.open_writer(INSTANCE, "Sales", GUID, backup_type)
    writer.write(b"pages" * 100)
    return writer.commit(backup_record(backup_type, guid=GUID, first_lsn=first, last_lsn=last))


def plan(*manifests: Manifest) -> RestorePlanStatus:
    steps = [
        PlanStep(
            recovery_point_id=m.identity.recovery_point_id,
            backup_type=m.backup.backup_type,
            first_lsn=str(m.backup.first_lsn),
            last_lsn=str(m.backup.last_lsn),
            finish=m.backup.finish,
        )
        for m in manifests
    ]
    return RestorePlanStatus(
        instance=INSTANCE, database_guid=GUID, database_name="Sales", steps=steps
    )


def unwraps(keyvault: KeyVaultStandin, since: int) -> list[tuple[str, str | None, int]]:
    return [
        (s.path, s.identity, s.status)
        for s in keyvault.seen[since:]
        if s.path.endswith("/unwrapkey")
    ]


@pytest.mark.parametrize("kind", ["servicePrincipal", "managedIdentity", "workloadIdentity"])
def test_a_key_vault_current_key_and_a_secret_previous_key_open_their_points(
    kind: str,
    imds: TokenService,
    keyvault: KeyVaultStandin,
    azure: AzureAccess,
    kek_versions: list[str],
) -> None:
    identity, secrets = identity_of(kind, imds, keyvault, azure, "get", "unwrapKey", "sign")
    vault = backup_vault(keyvault.key_url("kek"), identity)
    keyring = load_keyring(vault, secrets, azure)
    assert isinstance(keyring.current, KeyVaultKey)
    assert isinstance(keyring.keys[1], SecretRsaKey)
    public = keyring.public()  # what the operator grants the agents
    assert (public.key_id, public.key_version) == (keyvault.key_url("kek"), kek_versions[-1])
    stand_in = keyvault.private_key("kek", kek_versions[-1]).public_key()
    pem = stand_in.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    assert public.to_jwk()["n"] == WrappingKey.from_pem(pem).to_jwk()["n"]

    store = MemoryBlobStore()
    new = agent_point(store, public, 1000, 2000)
    old = agent_point(store, rsa_key(7).public(), 2000, 2100)  # before the move to Key Vault
    since = len(keyvault.seen)
    access = VaultAccess(Vault(store, Layout("p"), keyring), keyring, ISSUER)
    for manifest in (new, old):  # indexed: endorsed with a key Key Vault derived by signing
        access.catalog.add(manifest)
    signed = f"/keys/kek/{kek_versions[-1]}/sign"  # once per process and key version
    assert ("POST", signed, 200) in [(s.method, s.path, s.status) for s in keyvault.seen]
    lines = [
        json.loads(line)
        for b in store.list("p/")
        for line in store.get(b.name).splitlines()
        if b.name.endswith(".jsonl")
    ]
    assert {tuple(line["en"][:2]) for line in lines} == {
        (keyvault.key_url("kek"), kek_versions[-1])
    }
    since = len(keyvault.seen)
    keys, _ = checked_plan(access, plan(new, old))
    assert set(keys) == {new.identity.recovery_point_id, old.identity.recovery_point_id}
    # only the Key Vault point went to Key Vault, as this identity
    seen = unwraps(keyvault, since)
    assert [(path, status) for path, _, status in seen] == [
        (f"/keys/kek/{kek_versions[-1]}/unwrapkey", 200)
    ]
    if kind == "servicePrincipal":
        assert ("ns", "operator-sp", "clientSecret") in secrets.read
        secret = secrets.values[("operator-sp", "clientSecret")].decode()
        assert secret not in repr(keyring)
        assert secret not in repr(azure)


def test_a_restore_grant_is_refused_when_the_identity_may_not_unwrap(
    tokens: TokenService, keyvault: KeyVaultStandin, azure: AzureAccess
) -> None:
    identity, secrets = identity_of("servicePrincipal", tokens, keyvault, azure, "get", "sign")
    keyring = load_keyring(backup_vault(keyvault.key_url("kek"), identity), secrets, azure)
    store = MemoryBlobStore()
    point = agent_point(store, keyring.public(), 1000, 2000)  # get is allowed
    access = VaultAccess(Vault(store, Layout("p"), keyring), keyring, ISSUER)
    access.catalog.add(point)  # indexed (endorsed: sign is allowed)
    with pytest.raises(AccessDenied, match="lacks the unwrapKey key permission") as denied:
        checked_plan(access, plan(point))
    assert denied.value.code == ErrorCode.KEY_VAULT_ACCESS_DENIED
    assert unwraps(keyvault, 0)[-1][2] == 403


def test_a_key_url_outside_the_trusted_domains_is_refused_before_any_request(
    tokens: TokenService, keyvault: KeyVaultStandin, azure: AzureAccess
) -> None:
    identity, secrets = identity_of("workloadIdentity", tokens, keyvault, azure, "get")
    vault = backup_vault("https://evil.example.com/keys/kek", identity, previous=False)
    before = len(tokens.log)
    with pytest.raises(InvalidInput, match="not in a domain the operator trusts") as refused:
        load_keyring(vault, secrets, azure)
    assert refused.value.code == ErrorCode.KEY_VAULT_HOST_NOT_ALLOWED
    assert len(tokens.log) == before


def test_workload_identity_without_the_pods_variables_is_refused(
    tokens: TokenService, keyvault: KeyVaultStandin, azure: AzureAccess
) -> None:
    identity, secrets = identity_of("workloadIdentity", tokens, keyvault, azure, "get")
    bare = AzureAccess(AzureSettings(key_vault_domains=("127.0.0.1",)))
    with pytest.raises(InvalidInput, match="has no workload identity") as refused:
        load_keyring(backup_vault(keyvault.key_url("kek"), identity), secrets, bare)
    assert refused.value.code == ErrorCode.AZURE_IDENTITY_MISSING


# --- the operator's vault validation ----------------------------------------------------


class FakeApi:
    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets
        self.statuses: list[dict[str, Any]] = []

    async def secret_value(self, namespace: str, name: str, key: str) -> bytes:
        return self.secrets(namespace, name, key)

    async def patch_status(
        self, kind: str, namespace: str, name: str, body: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        self.statuses.append(body)
        return body


def validate(vault: BackupVault, secrets: Secrets, opener: VaultOpener) -> dict[str, Any]:
    """Ticks of the validator until it writes the vault's status (the probe runs apart)."""
    api = FakeApi(secrets)
    validator = Validator(cast(Api, api), opener.probe_key_vault)
    state = State()
    state.upsert("BackupVault", vault.to_wire())

    async def ticks() -> None:
        deadline = time.monotonic() + 30
        while not api.statuses and time.monotonic() < deadline:
            await validator.vaults(state, datetime.now(UTC))
            await asyncio.sleep(0.05)

    asyncio.run(ticks())
    assert len(api.statuses) == 1
    return api.statuses[0]


def test_validation_reports_a_usable_key_vault_key(
    tokens: TokenService, keyvault: KeyVaultStandin, azure: AzureAccess, kek_versions: list[str]
) -> None:
    identity, secrets = identity_of(
        "servicePrincipal", tokens, keyvault, azure, "get", "unwrapKey", "sign"
    )
    since = len(keyvault.seen)
    status = validate(
        backup_vault(keyvault.key_url("kek"), identity), secrets, VaultOpener(secrets, azure=azure)
    )
    assert status["phase"] == "Available", status
    assert status["keyId"] == f"{keyvault.key_url('kek')}/{kek_versions[-1]}"
    assert "answered get, unwrapKey and sign" in status["message"]
    assert [s for _, _, s in unwraps(keyvault, since)] == [200]  # the probe really unwrapped


@pytest.mark.parametrize(
    ("perms", "code", "says"),
    [
        (("get",), ErrorCode.KEY_VAULT_ACCESS_DENIED, "lacks the unwrapKey key permission"),
        (("get", "unwrapKey"), ErrorCode.KEY_VAULT_ACCESS_DENIED, "lacks the sign key permission"),
        ((), ErrorCode.KEY_VAULT_ACCESS_DENIED, "lacks the get key permission"),
    ],
)
def test_validation_reports_a_denied_key_vault(
    perms: tuple[str, ...],
    code: ErrorCode,
    says: str,
    tokens: TokenService,
    keyvault: KeyVaultStandin,
    azure: AzureAccess,
) -> None:
    identity, secrets = identity_of("servicePrincipal", tokens, keyvault, azure, *perms)
    status = validate(
        backup_vault(keyvault.key_url("kek"), identity), secrets, VaultOpener(secrets, azure=azure)
    )
    assert status["phase"] == "Unavailable"
    assert says in status["message"]
    assert status["conditions"][0]["reason"] == code
    assert secrets.values[("operator-sp", "clientSecret")].decode() not in str(status)


def test_validation_reports_an_unreachable_key_vault(
    tokens: TokenService, keyvault: KeyVaultStandin, azure: AzureAccess
) -> None:
    identity, secrets = identity_of("servicePrincipal", tokens, keyvault, azure, "get")
    gone = f"https://127.0.0.1:{closed_port()}/keys/kek"
    status = validate(backup_vault(gone, identity), secrets, VaultOpener(secrets, azure=azure))
    assert status["phase"] == "Unavailable"
    assert "cannot reach Key Vault" in status["message"]
    assert status["conditions"][0]["reason"] == ErrorCode.TEMPORARY_FAILURE


def test_a_secret_only_vault_is_validated_without_key_vault(keyvault: KeyVaultStandin) -> None:
    secrets = Secrets({("old-key", "pem"): OLD_KEY_PEM, ("storage", "conn"): b"x"})
    vault = BackupVault.model_validate(
        {
            **backup_vault("https://x.vault.azure.net/keys/k", {}).to_wire(),
            "spec": {
                "azureBlob": {
                    "container": "backups",
                    "credentials": {"secretRef": {"name": "storage", "key": "conn"}},
                },
                "encryption": {"keySecretRef": {"name": "old-key", "key": "pem"}},
            },
        }
    )
    since = len(keyvault.seen)
    status = validate(vault, secrets, VaultOpener(secrets))
    assert status["phase"] == "Available"
    assert status["keyId"] == Keyring([rsa_key(7)]).public().key_id
    assert len(keyvault.seen) == since
