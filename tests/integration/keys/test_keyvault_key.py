"""``KeyVaultKey`` through the real azure-keyvault-keys and azure-identity SDKs against the
stand-ins: the VM's local wrap with the JWK read through the SDK, unwrapped on the service
side, for each credential kind; versions; and every failure as the sqlharbor error a user
can act on, with no secret in any repr or message."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from sqlharbor.errors import (
    AccessDenied,
    ErrorCode,
    IntegrityError,
    InvalidKey,
    NotFound,
    PermanentError,
    SqlHarborError,
    TemporaryError,
)
from sqlharbor.vault.keys import new_data_key
from sqlharbor.vault.keyvault import KeyVaultKey
from sqlharbor.vault.wrapping import WrappingKey
from tests.builders.aad_standin import TokenService
from tests.builders.key_material import leaked, private_key_fragments, secret_fragments, texts_of
from tests.builders.keyvault_standin import RESOURCE, KeyVaultStandin
from tests.builders.standin_http import LocalCa

KINDS = ("managed", "workload", "service-principal")
MakeCaller = Callable[..., Any]  # the ``caller`` fixture (conftest.py)
OpenKey = Callable[..., KeyVaultKey]


def _published(key: KeyVaultKey) -> WrappingKey:
    """What an agent on a VM rebuilds from the operator's status: JWK, id and version."""
    public = key.public()
    status = json.loads(
        json.dumps(
            {"jwk": public.to_jwk(), "keyId": public.key_id, "keyVersion": public.key_version}
        )
    )
    return WrappingKey.from_jwk(
        status["jwk"], key_id=status["keyId"], key_version=status["keyVersion"]
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_local_wrap_unwraps_in_key_vault(
    kind: str,
    caller: MakeCaller,
    open_key: OpenKey,
    keyvault: KeyVaultStandin,
    tokens: TokenService,
    kek_versions: list[str],
) -> None:
    who = caller(kind, "get", "unwrapKey")
    key = open_key(keyvault.key_url("kek"), who.credential)  # no version: the latest
    vm_key = _published(key)
    assert key.key_version == vm_key.key_version == kek_versions[-1]
    assert vm_key.key_id == key.key_id == keyvault.key_url("kek")
    assert vm_key.bits == 3072
    data_key = new_data_key()
    assert key.unwrap(vm_key.wrap(data_key), recovery_point_id="rp-1") == data_key
    unwraps = [s for s in keyvault.seen if s.path.endswith("/unwrapkey")]
    assert unwraps[-1].path == f"/keys/kek/{kek_versions[-1]}/unwrapkey"
    assert (unwraps[-1].identity, unwraps[-1].status) == (who.identity, 200)
    endpoint = "imds" if kind == "managed" else "aad"
    assert (endpoint, who.identity) in tokens.log


def test_a_system_assigned_managed_identity(
    imds: TokenService, keyvault: KeyVaultStandin, open_key: OpenKey, ca: LocalCa
) -> None:
    from sqlharbor.vault.identity import ManagedIdentity, build_credential

    identity = imds.register_managed_identity()
    keyvault.grant(identity, "get", "unwrapKey")
    credential = build_credential(ManagedIdentity(), ca_bundle=str(ca.ca_file))
    try:
        key = open_key(keyvault.key_url("kek"), credential)
        data_key = new_data_key()
        assert key.unwrap(key.public().wrap(data_key), recovery_point_id="rp-s") == data_key
    finally:
        credential.close()  # type: ignore[attr-defined]
    assert ("imds", "msi:system") in imds.log


def test_the_latest_version_is_read_once_and_kept(
    caller: MakeCaller, open_key: OpenKey, keyvault: KeyVaultStandin, kek_versions: list[str]
) -> None:
    """Rotation: a key object keeps the version it resolved; older points name theirs."""
    name = "rotating"
    old = kek_versions[0]
    for version in kek_versions:  # the same material under a key of its own
        keyvault.add_version(name, private_key=keyvault.private_key("kek", version))
    first, second = keyvault.versions(name)
    who = caller("service-principal", "get", "unwrapKey")
    latest = open_key(keyvault.key_url(name), who.credential)
    assert "latest (not yet read)" in repr(latest)
    wrapped_second = latest.public().wrap(k2 := new_data_key())
    assert latest.key_version == second
    third = keyvault.add_version(name, private_key=keyvault.private_key("kek", old))
    assert latest.key_version == second  # recorded, not re-read
    assert latest.unwrap(wrapped_second, recovery_point_id="rp-2") == k2
    assert open_key(keyvault.key_url(name), who.credential).key_version == third
    with latest.at_version(first) as older:
        wrapped_first = older.public().wrap(k1 := new_data_key())
        assert older.unwrap(wrapped_first, recovery_point_id="rp-1") == k1
        assert older.key_id == latest.key_id
    with pytest.raises(IntegrityError, match=f"rp-1: .*version {second}"):
        latest.unwrap(wrapped_first, recovery_point_id="rp-1")


def test_a_tampered_wrapped_key_is_an_integrity_error_naming_the_point(
    caller: MakeCaller, open_key: OpenKey, keyvault: KeyVaultStandin
) -> None:
    who = caller("workload", "get", "unwrapKey")
    key = open_key(keyvault.key_url("kek"), who.credential)
    wrapped = bytearray(key.public().wrap(new_data_key()))
    wrapped[7] ^= 0x80
    with pytest.raises(IntegrityError) as caught:
        key.unwrap(bytes(wrapped), recovery_point_id="rp-tampered")
    message = str(caught.value)
    assert "recovery point rp-tampered" in message
    assert f"key {key.key_id} version {key.key_version}" in message
    assert "HTTP 400, BadParameter" in message
    assert caught.value.code == ErrorCode.VAULT_INTEGRITY_FAILURE
    asked = len(keyvault.seen)
    with pytest.raises(IntegrityError, match="rp-cut"):
        key.unwrap(bytes(wrapped[:-2]), recovery_point_id="rp-cut")
    assert len(keyvault.seen) == asked  # a wrong length is refused before asking Key Vault


def test_a_wrong_key_version_is_a_clear_error(
    caller: MakeCaller, open_key: OpenKey, keyvault: KeyVaultStandin, kek_versions: list[str]
) -> None:
    old, new = kek_versions
    who = caller("service-principal", "get", "unwrapKey")
    wrapped = open_key(keyvault.key_url("kek", new), who.credential).public().wrap(new_data_key())
    pinned_old = open_key(keyvault.key_url("kek", old), who.credential)
    with pytest.raises(IntegrityError, match=f"recovery point rp-5: .* version {old} "):
        pinned_old.unwrap(wrapped, recovery_point_id="rp-5")
    with pytest.raises(IntegrityError, match=f"rp-5 was wrapped with key .* version {new}"):
        pinned_old.check_written_with(pinned_old.key_id, new, recovery_point_id="rp-5")
    missing = "0" * 32
    gone = open_key(keyvault.key_url("kek", missing), who.credential)
    for attempt in (gone.public, lambda: gone.unwrap(wrapped, recovery_point_id="rp-6")):
        with pytest.raises(NotFound, match=f"version {missing}: the key or version does not"):
            attempt()
    with pytest.raises(NotFound) as caught:
        gone.unwrap(wrapped, recovery_point_id="rp-6")
    assert caught.value.code == ErrorCode.KEY_VAULT_KEY_NOT_FOUND
    assert "recovery point rp-6" in str(caught.value)


def test_a_missing_unwrap_permission_is_permanent_and_names_it(
    caller: MakeCaller, open_key: OpenKey, keyvault: KeyVaultStandin
) -> None:
    who = caller("managed", "get")
    key = open_key(keyvault.key_url("kek"), who.credential)
    wrapped = key.public().wrap(new_data_key())
    with pytest.raises(AccessDenied) as caught:
        key.unwrap(wrapped, recovery_point_id="rp-7")
    error = caught.value
    assert isinstance(error, PermanentError)
    assert error.code == ErrorCode.KEY_VAULT_ACCESS_DENIED
    assert "unwrapKey" in error.remediation
    assert "Microsoft.KeyVault/vaults/keys/unwrap/action" in error.remediation
    assert "recovery point rp-7" in str(error)
    assert "lacks the unwrapKey key permission (HTTP 403, Forbidden, ForbiddenByPolicy)" in str(
        error
    )
    assert keyvault.seen[-1].status == 403


def test_a_missing_get_permission_names_get_and_unwrap_needs_only_unwrap(
    caller: MakeCaller, open_key: OpenKey, keyvault: KeyVaultStandin, kek_versions: list[str]
) -> None:
    who = caller("workload", "unwrapKey")
    key = open_key(keyvault.key_url("kek", kek_versions[0]), who.credential)
    with pytest.raises(AccessDenied) as caught:
        key.public()
    assert "permission get" in caught.value.remediation
    assert "keys/read" in caught.value.remediation
    # the operator published the JWK; a restore identity may hold unwrapKey only
    published = keyvault.private_key("kek", kek_versions[0]).public_key()
    data_key = new_data_key()
    wrapped = WrappingKey(published).wrap(data_key)
    assert key.unwrap(wrapped, recovery_point_id="rp-8") == data_key
    assert [s.status for s in keyvault.seen[-2:]] == [403, 200]  # the SDK's get, then unwrap
    latest = open_key(keyvault.key_url("kek"), who.credential)  # the latest needs get
    with pytest.raises(AccessDenied, match=r"rp-9: Key Vault get .*lacks the get key permission"):
        latest.unwrap(wrapped, recovery_point_id="rp-9")


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(429, "7", 7.0), (503, None, None), (500, "2", 2.0)],
)
def test_throttling_and_5xx_are_temporary(
    caller: MakeCaller,
    open_key: OpenKey,
    keyvault: KeyVaultStandin,
    status: int,
    retry_after: str | None,
    expected: float | None,
) -> None:
    who = caller("service-principal", "get", "unwrapKey")
    key = open_key(keyvault.key_url("kek"), who.credential)
    keyvault.fail_next(status, retry_after=retry_after)
    with pytest.raises(TemporaryError) as caught:
        key.public()
    assert type(caught.value) is TemporaryError
    assert caught.value.retry_after == expected
    assert f"HTTP {status}" in str(caught.value)
    wrapped = key.public().wrap(new_data_key())  # the next request goes through
    keyvault.fail_next(status, retry_after=retry_after)
    with pytest.raises(TemporaryError, match=f"recovery point rp-t: .*HTTP {status}"):
        key.unwrap(wrapped, recovery_point_id="rp-t")


