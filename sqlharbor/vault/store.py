"""The object store under the vault: a narrow ``BlobStore`` Protocol and Azure Blob behind it.

The writer, reader and catalog use only ``BlobStore``; ``AzureBlobStore`` is the one
implementation over ``azure.storage.blob`` (the only module of sqlharbor that imports
the Azure SDK), and tests may pass fakes.  SDK exceptions are translated here, at the
boundary: network trouble, throttling and 5xx become ``TemporaryError`` (retried with
tenacity, waiting at least the Retry-After the service asked for, then raised),
authentication failures ``VaultAccessDenied``, unexpected answers ``PermanentError``, a
missing blob ``BlobNotFound`` and a create-only conflict ``AlreadyExists`` (a lost race,
a ``Conflict``).  Nothing else in sqlharbor catches an Azure exception.  Messages name the
operation and the blob, never the connection string or a SAS token, and the SDK exception
is not chained (its text may hold URLs).
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobBlock, BlobClient, BlobServiceClient, ContainerClient
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from sqlharbor.errors import (
    AlreadyExists,
    BlobNotFound,
    ContainerNotFound,
    ErrorCode,
    InvalidInput,
    PermanentError,
    TemporaryError,
    VaultAccessDenied,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

Buffer = bytes | bytearray | memoryview
T = TypeVar("T")

_TEMPORARY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class BlobInfo:
    name: str
    size: int


class BlobStore(Protocol):
    """What the vault needs from an object store; names are full blob names."""

    def stage_block(self, name: str, block_id: str, data: Buffer) -> None: ...

    def commit_blocks(self, name: str, block_ids: Sequence[str]) -> None:
        """Make the staged blocks, in this order, the blob's content (create-only)."""
        ...

    def put(self, name: str, data: Buffer, *, if_absent: bool = False) -> None:
        """Write a whole blob; with ``if_absent`` raise ``AlreadyExists`` if it exists."""
        ...

    def replace(self, name: str, data: Buffer) -> None:
        """Overwrite a blob that exists; ``BlobNotFound`` (nothing written) when it is gone,
        so a blob deleted meanwhile is never brought back."""
        ...

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """Read a blob or a byte range of it; ``BlobNotFound`` when missing."""
        ...

    def exists(self, name: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """Blobs whose name starts with ``prefix``, in name order."""
        ...

    def delete(self, name: str) -> None:
        """Delete a blob; deleting a missing blob is not an error."""
        ...

    def append(self, name: str, data: Buffer) -> None:
        """Append to an append blob, creating it when missing (data at most 4 MiB)."""
        ...


def block_id(index: int) -> str:
    """Azure wants base64 block ids of equal length within a blob."""
    return base64.b64encode(b"shc" + index.to_bytes(8, "big")).decode("ascii")


def translate(exc: Exception, operation: str, name: str) -> Exception:
    """Map an SDK exception to the sqlharbor error tree (without its text)."""
    status = getattr(exc, "status_code", None)
    error_code = getattr(exc, "error_code", None) or type(exc).__name__
    where = f"{operation} {name!r}"
    if isinstance(exc, ResourceExistsError | ResourceModifiedError):
        return AlreadyExists(f"{where}: the blob already exists ({error_code})")
    if isinstance(exc, ResourceNotFoundError) and error_code == "ContainerNotFound":
        return ContainerNotFound(f"{where}: the container does not exist ({error_code})")
    if isinstance(exc, ResourceNotFoundError):
        return BlobNotFound(f"{where}: not found ({error_code})")
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return VaultAccessDenied(f"{where}: access denied (HTTP {status}, {error_code})")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TemporaryError(f"{where}: cannot reach the blob service ({error_code})")
    if isinstance(exc, HttpResponseError):
        if status in _TEMPORARY_STATUS or status is None:
            return TemporaryError(
                f"{where}: blob service busy or failing (HTTP {status}, {error_code})",
                retry_after=_retry_after(exc),
            )
        return PermanentError(
            f"{where}: refused by the blob service (HTTP {status}, {error_code})",
            code=ErrorCode.VAULT_REQUEST_REFUSED,
        )
    if isinstance(exc, AzureError):
        return TemporaryError(f"{where}: blob service error ({error_code})")
    return exc


def _retry_after(exc: HttpResponseError) -> float | None:
    """The delay a throttled answer asked for (the headers azure-core's own retry reads)."""
    headers = getattr(exc.response, "headers", None) or {}
    for header in ("retry-after-ms", "x-ms-retry-after-ms"):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            return max(0.0, float(headers[header]) / 1000)
    return retry_after_seconds(headers.get("Retry-After"))


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_wait: float = 0.2
    max_wait: float = 5.0
    #: the longest Retry-After honoured (a longer one waits this long)
    max_retry_after: float = 30.0


DEFAULT_RETRY = RetryPolicy()


class AzureBlobStore:
    """``BlobStore`` over one Azure Blob container (Azurite works too)."""

    def __init__(self, container: ContainerClient, *, retry: RetryPolicy = DEFAULT_RETRY):
        self._container = container
        self._retry = retry

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        container: str,
        *,
        create: bool = True,
        retry: RetryPolicy = DEFAULT_RETRY,
        **options: Any,
    ) -> AzureBlobStore:
        """A store over ``container``; created when missing unless ``create`` is False."""
        try:
            service = BlobServiceClient.from_connection_string(
                connection_string, retry_total=0, **options
            )
        except ValueError:
            raise InvalidInput(
                "the vault connection string is malformed (not shown)",
                code=ErrorCode.VAULT_CONFIG_INVALID,
            ) from None
        return cls._open(service, container, create=create, retry=retry)

    @classmethod
    def from_account_url(
        cls,
        account_url: str,
        container: str,
        credential: Any = None,
        *,
        create: bool = True,
        retry: RetryPolicy = DEFAULT_RETRY,
        **options: Any,
    ) -> AzureBlobStore:
        """A store over ``container`` with a token credential, account key or SAS."""
        service = BlobServiceClient(account_url, credential=credential, retry_total=0, **options)
        return cls._open(service, container, create=create, retry=retry)

    @classmethod
    def _open(
        cls, service: BlobServiceClient, container: str, *, create: bool, retry: RetryPolicy
    ) -> AzureBlobStore:
        store = cls(service.get_container_client(container), retry=retry)
        if create:
            store._create_container()
        return store

    def _create_container(self) -> None:
        def create() -> None:
            with contextlib.suppress(ResourceExistsError):
                self._container.create_container()

        self._call("create container", self._container.container_name, create)

    def _blob(self, name: str) -> BlobClient:
        """The client for one blob (``sqlharbor.vault.store_sas`` gives each its own SAS)."""
        return self._container.get_blob_client(name)

    def _call(self, operation: str, name: str, fn: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return fn()
            except AzureError as exc:
                raise translate(exc, operation, name) from None

        backoff = wait_exponential_jitter(
            multiplier=self._retry.initial_wait,
            max=self._retry.max_wait,
            jitter=self._retry.initial_wait,
        )

        def wait(state: RetryCallState) -> float:
            """The backoff, or the Retry-After the service asked for when that is longer."""
            error = state.outcome.exception() if state.outcome else None
            asked = error.retry_after if isinstance(error, TemporaryError) else None
            if asked is None:
                return backoff(state)
            return max(backoff(state), min(asked, self._retry.max_retry_after))

        retrying = Retrying(
            retry=retry_if_exception_type(TemporaryError),
            stop=stop_after_attempt(self._retry.attempts),
            wait=wait,
            reraise=True,
        )
        return retrying(attempt)

    def stage_block(self, name: str, block_id: str, data: Buffer) -> None:
        blob = self._blob(name)
        self._call(
            "stage block of",
            name,
            lambda: blob.stage_block(block_id, cast(Any, data), length=len(data)),
        )

    def commit_blocks(self, name: str, block_ids: Sequence[str]) -> None:
        blob = self._blob(name)
        blocks = [BlobBlock(block_id=b) for b in block_ids]

        def commit() -> None:
            try:
                blob.commit_block_list(blocks, if_none_match="*")
            except (ResourceExistsError, ResourceModifiedError) as conflict:
                # A retried commit whose first answer was lost finds its own blob.
                try:
                    committed, _ = blob.get_block_list("committed")
                except HttpResponseError as check:
                    if check.status_code in (401, 403):
                        # a write-only grant cannot tell: the name is taken either way
                        raise conflict from None
                    raise
                if [b.id for b in committed] != list(block_ids):
                    raise

        self._call("commit", name, commit)

    def put(self, name: str, data: Buffer, *, if_absent: bool = False) -> None:
        blob = self._blob(name)
        self._call("write", name, lambda: blob.upload_blob(bytes(data), overwrite=not if_absent))

    def replace(self, name: str, data: Buffer) -> None:
        blob = self._blob(name)

        def upload() -> None:
            blob.upload_blob(bytes(data), overwrite=True, match_condition=MatchConditions.IfPresent)

        try:
            self._call("replace", name, upload)
        except (AlreadyExists, BlobNotFound):  # 412: If-Match * found no blob
            raise BlobNotFound(f"replace {name!r}: the blob is gone; nothing written") from None

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        blob = self._blob(name)
        if length == 0:
            return b""

        def download() -> bytes:
            if length is None and offset == 0:
                return blob.download_blob().readall()
            return blob.download_blob(offset=offset, length=length).readall()

        return self._call("read", name, download)

    def exists(self, name: str) -> bool:
        blob = self._blob(name)
        return self._call("check", name, blob.exists)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        token: str | None = None
        while True:

            def fetch(token: str | None = token) -> tuple[list[Any], str | None]:
                pager: Any = self._container.list_blobs(
                    name_starts_with=prefix, results_per_page=5000
                ).by_page(continuation_token=token)
                page = list(next(pager, []))
                return page, pager.continuation_token

            items, token = self._call("list", prefix, fetch)
            for item in items:
                yield BlobInfo(name=item.name, size=int(item.size or 0))
            if not token:
                return

    def delete(self, name: str) -> None:
        blob = self._blob(name)

        def delete() -> None:
            with contextlib.suppress(ResourceNotFoundError):
                blob.delete_blob()

        self._call("delete", name, delete)

    def append(self, name: str, data: Buffer) -> None:
        blob = self._blob(name)

        def append() -> None:
            try:
                blob.append_block(bytes(data))
                return
            except ResourceNotFoundError:
                pass
            # another writer may have created it first
            with contextlib.suppress(ResourceExistsError, ResourceModifiedError):
                blob.create_append_blob(if_none_match="*")
            blob.append_block(bytes(data))

        self._call("append to", name, append)
