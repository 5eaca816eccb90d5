"""The SAS issuer without a service: what it accepts, and the fields of the tokens it signs."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs

import pytest
from azure.storage.blob import UserDelegationKey

from sqlharbor.errors import ErrorCode, InvalidInput, VaultAccessDenied
from sqlharbor.vault.sas import CLOCK_SKEW, SasIssuer, redact
from sqlharbor.vault.store_sas import BlobSasStore, ContainerSasStore

KEY = base64.b64encode(b"k" * 64).decode()
NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
EXPIRY = NOW + timedelta(hours=2)
AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)
AZURE = (
    f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};"
    "EndpointSuffix=core.windows.net"
)
SAS_ONLY = (
    "BlobEndpoint=https://acct.blob.core.windows.net/;"
    "SharedAccessSignature=sv=2024-11-04&sp=rwdl&sr=c&sig=c2VjcmV0c2lnbmF0dXJl"
)


def fields(token: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(token, strict_parsing=True).items()}


def issuer(connection_string: str = AZURITE) -> SasIssuer:
    return SasIssuer.from_connection_string(connection_string, "vault", now=lambda: NOW)


def test_a_sas_connection_string_cannot_issue_grants() -> None:
    with pytest.raises(InvalidInput) as caught:
        SasIssuer.from_connection_string(SAS_ONLY, "vault")
    assert caught.value.code is ErrorCode.VAULT_CONFIG_INVALID
    assert "account key" in str(caught.value)
    assert "c2VjcmV0c2lnbmF0dXJl" not in str(caught.value)


def test_a_malformed_connection_string_is_not_shown() -> None:
    with pytest.raises(InvalidInput) as caught:
        SasIssuer.from_connection_string(f"AccountKey={KEY};nonsense", "vault")
    assert caught.value.code is ErrorCode.VAULT_CONFIG_INVALID
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("connection_string", "url", "account", "protocol"),
    [
        (AZURITE, "http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1", "https,http"),
        (AZURE, "https://acct.blob.core.windows.net", "acct", "https"),
    ],
)
def test_the_endpoint_decides_the_protocol(
    connection_string: str, url: str, account: str, protocol: str
) -> None:
    grants = issuer(connection_string)
    assert (grants.account_url, grants.account_name, grants.container) == (url, account, "vault")
    assert grants.protocol == protocol
    assert fields(grants.backup_grant(EXPIRY))["spr"] == protocol
    assert fields(grants.restore_grant(["a"], EXPIRY)["a"])["spr"] == protocol


def test_a_backup_grant_is_create_and_write_on_the_container() -> None:
    token = fields(issuer().backup_grant(EXPIRY))
    assert (token["sp"], token["sr"]) == ("cw", "c")
    assert token["st"] == (NOW - CLOCK_SKEW).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert token["se"] == EXPIRY.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_restore_grant_is_read_on_each_blob() -> None:
    tokens = issuer().restore_grant(["p/manifest.json", "p/data-0", "p/data-0"], EXPIRY)
    assert sorted(tokens) == ["p/data-0", "p/manifest.json"]
    signatures = set()
    for token in map(fields, tokens.values()):
        assert (token["sp"], token["sr"]) == ("r", "b")
        signatures.add(token["sig"])
    assert len(signatures) == 2  # each signs its own blob's name
    assert issuer().restore_grant([], EXPIRY) == {}


@pytest.mark.parametrize(
    "expiry",
    [NOW, NOW - timedelta(seconds=1), datetime(2026, 11, 24, 20, 0)],
    ids=["now", "past", "naive"],
)
def test_an_expiry_must_be_aware_and_ahead(expiry: datetime) -> None:
    with pytest.raises(InvalidInput):
        issuer().backup_grant(expiry)
    with pytest.raises(InvalidInput):
        issuer().restore_grant(["a"], expiry)


def test_an_expiry_in_another_zone_is_signed_in_utc() -> None:
    plus_two = EXPIRY.astimezone(timezone(timedelta(hours=2)))
    assert fields(issuer().backup_grant(plus_two))["se"] == EXPIRY.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_issuer_needs_exactly_one_signing_key() -> None:
    with pytest.raises(InvalidInput):
        SasIssuer("https://acct.blob.core.windows.net", "vault")
    with pytest.raises(InvalidInput):
        SasIssuer("ftp://acct", "vault", account_key=KEY)
    with pytest.raises(InvalidInput):
        SasIssuer("https://acct.blob.core.windows.net", "", account_key=KEY)


def test_a_user_delegation_key_signs_a_delegation_sas() -> None:
    """The managed-identity seam: the key's fields go into the token (not tried on AAD)."""
    key = UserDelegationKey()  # type: ignore[no-untyped-call]
    key.signed_oid = "00000000-0000-0000-0000-0000000000aa"
    key.signed_tid = "00000000-0000-0000-0000-0000000000bb"
    key.signed_start = "2026-11-24T17:00:00Z"
    key.signed_expiry = "2026-11-25T17:00:00Z"
    key.signed_service = "b"
    key.signed_version = "2024-11-04"
    key.value = KEY
    grants = SasIssuer.from_user_delegation_key(
        "https://acct.blob.core.windows.net/", "vault", key, now=lambda: NOW
    )
    token = fields(grants.backup_grant(EXPIRY))
    assert (token["sp"], token["sr"], token["skoid"]) == ("cw", "c", key.signed_oid)
    assert fields(grants.restore_grant(["a"], EXPIRY)["a"])["sktid"] == key.signed_tid
    assert "user delegation key" in repr(grants)


def test_nothing_shows_a_key_or_a_token() -> None:
    grants = issuer()
    token = grants.backup_grant(EXPIRY)
    assert KEY not in repr(grants)
    store = BlobSasStore.open(grants.account_url, "vault", {"a": token})
    assert token not in repr(store)
    assert fields(token)["sig"] not in redact(f"GET {grants.account_url}/vault/a?{token} 403")
    assert "sig=REDACTED" in redact(f"?{token}")


def test_a_restore_store_refuses_without_sending() -> None:
    """Nothing listens on this endpoint: every refusal here is local."""
    store = BlobSasStore.open("http://127.0.0.1:9/devstoreaccount1", "vault", {})
    with pytest.raises(VaultAccessDenied, match="does not cover"):
        store.get("p/data-0")
    with pytest.raises(VaultAccessDenied, match="read-only"):
        store.list("p/")


def test_a_grant_must_be_a_sas() -> None:
    with pytest.raises(InvalidInput):
        ContainerSasStore.open("http://127.0.0.1:9/devstoreaccount1", "vault", KEY)
    with pytest.raises(InvalidInput):
        BlobSasStore.open("http://127.0.0.1:9/devstoreaccount1", "vault", {"a": "sv=1&sp=r"})
