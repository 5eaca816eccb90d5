"""The identity options become the azure-identity credential of their kind (built without
network: credentials only reach out when asked for a token), bad options are refused
with messages that name the field and never the secret."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from azure.identity import (
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from sqlharbor.errors import ErrorCode, InvalidInput
from sqlharbor.vault.identity import (
    ManagedIdentity,
    ServicePrincipal,
    WorkloadIdentity,
    build_credential,
)
from tests.builders.key_material import leaked, secret_fragments, texts_of

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b8d2a4e-5c1f-4a8e-9f7d-3e6c2b1a0d9f"
SECRET = "Zq8~vR3.kT_s9uWx2yB-nC4mD7fH1jL5pQ0aE6gI"


@contextmanager
def _built(identity: Any, **kwargs: Any) -> Iterator[Any]:
    credential = build_credential(identity, **kwargs)
    try:
        yield credential
    finally:
        credential.close()  # type: ignore[attr-defined]


@pytest.fixture
def no_workload_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-identity turns a managed identity into workload identity under these."""
    for name in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_workload_environment")
def test_each_kind_becomes_its_credential(tmp_path: Any) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("a projected service account token")
    with _built(ManagedIdentity()) as system:
        assert isinstance(system, ManagedIdentityCredential)
    with _built(ManagedIdentity(client_id=CLIENT)) as user_assigned:
        assert isinstance(user_assigned, ManagedIdentityCredential)
    workload = WorkloadIdentity(TENANT, CLIENT, str(token_file))
    with _built(workload, ca_bundle="/etc/ssl/certs/ca-certificates.crt") as credential:
        assert isinstance(credential, WorkloadIdentityCredential)
    principal = ServicePrincipal(TENANT, CLIENT, SECRET, authority_host="login.microsoftonline.us")
    with _built(principal) as credential:
        assert isinstance(credential, ClientSecretCredential)


def test_the_client_secret_is_not_in_the_repr() -> None:
    principal = ServicePrincipal(TENANT, CLIENT, SECRET)
    assert SECRET not in repr(principal)
    assert SECRET not in str(principal)
    assert CLIENT in repr(principal)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ServicePrincipal("", CLIENT, SECRET), "tenant id"),
        (lambda: ServicePrincipal("a/b", CLIENT, SECRET), "tenant id"),
        (lambda: ServicePrincipal(TENANT, "", SECRET), "client id"),
        (lambda: ServicePrincipal(TENANT, CLIENT, ""), "client secret is empty"),
        (
            lambda: ServicePrincipal(TENANT, CLIENT, SECRET, authority_host="http://login.x"),
            "must be an https host",
        ),
        (
            lambda: ServicePrincipal(TENANT, CLIENT, SECRET, authority_host="https://h/tenant"),
            "must be an https host",
        ),
        (lambda: WorkloadIdentity(TENANT, CLIENT, ""), "token file"),
        (lambda: ManagedIdentity(client_id="not an id"), "client id"),
    ],
)
def test_bad_options_are_refused_without_the_secret(build: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        build()
    assert caught.value.code == ErrorCode.INVALID_CONFIGURATION
    assert leaked(texts_of(caught.value), secret_fragments(SECRET)) == []


def test_workload_identity_from_the_webhook_environment() -> None:
    env = {
        "AZURE_TENANT_ID": TENANT,
        "AZURE_CLIENT_ID": CLIENT,
        "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
    }
    identity = WorkloadIdentity.from_env(env)
    assert identity == WorkloadIdentity(
        TENANT,
        CLIENT,
        "/var/run/secrets/azure/tokens/azure-identity-token",
        authority_host="https://login.microsoftonline.com/",
    )
    with pytest.raises(InvalidInput, match="AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE not set"):
        WorkloadIdentity.from_env({"AZURE_TENANT_ID": TENANT})


def test_service_principal_from_a_kubernetes_secret() -> None:
    asked: list[tuple[str, str, str]] = []

    def read_secret(namespace: str, name: str, key: str) -> bytes:
        asked.append((namespace, name, key))
        return {"clientSecret": SECRET.encode() + b"\n", "empty": b" \n", "binary": b"\xff\xfe"}[
            key
        ]

    principal = ServicePrincipal.from_secret(
        read_secret,
        namespace="ns",
        name="kv-sp",
        key="clientSecret",
        tenant_id=TENANT,
        client_id=CLIENT,
    )
    assert principal.client_secret == SECRET  # the newline of `kubectl create --from-file`
    assert asked == [("ns", "kv-sp", "clientSecret")]
    for key in ("empty", "binary"):
        with pytest.raises(InvalidInput, match=f"Secret ns/kv-sp key '{key}' holds no") as caught:
            ServicePrincipal.from_secret(
                read_secret,
                namespace="ns",
                name="kv-sp",
                key=key,
                tenant_id=TENANT,
                client_id=CLIENT,
            )
        assert caught.value.code == ErrorCode.INVALID_SECRET
