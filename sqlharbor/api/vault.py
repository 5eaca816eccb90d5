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
    """A managed identity of the machine the operator runs on (IMDS): system-assigned, or
    user-assigned by client id."""

    client_id: str | None = Field(
        default=None,
        description="Client id of a user-assigned identity; omit for the system-assigned one.",
        pattern=r"^[0-9a-fA-F-]{36}$",
    )


#: a Key Vault (or Managed HSM) key URL of any Azure cloud; which hosts the operator
#: trusts with its identity's token is the operator's setting (--azure-key-vault-domains)
KEY_VAULT_KEY_URL = (
    r"^https://[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?/keys/[A-Za-z0-9-]{1,127}"
    r"(/[0-9a-fA-F]{32})?$"
)
_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class KeyReference(ApiModel):
    """One RSA wrapping key: in a Kubernetes Secret (only the operator reads it) or in Azure
    Key Vault (the operator reaches it with ``encryption.identity``)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.keySecretRef) != has(self.keyVaultKeyId)",
                "set exactly one of keySecretRef or keyVaultKeyId",
            ),
        )
    )

    key_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description=(
            "Secret key holding the RSA private key (PEM; kubectl sqlharbor vault keygen), "
            "or a legacy base64 256-bit key (only as a previous key)."
        ),
    )
    key_vault_key_id: str | None = Field(
        default=None,
        description=(
            "Azure Key Vault or Managed HSM key URL (https://<vault>.vault.azure.net/keys/"
            "<name>[/<version>]; without a version: the latest). An RSA or RSA-HSM key that "
            "encryption.identity may get, unwrapKey and sign with; its private half never leaves "
            "Key Vault."
        ),
        max_length=512,
        pattern=KEY_VAULT_KEY_URL,
    )

    @property
    def ref(self) -> str:
        """``secret:NAME/KEY`` or ``keyvault:URL``: how status and the vault-keys policy
        (config/policy/vault_keys.yaml, which builds the same string) name this key."""
        if self.key_secret_ref is not None:
            return f"secret:{self.key_secret_ref.name}/{self.key_secret_ref.key}"
        return f"keyvault:{self.key_vault_key_id}"


class WorkloadIdentityRef(ApiModel):
    """AKS workload identity of the operator's pod (the variables the webhook injects:
    AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE)."""

    client_id: str | None = Field(
        default=None,
        description=(
            "Client id of another app registration federated with the operator's service "
            "account; omit for the one its annotation names (AZURE_CLIENT_ID)."
        ),
        pattern=_GUID,
    )


class ServicePrincipalRef(ApiModel):
    """An app registration and its client secret, in a Secret the operator reads."""

    tenant_id: str = Field(description="Entra ID tenant (directory) id.", pattern=_GUID)
    client_id: str = Field(description="Application (client) id.", pattern=_GUID)
    client_secret_ref: SecretKeyReference = Field(
        description="Secret key holding the client secret (the operator must be allowed to "
        "get this Secret)."
    )


class AzureIdentityChoice(ApiModel):
    """An Azure identity of the operator: one of its pod's workload identity, the managed
    identity of its node, or an app registration (the field's rules say how many)."""

    workload_identity: WorkloadIdentityRef | None = Field(
        default=None, description="The operator pod's AKS workload identity."
    )
    managed_identity: ManagedIdentity | None = Field(
        default=None, description="The managed identity of the node the operator runs on."
    )
    service_principal: ServicePrincipalRef | None = Field(
        default=None, description="An app registration with a client secret."
    )


class KeyVaultIdentity(AzureIdentityChoice):
    """The Azure identity the operator uses for this vault's Key Vault keys: exactly one."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.workloadIdentity) ? 1 : 0) + (has(self.managedIdentity) ? 1 : 0) + "
                "(has(self.servicePrincipal) ? 1 : 0) == 1",
                "set exactly one of encryption.identity.workloadIdentity, "
                "encryption.identity.managedIdentity or encryption.identity.servicePrincipal",
            ),
        )
    )


class BlobCredentials(AzureIdentityChoice):
    """The vault's management credential, held by the operator alone (agents get a SAS per
    job): a Secret with the account's connection string, or an Azure identity with a role
    on the account that reads, writes and deletes blobs and gets user delegation keys
    (Storage Blob Data Contributor) — then every job's SAS is a user delegation SAS and no
    account key exists anywhere in the cluster.  Exactly one."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.secretRef) ? 1 : 0) + (has(self.workloadIdentity) ? 1 : 0) + "
                "(has(self.managedIdentity) ? 1 : 0) + (has(self.servicePrincipal) ? 1 : 0) "
                "== 1",
                "set exactly one of credentials.secretRef, credentials.workloadIdentity, "
                "credentials.managedIdentity or credentials.servicePrincipal",
            ),
        )
    )

    secret_ref: SecretKeyReference | None = Field(
        default=None,
        description="Secret key holding the account's Azure Storage connection string, with "
        "its account key (the operator signs each job's SAS with it).",
    )

    @property
    def identity(self) -> AzureIdentityChoice | None:
        """The Azure identity, or None with a secretRef."""
        return None if self.secret_ref is not None else self


