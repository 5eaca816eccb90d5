"""Storage rights per job: the shared access signatures the operator issues to agents.

Agents on VMs never hold the storage account key (issue 13, zero-trust agent).  The
operator, which holds the vault's management credential (the account key, or later an
identity with a user delegation key), builds a ``SasIssuer`` and gives each job exactly
what it needs:

* a backup gets ``backup_grant``: a *container* SAS allowing create and write only (no
  read, list, delete, add or tags; Azure and Azurite want ``w`` for Put Block and Put
  Block List, so create alone cannot upload blocks);
* a restore gets ``restore_grant``: one *blob* SAS allowing read only, for each blob the
  restore plan names (manifests and data blobs).

Each grant starts ``CLOCK_SKEW`` in the past (the agent's clock and the service's may
disagree) and ends at the expiry the caller chooses.  The agent uses the tokens through
``sqlharbor.vault.store_sas`` (``ContainerSasStore``, ``BlobSasStore``); the service
refuses whatever a token does not allow.  Tokens are secrets: they are never put in an
exception message, a log line or a repr (``redact`` strips signatures from a text).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from azure.core.credentials import TokenCredential
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    UserDelegationKey,
    generate_blob_sas,
    generate_container_sas,
)

from sqlharbor.errors import ErrorCode, InvalidInput
from sqlharbor.vault.store import translate

#: how far in the past a grant starts, for clocks that disagree
CLOCK_SKEW = timedelta(minutes=5)
#: a backup's container SAS: create and write blobs, nothing else
BACKUP_PERMISSIONS = ContainerSasPermissions(create=True, write=True)
#: a restore's blob SAS: read that blob, nothing else
RESTORE_PERMISSIONS = BlobSasPermissions(read=True)

_SIGNATURE = re.compile(r"(?i)(sig=)[^&\s\"'<>]+")


def redact(text: str) -> str:
    """``text`` with every SAS signature (``sig=`` value) replaced by ``REDACTED``."""
    return _SIGNATURE.sub(r"\1REDACTED", text)


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code=ErrorCode.VAULT_CONFIG_INVALID)


def _endpoint(url: str) -> str:
    """The account URL without query (a SAS) or trailing slash."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid("the vault's blob endpoint is not an http(s) URL (not shown)")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class SasIssuer:
    """Issues job-scoped SAS tokens for one container; signs with exactly one of the
    account key or a user delegation key (the managed-identity path).  Built by the
    operator only; ``now`` is the clock (tests pass another)."""

    def __init__(
        self,
        account_url: str,
        container: str,
        *,
        account_key: str | None = None,
        user_delegation_key: UserDelegationKey | None = None,
        now: Callable[[], datetime] | None = None,
    ):
        if (account_key is None) == (user_delegation_key is None):
            raise _invalid("a SAS issuer needs exactly one of an account key or a delegation key")
        if not container:
            raise _invalid("a SAS issuer needs a container name")
        self._account_url = _endpoint(account_url)
        try:
            account_name = BlobServiceClient(self._account_url).account_name
        except ValueError:
            raise _invalid("the vault's account URL is malformed (not shown)") from None
        if not account_name:
            raise _invalid("the vault's account URL does not name a storage account")
        self._account_name: str = account_name
        self._container = container
        self._account_key = account_key
        self._delegation_key = user_delegation_key
        self._now = now or (lambda: datetime.now(UTC))

    @classmethod
    def from_connection_string(
        cls, connection_string: str, container: str, *, now: Callable[[], datetime] | None = None
    ) -> SasIssuer:
        """An issuer signing with the account key of ``connection_string``; a connection
        string without one (a SAS connection string) cannot issue grants."""
        try:
            service = BlobServiceClient.from_connection_string(connection_string)
        except ValueError:
            raise _invalid("the vault connection string is malformed (not shown)") from None
        account_key = getattr(service.credential, "account_key", None)
        if not isinstance(account_key, str) or not account_key:
            raise _invalid(
                "the vault connection string has no AccountKey: the operator issues each "
                "job's SAS and needs the storage account key (or an identity, which signs "
                "with a user delegation key), not a SAS connection string"
            )
        return cls(service.primary_endpoint, container, account_key=account_key, now=now)

    @classmethod
    def from_user_delegation_key(
        cls,
        account_url: str,
        container: str,
        key: UserDelegationKey,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> SasIssuer:
        """An issuer signing with a user delegation key (from an identity's
        ``BlobServiceClient.get_user_delegation_key``); grants end before the key does."""
        return cls(account_url, container, user_delegation_key=key, now=now)

    @classmethod
    def from_identity(
        cls,
        account_url: str,
        container: str,
        credential: TokenCredential,
        *,
        lifetime: timedelta,
        now: Callable[[], datetime] | None = None,
        **options: Any,
    ) -> SasIssuer:
        """An issuer signing with a user delegation key valid ``lifetime`` (at most 7
        days) that ``credential``'s identity gets from the account now.  One request, no
        retries (the caller tries again later); errors translated, the SDK's text left
        out."""
        moment = (now or (lambda: datetime.now(UTC)))()
        service = BlobServiceClient(account_url, credential=credential, retry_total=0, **options)
        try:
            key = service.get_user_delegation_key(moment - timedelta(minutes=5), moment + lifetime)
        except Exception as exc:
            raise translate(exc, "get a user delegation key for", container) from None
        finally:
            service.close()
        return cls.from_user_delegation_key(account_url, container, key, now=now)

    @property
    def account_url(self) -> str:
        return self._account_url

    @property
    def account_name(self) -> str:
        return self._account_name

    @property
    def container(self) -> str:
        return self._container

    @property
    def protocol(self) -> str:
        """``https`` for an https endpoint; ``https,http`` otherwise (Azurite)."""
        return "https" if self._account_url.startswith("https://") else "https,http"

    def __repr__(self) -> str:
        signer = "account key" if self._account_key is not None else "user delegation key"
        return f"SasIssuer({self._account_url!r}, {self._container!r}, signed with {signer})"

    def _window(self, expiry: datetime) -> tuple[datetime, datetime]:
        if expiry.tzinfo is None or expiry.utcoffset() is None:
            raise InvalidInput("a grant's expiry must be timezone-aware")
        now = self._now()
        if expiry <= now:
            raise InvalidInput(f"a grant's expiry ({expiry.isoformat()}) is not in the future")
        return now - CLOCK_SKEW, expiry.astimezone(UTC)

    def backup_grant(self, expiry: datetime) -> str:
        """A container SAS token (no leading ``?``) allowing create and write only."""
        start, end = self._window(expiry)
        return generate_container_sas(
            self._account_name,
            self._container,
            account_key=self._account_key,
            user_delegation_key=self._delegation_key,
            permission=BACKUP_PERMISSIONS,
            expiry=end,
            start=start,
            protocol=self.protocol,
        )

    def restore_grant(self, blob_names: Iterable[str], expiry: datetime) -> dict[str, str]:
        """A read-only blob SAS token for each of ``blob_names``, by name."""
        start, end = self._window(expiry)
        grants: dict[str, str] = {}
        for name in blob_names:
            if not name or name.startswith("/"):
                raise InvalidInput(f"cannot grant a blob named {name!r}")
            grants[name] = generate_blob_sas(
                self._account_name,
                self._container,
                name,
                account_key=self._account_key,
                user_delegation_key=self._delegation_key,
                permission=RESTORE_PERMISSIONS,
                expiry=end,
                start=start,
                protocol=self.protocol,
            )
        return grants