def test_the_sdk_retries_a_503_that_asks_for_no_wait(
    caller: MakeCaller, open_key: OpenKey, keyvault: KeyVaultStandin
) -> None:
    who = caller("service-principal", "get", "unwrapKey")
    key = open_key(keyvault.key_url("kek"), who.credential, retry_total=1)
    wrapped = key.public().wrap(data_key := new_data_key())
    keyvault.fail_next(503, retry_after="0")
    assert key.unwrap(wrapped, recovery_point_id="rp-r") == data_key
    assert [s.status for s in keyvault.seen[-2:]] == [503, 200]


@pytest.mark.parametrize("kind", ["service-principal", "workload"])
def test_a_wrong_secret_is_an_authentication_failure(
    kind: str, caller: MakeCaller, open_key: OpenKey, keyvault: KeyVaultStandin
) -> None:
    wrong = "wrong-" + "x" * 30
    who = caller(kind, "get", "unwrapKey", secret=wrong)
    key = open_key(keyvault.key_url("kek"), who.credential)
    with pytest.raises(AccessDenied) as caught:
        key.public()
    assert caught.value.code == ErrorCode.KEY_VAULT_AUTHENTICATION_FAILED
    assert "authentication failed" in str(caught.value)
    assert leaked(texts_of(caught.value), secret_fragments(wrong, who.secret)) == []


