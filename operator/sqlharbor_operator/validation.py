"""Validation of BackupVaults (their Secrets exist and hold usable values, their Key Vault keys
answer) and BackupPolicies (cron fields and time zone can be evaluated), written as status
with a clear message.

Called by the controller's tick; writes only when the result changes. The key Secret must
hold an RSA private key (agents wrap with its public half); a legacy symmetric key makes the
vault Unavailable with the way out. A Key Vault key (current or previous) is read and made
to unwrap a probe and to sign (``VaultOpener.probe_key_vault``: get, unwrapKey and sign, as
grants, restores and catalog endorsement need) on a worker thread, in the background: the
tick never waits for Key Vault, and a probe that has not answered within ``PROBE_TIMEOUT``
makes the vault Unavailable. The error's stable code is the Ready condition's reason. The
key itself is never logged or stored in status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlharbor.api import BackupVault, ConditionStatus, VaultPhase
from sqlharbor.errors import ErrorCode, InvalidPolicy, SqlHarborError
from sqlharbor.vault import KeyEncryptionKey
from sqlharbor.vault.keyring import Keyring
from sqlharbor.vault_access import parse_key
from sqlharbor_operator.offload import Offloader
from sqlharbor_operator.runtime import Api
from sqlharbor_operator.scheduling import validate_policy
from sqlharbor_operator.state import Key, State

#: A valid vault is checked again at most this often (a Secret can change under it).
REVALIDATE = timedelta(seconds=60)
#: A Key Vault probe that has not answered by then makes the vault Unavailable.
PROBE_TIMEOUT = timedelta(seconds=45)

#: (ok, message, reason code, status keyId)
Result = tuple[bool, str, str, str | None]
#: blocking: the vault's Key Vault keys probed (``VaultOpener.probe_key_vault``)
KeyProbe = Callable[[BackupVault], list[str]]


def uses_key_vault(vault: BackupVault) -> bool:
    spec = vault.spec.encryption
    return any(ref.key_vault_key_id for ref in spec.keys)


async def _check_vault(api: Api, vault: BackupVault) -> Result:
    """The vault's Secrets (storage, key Secrets); a Key Vault current key is probed apart."""
    ns = vault.metadata.namespace or ""
    spec = vault.spec
    key_id: str | None = None
    try:
        creds = spec.azure_blob.credentials.secret_ref
        if creds is not None:
            value = await api.secret_value(ns, creds.name, creds.key)
            if not value.strip():
                message = f"Secret {creds.name} key {creds.key} is empty"
                return False, message, ErrorCode.INVALID_SECRET, None
        kref = spec.encryption.key_secret_ref
        if kref is not None:
            raw = await api.secret_value(ns, kref.name, kref.key)
            key = parse_key(raw, source=f"Secret {kref.name} key {kref.key}")
            key_id = key.key_id
            if isinstance(key, KeyEncryptionKey):
                message = Keyring([key]).public_refusal()
                return False, message, ErrorCode.VAULT_KEY_INVALID, key_id
        for number, previous in enumerate(spec.encryption.previous_keys or []):
            ref = previous.key_secret_ref
            if ref is not None:  # a Key Vault key is probed below
                value = await api.secret_value(ns, ref.name, ref.key)
                where = f"previousKeys[{number}]: Secret {ref.name} key {ref.key}"
                parse_key(value, source=where)
    except SqlHarborError as exc:
        return False, exc.message, str(exc.code), None
    if kref is None:
        return True, "storage credentials found", ErrorCode.INVALID_SECRET, None
    return True, "storage credentials and RSA wrapping key found", ErrorCode.INVALID_SECRET, key_id


def _probed(found: asyncio.Future[list[str]], secrets: Result, vault: BackupVault) -> Result:
    """The vault's result once its Key Vault probe answered."""
    try:
        keys = found.result()
    except SqlHarborError as exc:
        return False, exc.message, str(exc.code), secrets[3]
    except Exception as exc:  # a bug, not Key Vault's answer: say what, not its text
        return (
            False,
            f"Key Vault probe failed ({type(exc).__name__})",
            ErrorCode.INTERNAL_ERROR,
            None,
        )
    current = vault.spec.encryption.key_vault_key_id is not None
    key_id = keys[0] if current and keys else secrets[3]
    listed = "Key Vault key" + ("s" if len(keys) > 1 else "")
    return (
        True,
        f"{secrets[1]}; {listed} {', '.join(keys)} answered get, unwrapKey and sign",
        "",
        key_id,
    )