class AzureBlobLocation(ApiModel):
    """An Azure Blob container and the prefix under which this vault writes."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.credentials.secretRef) || (has(self.accountUrl) && "
                "self.accountUrl.startsWith('https://'))",
                "azureBlob.accountUrl is required with an identity in credentials, as an "
                "https URL (https://<account>.blob.core.windows.net): tokens are sent over TLS "
                "only",
                ".accountUrl",
            )
        )
    )

    account_url: str | None = Field(
        default=None,
        description=(
            "Blob service URL (https://<account>.blob.core.windows.net). Required with an "
            "identity in credentials; taken from the connection string otherwise."
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


class EncryptionSpec(KeyReference):
    """The vault's current wrapping key (agents wrap each new point's data key with its
    public half; only the operator unwraps) and the keys of older points.  The user owns
    them: sqlharbor never stores a key anywhere but where these references point."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.keySecretRef) != has(self.keyVaultKeyId)",
                "set exactly one of keySecretRef or keyVaultKeyId",
            ),
            cel(
                "has(self.identity) || !(has(self.keyVaultKeyId) || (has(self.previousKeys) "
                "&& self.previousKeys.exists(k, has(k.keyVaultKeyId))))",
                "encryption.identity is required with a keyVaultKeyId (here or in "
                "previousKeys): set identity.workloadIdentity, identity.managedIdentity or "
                "identity.servicePrincipal, the Azure identity the operator reaches Key Vault "
                "with",
                ".identity",
            ),
        )
    )

    identity: KeyVaultIdentity | None = Field(
        default=None,
        description=(
            "The operator's Azure identity for the Key Vault keys (current and previous); "
            "required with a keyVaultKeyId."
        ),
    )
    previous_keys: list[KeyReference] | None = Field(
        default=None,
        max_length=16,
        description=(
            "Keys that no longer wrap new points but still open older ones. Keep a key here "
            "while any point it wraps is kept; a point whose key is not listed is unreadable."
        ),
    )

    @property
    def keys(self) -> list[KeyReference]:
        """The current key, then the previous ones."""
        return [self, *(self.previous_keys or [])]


class BackupVaultSpec(ApiModel):
    """Where backups are stored and how they are encrypted."""

    azure_blob: AzureBlobLocation = Field(description="The Azure Blob location of the vault.")
    encryption: EncryptionSpec = Field(description="The key-encryption key of the vault.")


class VaultPhase(enum.StrEnum):
    PENDING = "Pending"
    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"


class KeyUse(StatusModel):
    """How many recovery points one key the vault lists wraps (the operator's census)."""

    ref: str = Field(description="The key as spec.encryption names it (KeyReference.ref).")
    key_id: str = Field(default="", description="The key's id (public).")
    key_version: str = Field(default="", description="The key's version.")
    points: int = Field(default=0, ge=0, description="Recovery points it wraps.")


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
    keys: list[KeyUse] = Field(
        default_factory=list,
        description="Recovery points per listed key, as last counted; a key that still wraps "
        "points cannot be removed from spec.encryption (config/policy/vault_keys.yaml).",
    )
    keys_counted: datetime | None = Field(default=None, description="When keys was counted.")
    conditions: list[Condition] = Field(default_factory=list, description="Observations.")