def test_an_untrusted_certificate_is_permanent(
    caller: MakeCaller,
    open_key: OpenKey,
    keyvault: KeyVaultStandin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    who = caller("managed", "get")
    key = open_key(keyvault.key_url("kek"), who.credential, ca_bundle=None)
    with pytest.raises(PermanentError, match="TLS certificate is not trusted") as caught:
        key.public()
    assert "CA bundle" in caught.value.remediation


def test_a_2048_bit_key_that_exists_is_accepted_unless_refused(
    caller: MakeCaller, open_key: OpenKey, keyvault: KeyVaultStandin
) -> None:
    who = caller("service-principal", "get", "unwrapKey")
    legacy = open_key(keyvault.key_url("legacy"), who.credential)
    data_key = new_data_key()
    assert legacy.unwrap(_published(legacy).wrap(data_key), recovery_point_id="rp-l") == data_key
    strict = open_key(keyvault.key_url("legacy"), who.credential, min_bits=3072)
    with pytest.raises(InvalidKey, match="2048 bits; at least 3072") as caught:
        strict.public()
    assert caught.value.code == ErrorCode.WRAPPING_KEY_INVALID


@pytest.mark.parametrize(
    ("settings", "refusal", "unwrap_refusal"),
    [
        ({"kty": "RSA-HSM"}, None, None),
        ({"key_ops": ("sign", "verify")}, "does not permit the unwrapKey", "does not permit"),
        ({"enabled": False}, "version is disabled", "version is disabled"),
    ],
)
def test_the_key_type_operations_and_state_are_checked(
    caller: MakeCaller,
    open_key: OpenKey,
    keyvault: KeyVaultStandin,
    kek_versions: list[str],
    settings: dict[str, Any],
    refusal: str | None,
    unwrap_refusal: str | None,
) -> None:
    material = keyvault.private_key("kek", kek_versions[0])
    name = "checked-" + "-".join(settings)
    version = keyvault.add_version(name, private_key=material, **settings)
    who = caller("service-principal", "get", "unwrapKey")
    key = open_key(keyvault.key_url(name, version), who.credential)
    if refusal is None:  # an HSM key wraps and unwraps like a software key
        data_key = new_data_key()
        assert key.unwrap(_published(key).wrap(data_key), recovery_point_id="rp-h") == data_key
        return
    with pytest.raises(PermanentError, match=refusal) as caught:
        key.public()
    assert caught.value.code == ErrorCode.KEY_VAULT_REQUEST_REFUSED
    wrapped = WrappingKey(material.public_key()).wrap(new_data_key())
    with pytest.raises(AccessDenied, match=rf"rp-k: .*{unwrap_refusal}.*HTTP 403") as denied:
        key.unwrap(wrapped, recovery_point_id="rp-k")
    assert denied.value.code == ErrorCode.KEY_VAULT_REQUEST_REFUSED
    assert "permission" not in denied.value.remediation  # the key, not the identity


def test_key_vault_challenges_a_request_without_a_valid_token(
    keyvault: KeyVaultStandin, tokens: TokenService, ca: LocalCa
) -> None:
    context = ca.client_context()

    def get(token: str | None) -> urllib.error.HTTPError:
        request = urllib.request.Request(f"{keyvault.url}/keys/kek?api-version=7.5")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, context=context)
        caught.value.close()
        return caught.value

    for token in (None, "not-issued-by-the-token-stand-in"):
        answer = get(token)
        assert answer.code == 401
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge == (
            f'Bearer authorization="{tokens.authority_url}/{tokens.tenant_id}", '
            f'resource="{RESOURCE}"'
        )
    with pytest.raises(urllib.error.URLError) as refused:  # TLS with its own CA only
        urllib.request.urlopen(keyvault.url, context=ssl.create_default_context())
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)


