"""The agent's side of job-scoped storage rights: ``BlobStore``s over the operator's SAS.

The operator issues each job a grant (``sqlharbor.vault.sas.SasIssuer``) and the agent
opens the vault through one of these, never with the account key:

* ``ContainerSasStore`` over a backup's container SAS (create + write): every
  ``BlobStore`` method is sent to the service, which refuses what the SAS does not allow
  (reads, lists, deletes: ``VaultAccessDenied``).  It never creates the container.
* ``BlobSasStore`` over a restore's blob SASes (read only, one per blob): each blob is
  read with its own token; a blob without one, and any write, list or delete, is refused
  here with ``VaultAccessDenied`` before anything is sent.

Both reuse ``AzureBlobStore``'s retries and error translation; messages name blobs,
never tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn

from azure.storage.blob import BlobClient, ContainerClient

from sqlharbor.errors import ErrorCode, InvalidInput, VaultAccessDenied
from sqlharbor.vault.store import (
    DEFAULT_RETRY,
    AzureBlobStore,
    BlobInfo,
    Buffer,
    RetryPolicy,
)


def _token(token: str) -> str:
    token = token.lstrip("?")
    if "sig=" not in token:
        raise InvalidInput(
            "a vault grant is not a SAS token (not shown)", code=ErrorCode.VAULT_CONFIG_INVALID
        )
    return token


class ContainerSasStore(AzureBlobStore):
    """A backup's store: the container, with the job's container SAS as credential."""

    @classmethod
    def open(
        cls,
        account_url: str,
        container: str,
        token: str,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        **options: Any,
    ) -> ContainerSasStore:
        """The store; no request is sent (the grant may not create the container)."""
        client = ContainerClient(
            account_url, container, credential=_token(token), retry_total=0, **options
        )
        return cls(client, retry=retry)


class BlobSasStore(AzureBlobStore):
    """A restore's store: reads (``get``, ``exists``) of the granted blobs only."""

    def __init__(
        self,
        account_url: str,
        container: str,
        tokens: Mapping[str, str],
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        **options: Any,
    ):
        # the container client names the container; it holds no credential and sends nothing
        super().__init__(ContainerClient(account_url, container, **options), retry=retry)
        self._account_url = account_url
        self._tokens = {name: _token(token) for name, token in tokens.items()}
        self._options = options
        self._clients: dict[str, BlobClient] = {}

    @classmethod
    def open(
        cls,
        account_url: str,
        container: str,
        tokens: Mapping[str, str],
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        **options: Any,
    ) -> BlobSasStore:
        return cls(account_url, container, tokens, retry=retry, **options)

    def __repr__(self) -> str:
        return f"BlobSasStore({self._container.container_name!r}, {len(self._tokens)} blobs)"

    def _blob(self, name: str) -> BlobClient:
        client = self._clients.get(name)
        if client is None:
            token = self._tokens.get(name)
            if token is None:
                raise VaultAccessDenied(f"read {name!r}: the restore grant does not cover it")
            client = BlobClient(
                self._account_url,
                self._container.container_name,
                name,
                credential=token,
                retry_total=0,
                **self._options,
            )
            self._clients[name] = client
        return client

    @staticmethod
    def _read_only(operation: str, name: str) -> NoReturn:
        raise VaultAccessDenied(f"{operation} {name!r}: a restore grant is read-only")

    def stage_block(self, name: str, block_id: str, data: Buffer) -> None:
        self._read_only("stage block of", name)

    def commit_blocks(self, name: str, block_ids: Sequence[str]) -> None:
        self._read_only("commit", name)

    def put(self, name: str, data: Buffer, *, if_absent: bool = False) -> None:
        self._read_only("write", name)

    def replace(self, name: str, data: Buffer) -> None:
        self._read_only("replace", name)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        self._read_only("list", prefix)

    def delete(self, name: str) -> None:
        self._read_only("delete", name)

    def append(self, name: str, data: Buffer) -> None:
        self._read_only("append to", name)
