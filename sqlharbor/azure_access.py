"""Reach Azure as the identities a ``BackupVault`` names: the Key Vault keys it lists
(``spec.encryption.keyVaultKeyId`` and ``previousKeys``, as ``spec.encryption.identity``)
and its storage account (``spec.azureBlob.credentials`` with an identity instead of a
connection string: a token credential for the account, from which the operator also gets
the user delegation keys that sign each job's SAS).

``AzureSettings`` is how the operator (or the CLI) reaches Azure, built once by its ``main``
and passed down: a CA bundle to trust instead of the system's (a TLS proxy, a private CA,
the tests' stand-ins), the Entra ID authority host (sovereign clouds, Azure Stack), the
pod's workload identity as injected into its environment, and the DNS domains of the Key
Vaults and storage accounts the operator will send its identity's tokens to (a URL
elsewhere is refused before any request: a BackupVault's author must not be able to
collect the operator's tokens).  ``AzureAccess(settings)`` keeps one credential per
identity (their tokens are cached), opens ``KeyVaultKey`` objects and hands out storage
credentials (``storage``); ``probe`` checks that a key can be read and can unwrap (get
and unwrapKey), for the operator's vault validation.

Called by ``sqlharbor.vault_access`` (``open_key``); the client secret of a service
principal is read with the caller's Secret reader and is never in a message or a repr.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlharbor.api import BackupVault
from sqlharbor.api.vault import AzureIdentityChoice
from sqlharbor.errors import ErrorCode, IntegrityError, InvalidInput
from sqlharbor.vault.identity import (
    Credential,
    Credentials,
    Identity,
    ManagedIdentity,
    ServicePrincipal,
    WorkloadIdentity,
)
from sqlharbor.vault.keyvault import KeyVaultKey, parse_key_url

#: (namespace, secret name, key) -> value
SecretReader = Callable[[str, str, str], bytes]

#: Key Vault and Managed HSM domains of the public, China and US Government clouds
KEY_VAULT_DOMAINS: tuple[str, ...] = (
    "vault.azure.net",
    "managedhsm.azure.net",
    "vault.azure.cn",
    "managedhsm.azure.cn",
    "vault.usgovcloudapi.net",
    "managedhsm.usgovcloudapi.net",
)
#: Blob service domains of the public, China and US Government clouds (and Azure DNS zone
#: endpoints, <account>.zNN.blob.storage.azure.net)
STORAGE_DOMAINS: tuple[str, ...] = (
    "blob.core.windows.net",
    "blob.core.chinacloudapi.cn",
    "blob.core.usgovcloudapi.net",
    "blob.storage.azure.net",
)
PROBE_POINT = "(validation probe)"


@dataclass(frozen=True)
class AzureSettings:
    """How this process reaches Entra ID and Key Vault (see the module docstring)."""

    #: PEM file of CAs to trust for Entra ID and Key Vault instead of the system's
    ca_bundle: str | None = None
    #: Entra ID authority host for service principals (workload identity: the pod's
    #: AZURE_AUTHORITY_HOST first); None: the public cloud
    authority_host: str | None = None
    #: for an authority host Microsoft does not know (Azure Stack, a stand-in)
    disable_instance_discovery: bool = False
    #: key URLs must be on one of these hosts or under one of these domains
    key_vault_domains: tuple[str, ...] = KEY_VAULT_DOMAINS
    #: account URLs reached with an identity must be on one of these hosts or domains
    storage_domains: tuple[str, ...] = STORAGE_DOMAINS
    #: False accepts a token challenge for a resource that is not the key's domain (only
    #: the tests' stand-ins on 127.0.0.1 need it)
    verify_challenge_resource: bool = True
    #: the pod's workload identity (from the webhook's variables), if it has one
    workload_identity: WorkloadIdentity | None = None
    #: bound on connecting to Key Vault and on each read
    timeout_seconds: float = 20.0
    #: the SDK's own retries of throttled and failed requests
    retry_total: int = 3


class AzureAccess:
    """Opens Key Vault keys with settings and one cached credential per identity."""

    def __init__(self, settings: AzureSettings | None = None) -> None:
        self.settings = settings or AzureSettings()
        self._credentials = Credentials(ca_bundle=self.settings.ca_bundle)

    def open(self, vault: BackupVault, key_url: str, read_secret: SecretReader) -> KeyVaultKey:
        """The key at ``key_url``, reached as the vault's ``encryption.identity``."""
        where = f"BackupVault {vault.metadata.name}"
        parse_key_url(key_url)
        check_host(key_url, self.settings.key_vault_domains, where=where, what="Key Vault")
        identity = self.identity(vault, read_secret)
        return KeyVaultKey(
            key_url,
            self._credentials(identity),
            ca_bundle=self.settings.ca_bundle,
            verify_challenge_resource=self.settings.verify_challenge_resource,
            retry_total=self.settings.retry_total,
            timeout_seconds=self.settings.timeout_seconds,
        )

    def identity(self, vault: BackupVault, read_secret: SecretReader) -> Identity:
        """The identity ``spec.encryption.identity`` names, with this process's settings."""
        spec = vault.spec.encryption.identity
        where = f"BackupVault {vault.metadata.name}"
        if spec is None:
            raise InvalidInput(
                f"{where}: a keyVaultKeyId needs encryption.identity",
                code=ErrorCode.AZURE_IDENTITY_MISSING,
            )
        return _identity(spec, self.settings, vault.metadata.namespace or "", read_secret, where)

    def storage(self, vault: BackupVault, read_secret: SecretReader) -> StorageAccess:
        """The vault's account URL and a token credential for it, as the identity
        ``spec.azureBlob.credentials`` names (a vault with a secretRef has none)."""
        blob = vault.spec.azure_blob
        where = f"BackupVault {vault.metadata.name}"
        spec = blob.credentials.identity
        if spec is None or not blob.account_url:
            raise InvalidInput(
                f"{where}: azureBlob.credentials names no identity (or no accountUrl)",
                code=ErrorCode.AZURE_IDENTITY_MISSING,
            )
        check_host(
            blob.account_url,
            self.settings.storage_domains,
            where=where,
            what="storage",
            code=ErrorCode.STORAGE_HOST_NOT_ALLOWED,
        )
        identity = _identity(
            spec, self.settings, vault.metadata.namespace or "", read_secret, where
        )
        options = {"connection_verify": self.settings.ca_bundle} if self.settings.ca_bundle else {}
        return StorageAccess(blob.account_url, self._credentials(identity), options)

    def close(self) -> None:
        self._credentials.close()

    def __repr__(self) -> str:
        return f"AzureAccess({self._credentials!r})"


