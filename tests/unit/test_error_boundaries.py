"""SDK exceptions become the sqlharbor tree at the boundaries (Kubernetes, Azure Blob, the
agent's job loop), throttling as a ``TemporaryError`` carrying the server's Retry-After, and
the retry loops wait at least that long."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException
from sqlharbor_agent.jobs.loop import MAX_RETRY_AFTER, retry_delay

from sqlharbor.errors import (
    AccessDenied,
    AlreadyExists,
    BlobNotFound,
    Conflict,
    ErrorCode,
    NotFound,
    PermanentError,
    TemporaryError,
    TransitionRefused,
    VaultAccessDenied,
)
from sqlharbor.kube.translate import translate as _translate
from sqlharbor.vault.store import AzureBlobStore, RetryPolicy, translate


def _api(
    status: int, message: str = "m", headers: dict[str, str] | None = None, cls: type = ApiException
) -> Any:
    exc = cls(status=status, reason="reason")
    exc.body = json.dumps({"message": message})
    exc.headers = headers
    return exc


def test_kubernetes_errors_become_the_tree() -> None:
    assert type(_translate(_api(404), "x")) is NotFound
    assert type(_translate(_api(409), "x")) is Conflict
    forbidden = _translate(_api(403), "x")
    assert isinstance(forbidden, AccessDenied)
    assert forbidden.code == ErrorCode.FORBIDDEN
    assert "RBAC" in forbidden.remediation
    invalid = _translate(_api(422, "spec.x: Invalid value"), "x")
    assert type(invalid) is PermanentError
    assert invalid.code == ErrorCode.INVALID
    assert not isinstance(_translate(_api(422), "x"), TransitionRefused)


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {"Retry-After": "7"}, 7.0),
        (503, {"Retry-After": "2"}, 2.0),
        (500, None, None),
        (429, {"Retry-After": "soon"}, None),
        (429, {"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),
    ],
)
@pytest.mark.parametrize("cls", [ApiException, AsyncApiException])
def test_kubernetes_throttling_is_temporary_with_the_servers_delay(
    status: int, headers: dict[str, str] | None, retry_after: float | None, cls: type
) -> None:
    error = _translate(_api(status, headers=headers, cls=cls), "list BackupJob in ns")
    assert type(error) is TemporaryError
    assert error.code == ErrorCode.TEMPORARY_FAILURE
    assert error.retry_after == retry_after


class _Response:
    reason = "reason"
    content_type = "application/xml"

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.headers = headers or {}

    def text(self, encoding: str | None = None) -> str:
        return ""

    def body(self) -> bytes:
        return b""


def _http(status: int, headers: dict[str, str] | None = None) -> HttpResponseError:
    return HttpResponseError(message="m", response=_Response(status, headers))


def test_azure_errors_become_the_tree() -> None:
    exists = translate(ResourceExistsError("m"), "write", "b")
    assert isinstance(exists, AlreadyExists)
    assert isinstance(exists, Conflict)  # a lost create race, not a permanent failure
    assert not isinstance(exists, PermanentError)
    assert exists.code == ErrorCode.VAULT_OBJECT_EXISTS
    assert isinstance(translate(ResourceNotFoundError("m"), "read", "b"), BlobNotFound)
    denied = translate(ClientAuthenticationError("m"), "read", "b")
    assert isinstance(denied, VaultAccessDenied)
    assert denied.code == ErrorCode.VAULT_ACCESS_DENIED
    refused = translate(_http(400), "read", "b")
    assert type(refused) is PermanentError
    assert refused.code == ErrorCode.VAULT_REQUEST_REFUSED


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (503, {"Retry-After": "3"}, 3.0),
        (429, {"x-ms-retry-after-ms": "1500"}, 1.5),
        (429, {"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        (500, {}, None),
    ],
)
def test_azure_throttling_is_temporary_with_the_servers_delay(
    status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    error = translate(_http(status, headers), "read", "b")
    assert type(error) is TemporaryError
    assert error.retry_after == retry_after


class _Blob:
    def __init__(self, answers: list[Exception | bytes]) -> None:
        self.answers = answers

    def exists(self) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return True


class _Container:
    container_name = "c"

    def __init__(self, blob: _Blob) -> None:
        self.blob = blob

    def get_blob_client(self, name: str) -> _Blob:
        return self.blob


def test_the_blob_store_waits_the_retry_after_the_service_asked_for() -> None:
    fast = RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.001, max_retry_after=0.3)
    blob = _Blob([_http(503, {"retry-after-ms": "250"}), b"ok"])
    store = AzureBlobStore(_Container(blob), retry=fast)  # type: ignore[arg-type]
    started = time.monotonic()
    assert store.exists("b") is True
    assert 0.25 <= time.monotonic() - started < 2
    blob.answers = [_http(503, {"Retry-After": "3600"}), b"ok"]  # capped at max_retry_after
    started = time.monotonic()
    assert store.exists("b") is True
    assert 0.3 <= time.monotonic() - started < 2


def test_the_job_loop_waits_the_retry_after_the_api_server_asked_for() -> None:
    assert retry_delay(TemporaryError("x"), 0.5) == 0.5
    assert retry_delay(TemporaryError("x", retry_after=4.0), 0.5) == 4.0
    assert retry_delay(TemporaryError("x", retry_after=0.1), 2.0) == 2.0
    assert retry_delay(TemporaryError("x", retry_after=1e6), 0.5) == MAX_RETRY_AFTER
    assert retry_delay(PermanentError("x"), 1.0) == 1.0