class Validator:
    """Remembers what it last wrote so that status is written only when a result changes."""

    def __init__(
        self,
        api: Api,
        probe_key_vault: KeyProbe | None = None,
        offload: Offloader | None = None,
    ) -> None:
        self._api = api
        self._probe = probe_key_vault
        self._offload = offload or Offloader()
        self._vaults: dict[Key, tuple[int | None, str]] = {}
        self._checked: dict[Key, tuple[int | None, datetime]] = {}
        self._policies: dict[Key, tuple[int | None, str, int]] = {}
        #: Key Vault probes in flight: generation, started, the Secrets' result, the probe
        self._probes: dict[Key, tuple[int | None, datetime, Result, asyncio.Future[list[str]]]] = {}

    async def _result(self, key: Key, vault: BackupVault, now: datetime) -> Result | None:
        """This vault's result, or None when there is nothing (new) to write yet."""
        generation = vault.metadata.generation
        pending = self._probes.get(key)
        if pending is not None:
            probed_generation, started, secrets, found = pending
            if probed_generation != generation:
                del self._probes[key]  # outdated; its thread ends on its own
                found.cancel()
            elif found.done():
                del self._probes[key]
                return _probed(found, secrets, vault)
            elif now - started < PROBE_TIMEOUT:
                return None
            else:
                del self._probes[key]
                found.cancel()  # the thread ends on its own (the SDK's timeouts)
                seconds = int(PROBE_TIMEOUT.total_seconds())
                return (
                    False,
                    f"Key Vault did not answer within {seconds} s (get, unwrapKey and sign of the "
                    "vault's keys); tried again in a minute",
                    ErrorCode.KEY_VAULT_TIMEOUT,
                    secrets[3],
                )
        last = self._checked.get(key)
        if last is not None and last[0] == generation and (now - last[1] < REVALIDATE):
            return None
        self._checked[key] = (generation, now)
        secrets = await _check_vault(self._api, vault)
        if not secrets[0] or not uses_key_vault(vault):
            return secrets
        if self._probe is None:
            message = "this operator is not set up to reach Key Vault"
            return False, message, ErrorCode.AZURE_IDENTITY_MISSING, None
        found = self._offload.start(self._probe, vault)
        self._probes[key] = (generation, now, secrets, found)
        return None

    async def vaults(self, state: State, now: datetime) -> None:
        for key, vault in list(state.vaults.items()):
            result = await self._result(key, vault, now)
            if result is None:
                continue
            ok, message, reason, key_id = result
            fingerprint = f"{ok}|{message}|{key_id}"
            if self._vaults.get(key) == (vault.metadata.generation, fingerprint):
                continue
            phase = VaultPhase.AVAILABLE if ok else VaultPhase.UNAVAILABLE
            status: dict[str, Any] = {
                "phase": phase.value,
                "message": message,
                "keyId": key_id,
                "lastValidated": now.isoformat(),
                "observedGeneration": vault.metadata.generation,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": (ConditionStatus.TRUE if ok else ConditionStatus.FALSE).value,
                        "reason": "Validated" if ok else reason,
                        "message": message,
                        "lastTransitionTime": now.isoformat(),
                    }
                ],
            }
            try:
                await self._api.patch_status("BackupVault", key[0], key[1], status)
            except SqlHarborError:
                continue
            self._vaults[key] = (vault.metadata.generation, fingerprint)
            state.upsert("BackupVault", {**vault.to_wire(), "status": status})

    async def policies(self, state: State) -> None:
        users: dict[Key, int] = {}
        for (ns, _), pd in state.databases.items():
            users[(ns, pd.spec.policy_ref.name)] = users.get((ns, pd.spec.policy_ref.name), 0) + 1
        for key, policy in list(state.policies.items()):
            try:
                validate_policy(policy.spec)
                ok, reason, message = True, "Valid", "schedules and time zone are valid"
            except InvalidPolicy as exc:
                ok, reason, message = False, ErrorCode.INVALID_POLICY, str(exc)
            count = users.get(key, 0)
            if self._policies.get(key) == (policy.metadata.generation, message, count):
                continue
            status = {
                "observedGeneration": policy.metadata.generation,
                "protectedDatabases": count,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True" if ok else "False",
                        "reason": reason,
                        "message": message,
                    }
                ],
            }
            try:
                await self._api.patch_status("BackupPolicy", key[0], key[1], status)
            except SqlHarborError:
                continue
            self._policies[key] = (policy.metadata.generation, message, count)