@dataclass(frozen=True)
class StorageAccess:
    """A storage account reached with an identity: its URL, a token credential, and the
    options the Azure SDK clients need (the CA bundle to trust)."""

    account_url: str
    credential: Credential = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict)


def _identity(
    spec: AzureIdentityChoice,
    settings: AzureSettings,
    namespace: str,
    read_secret: SecretReader,
    where: str,
) -> Identity:
    if spec.managed_identity is not None:
        return ManagedIdentity(client_id=spec.managed_identity.client_id)
    if spec.workload_identity is not None:
        pod = settings.workload_identity
        if pod is None:
            raise InvalidInput(
                f"{where}: encryption.identity.workloadIdentity, but the operator's pod has "
                "no workload identity (AZURE_TENANT_ID, AZURE_CLIENT_ID and "
                "AZURE_FEDERATED_TOKEN_FILE are not set)",
                code=ErrorCode.AZURE_IDENTITY_MISSING,
                remediation="Label the operator's pod azure.workload.identity/use=true and "
                "annotate its service account with azure.workload.identity/client-id, or use "
                "another encryption.identity.",
            )
        return WorkloadIdentity(
            tenant_id=pod.tenant_id,
            client_id=spec.workload_identity.client_id or pod.client_id,
            token_file=pod.token_file,
            authority_host=pod.authority_host or settings.authority_host,
            disable_instance_discovery=settings.disable_instance_discovery,
        )
    principal = spec.service_principal
    if principal is None:
        raise InvalidInput(
            f"{where}: encryption.identity names no identity",
            code=ErrorCode.AZURE_IDENTITY_MISSING,
        )
    ref = principal.client_secret_ref
    return ServicePrincipal.from_secret(
        read_secret,
        namespace=namespace,
        name=ref.name,
        key=ref.key,
        tenant_id=principal.tenant_id,
        client_id=principal.client_id,
        authority_host=settings.authority_host,
        disable_instance_discovery=settings.disable_instance_discovery,
    )


def check_host(
    url: str,
    domains: tuple[str, ...],
    *,
    where: str,
    what: str,
    code: ErrorCode = ErrorCode.KEY_VAULT_HOST_NOT_ALLOWED,
) -> None:
    """Refuse a URL whose host is not one of ``domains`` or under one: the operator sends
    its identity's tokens there."""
    host = (urlsplit(url).hostname or "").lower()
    for domain in domains:
        domain = domain.strip().lower().lstrip(".")
        if domain and (host == domain or host.endswith(f".{domain}")):
            return
    raise InvalidInput(
        f"{where}: {what} host {host[:100]!r} is not in a domain the operator trusts "
        f"({', '.join(domains)})",
        code=code,
    )


def probe(key: KeyVaultKey) -> str:
    """Read ``key``'s public half (get), unwrap a random key wrapped with it (unwrapKey),
    as a restore will, and sign (as catalog endorsement does, ``vault.endorsement``);
    returns the key's ``id/version``.  Raises the translated error."""
    public = key.public()
    data_key = os.urandom(32)
    if key.unwrap(public.wrap(data_key), recovery_point_id=PROBE_POINT) != data_key:
        raise IntegrityError(
            f"{key.describe()}: Key Vault unwrapped a probe to another value",
            code=ErrorCode.KEY_VAULT_REQUEST_REFUSED,
        )
    key.sign(PROBE_POINT.encode())
    return f"{key.key_id}/{key.key_version}"
