"""Open a ``BackupVault`` resource with the rights that its Secrets give: its keyring (the
private wrapping key and any legacy key, or keys in Azure Key Vault reached with the
vault's ``encryption.identity``: ``sqlharbor.azure_access``), its storage (with the
account key of a connection string, or as the Azure identity its credentials name), and
SAS issuing (signed with the account key, or with a user delegation key).

Only the operator and the CLI (run by an admin) call this: they hold the vault's
management credential and the unwrap side of its keys.  Agents never do: they get a
job's grant (``contract.grants``).  The caller supplies how Secrets are read.  No key
material or connection string reaches a message, a log line or a repr.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlharbor.api import BackupVault
from sqlharbor.api.vault import KeyReference
from sqlharbor.azure_access import AzureAccess
from sqlharbor.errors import ErrorCode, InvalidInput, VaultAccessDenied
from sqlharbor.vault import AzureBlobStore, KeyEncryptionKey, Layout, Vault
from sqlharbor.vault.keyring import Keyring, Listed
from sqlharbor.vault.sas import SasIssuer
from sqlharbor.vault.wrapping import SecretRsaKey

#: (namespace, secret name, key) -> value
SecretReader = Callable[[str, str, str], bytes]

_PEM = b"-----BEGIN"
#: how long a user delegation key signs grants (Azure allows at most 7 days); the
#: operator gets a new one each time it reopens the vault
DELEGATION_KEY_LIFETIME = timedelta(days=2)


def parse_key(value: bytes, *, source: str) -> Listed:
    """A key Secret's value: a PEM RSA private key (sqlharbor 0.9 and later: agents wrap
    with its public half), or a base64 256-bit key (a legacy symmetric KEK: it still
    opens the points it wrapped, but cannot be a vault's current key)."""
    if value.lstrip().startswith(_PEM):
        return SecretRsaKey.from_pem(value, source=source)
    return KeyEncryptionKey.from_base64(value, source=source)


def open_key(
    vault: BackupVault,
    ref: KeyReference,
    read_secret: SecretReader,
    azure: AzureAccess | None = None,
) -> Listed:
    """One key a vault lists (its current key or a previous one); a Key Vault key is
    reached with ``azure`` (default settings when None: the public cloud)."""
    if ref.key_vault_key_id is not None:
        return (azure or AzureAccess()).open(vault, ref.key_vault_key_id, read_secret)
    secret = ref.key_secret_ref
    if secret is None:
        raise InvalidInput(
            f"BackupVault {vault.metadata.name}: a key names neither keySecretRef nor "
            "keyVaultKeyId",
            code=ErrorCode.UNSUPPORTED_KEY_SOURCE,
        )
    value = read_secret(vault.metadata.namespace or "", secret.name, secret.key)
    return parse_key(value, source=f"Secret {secret.name} key {secret.key}")


def load_keyring(
    vault: BackupVault, read_secret: SecretReader, azure: AzureAccess | None = None
) -> Keyring:
    """The vault's keys: ``spec.encryption`` (current) first, then its ``previousKeys``."""
    spec = vault.spec.encryption
    refs: list[KeyReference] = spec.keys
    azure = azure or AzureAccess()
    return Keyring([open_key(vault, ref, read_secret, azure) for ref in refs])


def storage_connection(vault: BackupVault, read_secret: SecretReader) -> str:
    """The vault's storage connection string (a vault with a secretRef)."""
    ref = vault.spec.azure_blob.credentials.secret_ref
    if ref is None:
        raise InvalidInput(
            f"BackupVault {vault.metadata.name}: its storage is reached with an identity, "
            "not a connection string",
            code=ErrorCode.UNSUPPORTED_CREDENTIALS,
        )
    return read_secret(vault.metadata.namespace or "", ref.name, ref.key).decode()


def open_store(
    vault: BackupVault,
    read_secret: SecretReader,
    *,
    create: bool = False,
    azure: AzureAccess | None = None,
) -> AzureBlobStore:
    """The vault's container with its management credential: the connection string's
    account key, or a token of the identity its credentials name."""
    blob = vault.spec.azure_blob
    if blob.credentials.secret_ref is not None:
        return AzureBlobStore.from_connection_string(
            storage_connection(vault, read_secret), blob.container, create=create
        )
    access = (azure or AzureAccess()).storage(vault, read_secret)
    return AzureBlobStore.from_account_url(
        access.account_url,
        blob.container,
        access.credential,
        create=create,
        **access.options,
    )


def open_vault(
    vault: BackupVault,
    read_secret: SecretReader,
    *,
    create: bool = False,
    azure: AzureAccess | None = None,
) -> Vault:
    """The whole vault: storage with its management credential, and the keyring."""
    return Vault(
        open_store(vault, read_secret, create=create, azure=azure),
        Layout(vault.spec.azure_blob.prefix),
        load_keyring(vault, read_secret, azure),
    )


def sas_issuer(
    vault: BackupVault,
    read_secret: SecretReader,
    *,
    azure: AzureAccess | None = None,
    now: Callable[[], datetime] | None = None,
) -> SasIssuer:
    """Who signs the vault's job grants: its account key, or (with an identity) a user
    delegation key valid for ``DELEGATION_KEY_LIFETIME`` that the identity gets from the
    account — revoked with the account's user delegation keys or the identity's role."""
    blob = vault.spec.azure_blob
    if blob.credentials.secret_ref is not None:
        return SasIssuer.from_connection_string(
            storage_connection(vault, read_secret), blob.container, now=now
        )
    access = (azure or AzureAccess()).storage(vault, read_secret)
    try:
        return SasIssuer.from_identity(
            access.account_url,
            blob.container,
            access.credential,
            lifetime=DELEGATION_KEY_LIFETIME,
            now=now,
            **access.options,
        )
    except VaultAccessDenied as exc:
        raise VaultAccessDenied(
            f"BackupVault {vault.metadata.name}: {exc.message}",
            code=ErrorCode.STORAGE_AUTHENTICATION_FAILED,
        ) from None
