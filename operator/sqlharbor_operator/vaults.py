"""The operator's access to its vaults: the whole ``Vault`` (storage with its management
credential, the keyring, the catalog endorsed with it) and SAS issuing, opened from a
BackupVault and its Secrets (``sqlharbor.vault_access``) and cached for a minute per vault
generation, so a replaced Secret (a rotated account key, a new wrapping key) is picked up
without a restart. Key Vault keys are reached with the operator's ``AzureAccess`` (its
settings and one cached credential per identity); ``probe_key_vault`` checks them for vault
validation.

Called on worker threads (the Azure SDK and Secret reads are blocking) by restore planning,
grants, indexing and retention.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlharbor.api import BackupVault
from sqlharbor.azure_access import AzureAccess, probe
from sqlharbor.vault import Catalog, Layout, Vault
from sqlharbor.vault.keyring import Keyring
from sqlharbor.vault.keyvault import KeyVaultKey
from sqlharbor.vault.sas import SasIssuer
from sqlharbor.vault_access import SecretReader, load_keyring, open_store, sas_issuer

log = logging.getLogger(__name__)

#: how long an opened vault is reused before its Secrets are read again
REOPEN_SECONDS = 60.0


@dataclass(frozen=True)
class VaultAccess:
    vault: Vault
    keyring: Keyring
    issuer: SasIssuer

    @property
    def catalog(self) -> Catalog:
        return self.vault.catalog


class VaultOpener:
    """``opener(vault)``: the operator's ``VaultAccess`` to a BackupVault."""

    def __init__(
        self,
        read_secret: SecretReader,
        *,
        reopen_seconds: float = REOPEN_SECONDS,
        azure: AzureAccess | None = None,
    ):
        self._read = read_secret
        self._reopen = reopen_seconds
        self.azure = azure or AzureAccess()
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, int | None], tuple[float, VaultAccess]] = {}
        self._warned: set[tuple[str, str]] = set()

    def __call__(self, vault: BackupVault) -> VaultAccess:
        key = (vault.metadata.namespace or "", vault.metadata.name, vault.metadata.generation)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < self._reopen:
                return cached[1]
        keyring = load_keyring(vault, self._read, self.azure)
        store = open_store(vault, self._read, create=True, azure=self.azure)  # not agents
        access = VaultAccess(
            Vault(store, Layout(vault.spec.azure_blob.prefix), keyring),
            keyring,
            sas_issuer(vault, self._read, azure=self.azure),
        )
        self._endorsement(vault, access)
        with self._lock:
            self._cache[key] = (now, access)
        return access

    def _endorsement(self, vault: BackupVault, access: VaultAccess) -> None:
        """A new vault (no database registered) requires endorsement from the start; one
        whose catalog predates it is named in a warning (once per process) until an admin
        runs ``vault endorse``."""
        name = (vault.metadata.namespace or "", vault.metadata.name)
        endorsement = access.catalog.endorsement
        if name in self._warned or endorsement.required():
            return  # (a vault found to predate endorsement is not listed again each minute)
        if not access.catalog.databases():
            endorsement.require()
            return
        self._warned.add(name)
        log.warning(
            "BackupVault %s/%s: its catalog predates endorsement, so a point an agent "
            "forged would be listed: run `kubectl sqlharbor vault endorse %s -n %s`",
            name[0],
            name[1],
            name[1],
            name[0],
        )

    def catalog(self, vault: BackupVault) -> Catalog:
        return self(vault).catalog

    def keyring(self, vault: BackupVault) -> Keyring:
        return self(vault).keyring

    def probe_key_vault(self, vault: BackupVault) -> list[str]:
        """Each Key Vault key the vault lists read (get) and tried (unwrapKey), newly opened
        (blocking): their ``id/version``.  Raises the first key's translated error."""
        keyring = load_keyring(vault, self._read, self.azure)
        found = []
        for key in keyring.keys:
            if isinstance(key, KeyVaultKey):
                with key:
                    found.append(probe(key))
        return found