def test_no_secret_in_any_repr_or_error(
    caller: MakeCaller,
    open_key: OpenKey,
    keyvault: KeyVaultStandin,
    tokens: TokenService,
    kek_versions: list[str],
) -> None:
    good = caller("service-principal", "get", "unwrapKey")
    no_unwrap = caller("service-principal", "get")
    wrong = "bad-" + "y" * 30
    bad = caller("service-principal", "get", "unwrapKey", secret=wrong)
    key = open_key(keyvault.key_url("kek"), good.credential)
    data_key = new_data_key()
    wrapped = key.public().wrap(data_key)
    assert key.unwrap(wrapped, recovery_point_id="rp") == data_key
    attempts: list[Callable[[], object]] = [
        lambda: key.unwrap(wrapped[::-1], recovery_point_id="rp"),
        lambda: open_key(keyvault.key_url("kek"), no_unwrap.credential).unwrap(
            wrapped, recovery_point_id="rp"
        ),
        lambda: open_key(keyvault.key_url("kek"), bad.credential).unwrap(
            wrapped, recovery_point_id="rp"
        ),
        lambda: open_key(keyvault.key_url("kek", "f" * 32), good.credential).unwrap(
            wrapped, recovery_point_id="rp"
        ),
    ]
    texts = [repr(key), str(key), repr(key.public()), repr(good.credential)]
    for attempt in attempts:
        with pytest.raises(SqlHarborError) as caught:
            attempt()
        texts += texts_of(caught.value)
    fragments = secret_fragments(data_key, good.secret, no_unwrap.secret, bad.secret, wrong)
    fragments += secret_fragments(*tokens.issued_tokens())
    for version in kek_versions:
        fragments += private_key_fragments(keyvault.private_key("kek", version))
    assert len(texts) > 4 * 3
    assert leaked([good.secret], fragments)  # the check can fail
    assert leaked(texts, fragments) == []
