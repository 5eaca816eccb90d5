"""``BackupVault``: where recovery points live (an Azure Blob container + prefix) and which
key-encryption key wraps their data keys.  Spec by users; status by the operator."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import ConfigDict, Field

from sqlharbor.api._base import (
    ApiModel,
    Condition,
    SecretKeyReference,
    StatusModel,
    cel,
    validations,
)


class ManagedIdentity(ApiModel):
    """Use the VM's managed identity (Azure AD) instead of a stored credential."""

    client_id: str | None = Field(
        default=None,
        description="Client id of a user-assigned identity; omit for the system-assigned one.",
        pattern=r"^[0-9a-fA-F-]{36}$",
    )


class BlobCredentials(ApiModel):
    """How the agent authenticates to the storage account: exactly one way."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.secretRef) != has(self.managedIdentity)",
                "set exactly one of credentials.secretRef or credentials.managedIdentity",
            ),
            # refused at apply time until it works end to end (docs/security.md)
            cel(
                "!has(self.managedIdentity)",
                "credentials.managedIdentity is not supported yet: use credentials.secretRef "
                "(a Secret with the storage connection string)",
                ".managedIdentity",
            ),
        )
    )

    secret_ref: SecretKeyReference | None = Field(
        default=None,
        description=(
            "Secret key holding an Azure Storage connection string (or a SAS URL) for the account."
        ),
    )
    managed_identity: ManagedIdentity | None = Field(
        default=None, description="Authenticate with an Azure managed identity."
    )


class AzureBlobLocation(ApiModel):
    """An Azure Blob container and the prefix under which this vault writes."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.credentials.managedIdentity) || has(self.accountUrl)",
                "azureBlob.accountUrl is required with credentials.managedIdentity",
                ".accountUrl",
            )
        )
    )

    account_url: str | None = Field(
        default=None,
        description=(
            "Blob service URL (https://<account>.blob.core.windows.net). Required with a "
            "managed identity; taken from the connection string otherwise."
        ),
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        max_length=2048,
    )
    container: str = Field(
        description="Container name (3-63 lowercase letters, digits and single hyphens).",
        pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
        json_schema_extra=validations(
            cel("!self.contains('--')", "container names cannot contain '--'")
        ),
    )
    prefix: str = Field(
        default="",
        description="Folder inside the container under which every blob of this vault lives.",
        max_length=512,
        pattern=r"^([A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)?$",
    )
    credentials: BlobCredentials = Field(description="How to authenticate to the account.")


class EncryptionSpec(ApiModel):
    """The key-encryption key (KEK) that wraps each recovery point's data key.  The user owns
    it: sqlharbor never stores it anywhere but where this reference points."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.keySecretRef) != has(self.keyVaultKeyId)",
                "set exactly one of encryption.keySecretRef or encryption.keyVaultKeyId",
            ),
            cel(
                "!has(self.keyVaultKeyId)",
                "encryption.keyVaultKeyId is not supported yet: use encryption.keySecretRef "
                "(a Secret with a base64 256-bit key)",
                ".keyVaultKeyId",
            ),
        )
    )

    key_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description="Secret key holding a 256-bit KEK, base64-encoded (openssl rand -base64 32).",
    )
    key_vault_key_id: str | None = Field(
        default=None,
        description="Azure Key Vault key identifier (https://<vault>.vault.azure.net/keys/<name>).",
        pattern=r"^https://[a-z0-9-]+\.vault\.azure\.net/keys/[A-Za-z0-9-]+(/[0-9a-f]{32})?$",
    )


class BackupVaultSpec(ApiModel):
    """Where backups are stored and how they are encrypted."""

    azure_blob: AzureBlobLocation = Field(description="The Azure Blob location of the vault.")
    encryption: EncryptionSpec = Field(description="The key-encryption key of the vault.")


class VaultPhase(enum.StrEnum):
    PENDING = "Pending"
    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"


class BackupVaultStatus(StatusModel):
    """Whether the vault can be used, as the operator last validated it."""

    phase: VaultPhase | None = Field(default=None, description="Available or Unavailable.")
    message: str | None = Field(default=None, description="Why the vault is (un)available.")
    key_id: str | None = Field(
        default=None, description="Public fingerprint of the KEK (never the key itself)."
    )
    last_validated: datetime | None = Field(default=None, description="When last validated.")
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation last validated."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Observations.")
