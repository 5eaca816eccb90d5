"""Open a ``BackupVault`` resource with the rights that its Secrets give: its keyring (the
private wrapping key and any legacy key, or keys in Azure Key Vault reached with the
vault's ``encryption.identity``: ``sqlharbor.key_vault_access``), its storage (account
key), and SAS issuing.

Only the operator and the CLI (run by an admin) call this: they hold the vault's
management credential and the unwrap side of its keys.  Agents never do: they get a
job's grant (``contract.grants``).  The caller supplies how Secrets are read.  No key
material or connection string reaches a message, a log line or a repr.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlharbor.api import BackupVault
from sqlharbor.api.vault import KeyReference
from sqlharbor.errors import ErrorCode, InvalidInput
from sqlharbor.key_vault_access import AzureKeys
from sqlharbor.vault import AzureBlobStore, KeyEncryptionKey, Layout, Vault
from sqlharbor.vault.keyring import Keyring, Listed
from sqlharbor.vault.sas import SasIssuer
from sqlharbor.vault.wrapping import SecretRsaKey

#: (namespace, secret name, key) -> value
SecretReader = Callable[[str, str, str], bytes]

_PEM = b"-----BEGIN"


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
    azure: AzureKeys | None = None,
) -> Listed:
    """One key a vault lists (its current key or a previous one); a Key Vault key is
    reached with ``azure`` (default settings when None: the public cloud)."""
    if ref.key_vault_key_id is not None:
        return (azure or AzureKeys()).open(vault, ref.key_vault_key_id, read_secret)
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
    vault: BackupVault, read_secret: SecretReader, azure: AzureKeys | None = None
) -> Keyring:
    """The vault's keys: ``spec.encryption`` (current) first, then its ``previousKeys``."""
    spec = vault.spec.encryption
    refs: list[KeyReference] = spec.keys
    azure = azure or AzureKeys()
    return Keyring([open_key(vault, ref, read_secret, azure) for ref in refs])


def storage_connection(vault: BackupVault, read_secret: SecretReader) -> str:
    """The vault's storage connection string (its management credential)."""
    ref = vault.spec.azure_blob.credentials.secret_ref
    if ref is None:
        raise InvalidInput(
            f"BackupVault {vault.metadata.name}: a managed identity for the vault's storage "
            "is not supported yet",
            code=ErrorCode.UNSUPPORTED_CREDENTIALS,
            remediation="Use credentials.secretRef with a connection string.",
        )
    return read_secret(vault.metadata.namespace or "", ref.name, ref.key).decode()


def open_store(
    vault: BackupVault, read_secret: SecretReader, *, create: bool = False
) -> AzureBlobStore:
    blob = vault.spec.azure_blob
    return AzureBlobStore.from_connection_string(
        storage_connection(vault, read_secret), blob.container, create=create
    )


def open_vault(
    vault: BackupVault,
    read_secret: SecretReader,
    *,
    create: bool = False,
    azure: AzureKeys | None = None,
) -> Vault:
    """The whole vault: storage with the account key, and the keyring."""
    return Vault(
        open_store(vault, read_secret, create=create),
        Layout(vault.spec.azure_blob.prefix),
        load_keyring(vault, read_secret, azure),
    )


def sas_issuer(vault: BackupVault, read_secret: SecretReader) -> SasIssuer:
    return SasIssuer.from_connection_string(
        storage_connection(vault, read_secret), vault.spec.azure_blob.container
    )
