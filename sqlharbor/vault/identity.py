"""Azure credentials for Key Vault: the three ways a platform team authenticates (issue 13).

- ``ManagedIdentity``: the node's or VM's managed identity, system-assigned or
  user-assigned by client id -> ``ManagedIdentityCredential`` (IMDS; App Service, Arc and
  the other hosts azure-identity detects from the environment).  Note that azure-identity
  itself switches to workload identity when AZURE_TENANT_ID, AZURE_AUTHORITY_HOST and
  AZURE_FEDERATED_TOKEN_FILE are all set.
- ``WorkloadIdentity``: AKS workload identity, a projected service-account token
  exchanged with Entra ID -> ``WorkloadIdentityCredential``; ``from_env`` reads what the
  workload identity webhook injects (AZURE_TENANT_ID, AZURE_CLIENT_ID,
  AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST).
- ``ServicePrincipal``: an app registration's client secret, read from a Kubernetes
  Secret -> ``ClientSecretCredential``.

The options are plain frozen dataclasses (the API models map onto them); the client
secret is never in a repr or a message.  ``authority_host`` (with
``disable_instance_discovery`` for a host Microsoft does not know) serves sovereign
clouds, Azure Stack and the tests' token stand-in; ``ca_bundle`` trusts a private CA.
``build_credential`` is called by whoever builds a ``sqlharbor.vault.keyvault.KeyVaultKey``
(the operator, the CLI); credentials only fail when asked for a token, and that failure
is translated where the token is used (``keyvault.translate``).  ``Credentials`` keeps
one credential per identity, so that the tokens azure-identity caches are reused by every
key opened with the same identity.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.identity import (
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from sqlharbor.errors import ErrorCode, InvalidInput

#: what an identity becomes: an azure-core token credential (for callers outside the SDK
#: boundary, which do not import azure.*)
Credential = TokenCredential

#: (namespace, name, key) -> the Secret value's bytes (as ``sqlharbor.kube`` reads them)
SecretReader = Callable[[str, str, str], bytes]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _check_id(value: str | None, what: str, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidInput(f"{what} must be an id such as a GUID (letters, digits, '.', '-')")


def _check_authority(host: str | None) -> None:
    if host is None:
        return
    parts = urlsplit(host if "://" in host else f"https://{host}")
    if parts.scheme != "https" or not parts.hostname or parts.path.strip("/") or parts.query:
        raise InvalidInput(
            f"authority host {host[:100]!r} must be an https host, such as "
            "login.microsoftonline.com"
        )


@dataclass(frozen=True)
class ManagedIdentity:
    """A managed identity: system-assigned (no ``client_id``) or user-assigned."""

    client_id: str | None = None

    def __post_init__(self) -> None:
        _check_id(self.client_id, "the managed identity's client id", required=False)


@dataclass(frozen=True)
class WorkloadIdentity:
    """Workload identity: ``token_file`` holds the projected service-account token."""

    tenant_id: str
    client_id: str
    token_file: str
    authority_host: str | None = None
    disable_instance_discovery: bool = False

    def __post_init__(self) -> None:
        _check_id(self.tenant_id, "the workload identity's tenant id")
        _check_id(self.client_id, "the workload identity's client id")
        if not self.token_file:
            raise InvalidInput("the workload identity needs its token file")
        _check_authority(self.authority_host)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkloadIdentity:
        """From the variables the AKS workload identity webhook injects into the pod."""
        env = os.environ if environ is None else environ
        names = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE")
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise InvalidInput(
                f"workload identity is not configured: {', '.join(missing)} not set",
                remediation="Label the pod azure.workload.identity/use=true and annotate its "
                "service account with azure.workload.identity/client-id.",
            )
        return cls(
            tenant_id=env["AZURE_TENANT_ID"],
            client_id=env["AZURE_CLIENT_ID"],
            token_file=env["AZURE_FEDERATED_TOKEN_FILE"],
            authority_host=env.get("AZURE_AUTHORITY_HOST") or None,
        )


@dataclass(frozen=True)
class ServicePrincipal:
    """An app registration with a client secret (``client_secret`` is not in the repr)."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    authority_host: str | None = None
    disable_instance_discovery: bool = False

    def __post_init__(self) -> None:
        _check_id(self.tenant_id, "the service principal's tenant id")
        _check_id(self.client_id, "the service principal's client id")
        if not self.client_secret:
            raise InvalidInput("the service principal's client secret is empty")
        _check_authority(self.authority_host)

    @classmethod
    def from_secret(
        cls,
        read_secret: SecretReader,
        *,
        namespace: str,
        name: str,
        key: str,
        tenant_id: str,
        client_id: str,
        authority_host: str | None = None,
        disable_instance_discovery: bool = False,
    ) -> ServicePrincipal:
        """With the client secret read from Secret ``namespace/name``, key ``key``."""
        raw = read_secret(namespace, name, key)
        try:
            secret = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            secret = ""
        if not secret:
            raise InvalidInput(
                f"Secret {namespace}/{name} key '{key}' holds no client secret (empty or "
                "not UTF-8 text)",
                code=ErrorCode.INVALID_SECRET,
                remediation=f"Store the app registration's client secret in Secret {name}, "
                f"key '{key}'.",
            )
        return cls(
            tenant_id=tenant_id,
            client_id=client_id,
            client_secret=secret,
            authority_host=authority_host,
            disable_instance_discovery=disable_instance_discovery,
        )


