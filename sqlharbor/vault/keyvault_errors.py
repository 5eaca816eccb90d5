"""Key Vault's errors as the sqlharbor tree, for ``sqlharbor.vault.keyvault`` (its only
caller): throttling, 5xx and network trouble ``TemporaryError`` (with the service's
Retry-After), an untrusted TLS certificate ``PermanentError``, 401 and token failures
``AccessDenied`` (``KeyVaultAuthenticationFailed``), 403 ``AccessDenied``
(``KeyVaultAccessDenied``) whose remediation names the missing key permission (get,
unwrapKey or sign), 404 ``NotFound`` (``KeyVaultKeyNotFound``), a 400 on unwrap
``IntegrityError`` (the wrapped key does not open with this key version), other refusals
``PermanentError``.  Messages name the operation, the key and the recovery point; the SDK's
text (which may hold URLs and object ids) is never kept.
"""

from __future__ import annotations

import contextlib
import re
import ssl
from typing import Literal

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from sqlharbor.errors import (
    AccessDenied,
    ErrorCode,
    NotFound,
    PermanentError,
    TemporaryError,
    retry_after_seconds,
)
from sqlharbor.vault.wrapping import UnwrappingKey, unwrap_failed

Operation = Literal["get", "unwrapKey", "sign"]

_TEMPORARY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_SERVICE_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: what each operation needs: (access policy key permission, Azure RBAC data action)
PERMISSIONS: dict[str, tuple[str, str]] = {
    "get": ("get", "Microsoft.KeyVault/vaults/keys/read"),
    "unwrapKey": ("unwrapKey", "Microsoft.KeyVault/vaults/keys/unwrap/action"),
    "sign": ("sign", "Microsoft.KeyVault/vaults/keys/sign/action"),
}


def plain(value: object) -> str:
    """An SDK enum member or string as its plain value."""
    return str(getattr(value, "value", value) or "")


def _service_code(exc: AzureError) -> str:
    """Key Vault's error code (and inner code), when it is a plain token."""
    error = getattr(exc, "error", None)
    codes = [getattr(error, "code", None)]
    inner = getattr(error, "innererror", None)
    if isinstance(inner, dict):
        codes.append(inner.get("code"))
    found = [c for c in codes if isinstance(c, str) and _SERVICE_CODE.fullmatch(c)]
    return ", ".join(found) or type(exc).__name__


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is in the chain under ``exc`` (causes, contexts, wrapped errors)."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack and len(seen) < 32:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        stack += [getattr(current, "inner_exception", None), current.__cause__, current.__context__]
        stack += list(current.args)
    return False


def _retry_after(exc: AzureError) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0)):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            return max(0.0, float(headers[name]) / scale)
    return retry_after_seconds(headers.get("Retry-After"))


def translate(
    exc: Exception,
    *,
    operation: Operation,
    key: UnwrappingKey,
    recovery_point_id: str | None = None,
) -> Exception:
    """An SDK exception of ``operation`` on ``key`` as the sqlharbor error (no SDK text)."""
    status = getattr(exc, "status_code", None)
    where = f"Key Vault {operation} on {key.describe()}"
    if recovery_point_id is not None:
        where = f"recovery point {recovery_point_id}: {where}"
    if not isinstance(exc, AzureError):
        return exc
    code = _service_code(exc)
    if status in _TEMPORARY_STATUS or (isinstance(status, int) and status >= 500):
        return TemporaryError(
            f"{where}: Key Vault busy or failing (HTTP {status}, {code})",
            retry_after=_retry_after(exc),
        )
    if isinstance(exc, ServiceRequestError) and _caused_by(exc, ssl.SSLCertVerificationError):
        return PermanentError(
            f"{where}: the server's TLS certificate is not trusted",
            code=ErrorCode.KEY_VAULT_REQUEST_REFUSED,
            remediation="Trust the CA of Key Vault's certificate (or of the TLS proxy in "
            "front of it): give its PEM file as the CA bundle.",
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TemporaryError(f"{where}: cannot reach Key Vault or the token endpoint ({code})")
    if isinstance(exc, ClientAuthenticationError):
        detail = f"HTTP {status}" if status else "no token"
        return AccessDenied(
            f"{where}: authentication failed ({detail}, {code})",
            code=ErrorCode.KEY_VAULT_AUTHENTICATION_FAILED,
        )
    if status == 403:
        return _denied(where, operation, code)
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return NotFound(
            f"{where}: the key or version does not exist ({code})",
            code=ErrorCode.KEY_VAULT_KEY_NOT_FOUND,
        )
    if status == 400 and operation == "unwrapKey" and recovery_point_id is not None:
        error = unwrap_failed(key=key, recovery_point_id=recovery_point_id)
        error.args = (f"{error} (Key Vault: HTTP 400, {code})",)
        return error
    if isinstance(exc, HttpResponseError):
        return PermanentError(
            f"{where}: refused (HTTP {status}, {code})", code=ErrorCode.KEY_VAULT_REQUEST_REFUSED
        )
    return TemporaryError(f"{where}: Key Vault client error ({code})")


def _denied(where: str, operation: Operation, code: str) -> AccessDenied:
    if "KeyOperationForbidden" in code:
        return AccessDenied(
            f"{where}: the key does not permit {operation} (HTTP 403, {code})",
            code=ErrorCode.KEY_VAULT_REQUEST_REFUSED,
            remediation=f"Allow the {operation} operation on the key in Key Vault (its key_ops).",
        )
    if "KeyDisabled" in code:
        return AccessDenied(
            f"{where}: the key version is disabled (HTTP 403, {code})",
            code=ErrorCode.KEY_VAULT_REQUEST_REFUSED,
            remediation="Enable the key version in Key Vault: recovery points wrapped with it "
            "cannot be restored while it is disabled.",
        )
    permission, action = PERMISSIONS[operation]
    return AccessDenied(
        f"{where}: access denied; the identity lacks the {permission} key permission "
        f"(HTTP 403, {code})",
        code=ErrorCode.KEY_VAULT_ACCESS_DENIED,
        remediation=(
            f"Grant the identity the Key Vault key permission {permission} (access policy), "
            f"or an Azure RBAC role with {action} on the key, such as Key Vault Crypto "
            "User (get, unwrapKey and sign: what sqlharbor needs)."
        ),
    )
