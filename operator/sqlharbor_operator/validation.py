"""Validation of BackupVaults (their Secrets exist and hold usable values) and BackupPolicies
(cron fields and time zone can be evaluated), written as status with a clear message.

Called by the controller's tick; writes only when the result changes.  The key Secret must
hold an RSA private key (agents wrap with its public half); a legacy symmetric key makes
the vault Unavailable with the way out.  The key itself is never logged or stored in status.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlharbor.api import BackupVault, ConditionStatus, VaultPhase
from sqlharbor.errors import ErrorCode, InvalidPolicy, SqlHarborError
from sqlharbor.vault import KeyEncryptionKey
from sqlharbor.vault.keyring import Keyring
from sqlharbor.vault_access import parse_key
from sqlharbor_operator.runtime import Api
from sqlharbor_operator.scheduling import validate_policy
from sqlharbor_operator.state import Key, State

#: A valid vault is checked again at most this often (a Secret can change under it).
REVALIDATE = timedelta(seconds=60)


async def _check_vault(api: Api, vault: BackupVault) -> tuple[bool, str, str | None]:
    ns = vault.metadata.namespace or ""
    spec = vault.spec
    try:
        creds = spec.azure_blob.credentials.secret_ref
        if creds is not None:
            value = await api.secret_value(ns, creds.name, creds.key)
            if not value.strip():
                return False, f"Secret {creds.name} key {creds.key} is empty", None
        kref = spec.encryption.key_secret_ref
        if kref is None:
            return False, "encryption.keyVaultKeyId is not supported yet: use keySecretRef", None
        raw = await api.secret_value(ns, kref.name, kref.key)
        key = parse_key(raw, source=f"Secret {kref.name} key {kref.key}")
        if isinstance(key, KeyEncryptionKey):
            return False, Keyring([key]).public_refusal(), key.key_id
        for number, previous in enumerate(spec.encryption.previous_keys):
            ref = previous.key_secret_ref
            if ref is None:
                return False, f"previousKeys[{number}]: keyVaultKeyId is not supported yet", None
            value = await api.secret_value(ns, ref.name, ref.key)
            parse_key(value, source=f"previousKeys[{number}]: Secret {ref.name} key {ref.key}")
    except SqlHarborError as exc:
        return False, exc.message, None
    listed = (
        f", and {len(spec.encryption.previous_keys)} previous key(s)"
        if spec.encryption.previous_keys
        else ""
    )
    return True, f"storage credentials and RSA wrapping key found{listed}", key.key_id


class Validator:
    """Remembers what it last wrote so that status is written only when a result changes."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self._vaults: dict[Key, tuple[int | None, str]] = {}
        self._checked: dict[Key, tuple[int | None, datetime]] = {}
        self._policies: dict[Key, tuple[int | None, str, int]] = {}

    async def vaults(self, state: State, now: datetime) -> None:
        for key, vault in list(state.vaults.items()):
            last = self._checked.get(key)
            if (
                last is not None
                and last[0] == vault.metadata.generation
                and (now - last[1] < REVALIDATE)
            ):
                continue
            self._checked[key] = (vault.metadata.generation, now)
            ok, message, key_id = await _check_vault(self._api, vault)
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
                        "reason": "Validated" if ok else ErrorCode.INVALID_SECRET,
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