Identity = ManagedIdentity | WorkloadIdentity | ServicePrincipal


def build_credential(identity: Identity, *, ca_bundle: str | None = None) -> TokenCredential:
    """The azure-identity credential for ``identity``; ``ca_bundle``: PEM CAs to trust
    for the token endpoint instead of the system's."""
    transport: dict[str, Any] = {} if ca_bundle is None else {"connection_verify": ca_bundle}
    if isinstance(identity, ManagedIdentity):
        if identity.client_id:
            return ManagedIdentityCredential(client_id=identity.client_id, **transport)
        return ManagedIdentityCredential(**transport)
    authority: dict[str, Any] = {}
    if identity.authority_host:
        authority["authority"] = identity.authority_host
    if identity.disable_instance_discovery:
        authority["disable_instance_discovery"] = True
    if isinstance(identity, WorkloadIdentity):
        return WorkloadIdentityCredential(
            tenant_id=identity.tenant_id,
            client_id=identity.client_id,
            token_file_path=identity.token_file,
            **authority,
            **transport,
        )
    return ClientSecretCredential(
        identity.tenant_id, identity.client_id, identity.client_secret, **authority, **transport
    )


class Credentials:
    """``credentials(identity)``: one credential per identity (and CA bundle), kept while
    used, so that its cached tokens serve every key of every vault with that identity; the
    least recently used beyond ``limit`` are closed (a rotated client secret is a new
    identity)."""

    def __init__(self, *, ca_bundle: str | None = None, limit: int = 32) -> None:
        self._ca_bundle = ca_bundle
        self._limit = limit
        self._lock = threading.Lock()
        self._made: OrderedDict[Identity, TokenCredential] = OrderedDict()

    def __call__(self, identity: Identity) -> TokenCredential:
        with self._lock:
            credential = self._made.get(identity)
            if credential is None:
                credential = build_credential(identity, ca_bundle=self._ca_bundle)
                self._made[identity] = credential
            self._made.move_to_end(identity)
            while len(self._made) > self._limit:
                _, old = self._made.popitem(last=False)
                _close(old)
            return credential

    def close(self) -> None:
        with self._lock:
            for credential in self._made.values():
                _close(credential)
            self._made.clear()

    def __repr__(self) -> str:
        return f"Credentials({len(self._made)} identities)"


def _close(credential: TokenCredential) -> None:
    close = getattr(credential, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()
