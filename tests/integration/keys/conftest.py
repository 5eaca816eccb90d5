"""Fixtures for the key tests: the Azure stand-ins, started in-process by the test suite.

Once per session: a test CA (``ca``), the token stand-in (``tokens``: AAD v2 over HTTPS,
IMDS over HTTP) and the Key Vault stand-in (``keyvault``) holding key ``kek`` with two
RSA-3072 versions (``kek_versions``, oldest first; the second is the latest) and key
``legacy`` with one RSA-2048 version.  Nothing outside 127.0.0.1 is reached, and nothing
needs installing: the stand-ins are ``http.server`` and ``cryptography``.

Per test: ``caller(kind, *permissions)`` registers a new identity of that kind
(``managed``: a user-assigned managed identity through IMDS, ``workload``, or
``service-principal``), grants it those Key Vault key permissions and returns its
azure-identity credential, built by ``sqlharbor.vault.identity``; ``open_key(url,
credential)`` opens a ``KeyVaultKey`` pointed at the stand-in.  Both are closed after the
test, and injected faults are cleared.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import TokenCredential

from sqlharbor.vault.identity import (
    ManagedIdentity,
    ServicePrincipal,
    WorkloadIdentity,
    build_credential,
)
from sqlharbor.vault.keyvault import KeyVaultKey
from tests.builders.aad_standin import OTHER_MANAGED_IDENTITY_VARIABLES, TokenService
from tests.builders.keyvault_standin import KeyVaultStandin
from tests.builders.standin_http import LocalCa


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    return LocalCa(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def tokens(ca: LocalCa) -> Iterator[TokenService]:
    service = TokenService(ca)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def keyvault_session(tokens: TokenService, ca: LocalCa) -> Iterator[KeyVaultStandin]:
    standin = KeyVaultStandin(tokens, ca)
    standin.add_version("kek")
    standin.add_version("kek")
    standin.add_version("legacy", bits=2048)
    yield standin
    standin.stop()


@pytest.fixture
def keyvault(keyvault_session: KeyVaultStandin) -> Iterator[KeyVaultStandin]:
    keyvault_session.reset_faults()
    yield keyvault_session
    keyvault_session.reset_faults()


@pytest.fixture
def kek_versions(keyvault: KeyVaultStandin) -> list[str]:
    return keyvault.versions("kek")


@pytest.fixture
def imds(tokens: TokenService, monkeypatch: pytest.MonkeyPatch) -> TokenService:
    """Send ``ManagedIdentityCredential`` to the IMDS stand-in (and nowhere else)."""
    for name in OTHER_MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in tokens.imds_environment().items():
        monkeypatch.setenv(name, value)
    return tokens


@dataclass
class Caller:
    kind: str
    identity: str  # the name the stand-ins know it by
    credential: TokenCredential
    secret: str  # the client secret or the federated assertion ("" for a managed identity)


@pytest.fixture
def caller(
    imds: TokenService, keyvault: KeyVaultStandin, ca: LocalCa, tmp_path: Path
) -> Iterator[Callable[..., Caller]]:
    made: list[Any] = []

    def make(kind: str, *permissions: str, secret: str | None = None) -> Caller:
        client_id = str(uuid.uuid4())
        issued_secret = f"secret-{uuid.uuid4().hex}{uuid.uuid4().hex}"
        if kind == "managed":
            identity = imds.register_managed_identity(client_id)
            options: Any = ManagedIdentity(client_id=client_id)
            issued_secret = ""
        elif kind == "workload":
            identity = imds.register_federated(client_id, issued_secret)
            token_file = tmp_path / f"token-{client_id}"
            token_file.write_text(secret if secret is not None else issued_secret)
            options = WorkloadIdentity(
                imds.tenant_id,
                client_id,
                str(token_file),
                authority_host=imds.authority_url,
                disable_instance_discovery=True,
            )
        elif kind == "service-principal":
            identity = imds.register_client_secret(client_id, issued_secret)
            options = ServicePrincipal(
                imds.tenant_id,
                client_id,
                secret if secret is not None else issued_secret,
                authority_host=imds.authority_url,
                disable_instance_discovery=True,
            )
        else:
            raise ValueError(kind)
        keyvault.grant(identity, *permissions)
        credential = build_credential(options, ca_bundle=str(ca.ca_file))
        made.append(credential)
        return Caller(kind, identity, credential, issued_secret)

    yield make
    for credential in made:
        credential.close()


@pytest.fixture
def open_key(ca: LocalCa) -> Iterator[Callable[..., KeyVaultKey]]:
    """``open_key(url, credential, **options)``: a ``KeyVaultKey`` on the stand-in, without
    SDK retries unless ``retry_total`` is given."""
    opened: list[KeyVaultKey] = []

    def make(url: str, credential: TokenCredential, **options: Any) -> KeyVaultKey:
        settings: dict[str, Any] = {
            "ca_bundle": str(ca.ca_file),
            "verify_challenge_resource": False,
            "retry_total": 0,
        }
        settings.update(options)
        key = KeyVaultKey(url, credential, **settings)
        opened.append(key)
        return key

    yield make
    for key in opened:
        key.close()
