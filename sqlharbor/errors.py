"""The exception tree shared by the operator, the agent and the CLI.

Three families, as in kopf: a ``PermanentError`` fails the same way if retried (bad input,
a broken chain, a missing permission); a ``TemporaryError`` (network, throttling, a
restarting dependency) is retried with backoff, after ``retry_after`` seconds when the other
side said; a ``Conflict`` is a lost race: read again and decide again.  Every error carries
an ``ErrorCode`` (``sqlharbor.error_codes``: Azure Backup's code where one exists) and a
``remediation``: the raiser's, else the code's.  Messages never contain secrets: names,
never keys or connection strings.
SDK errors become this tree at four boundaries only: ``sqlharbor.kube.translate``,
``sqlharbor.vault.store``, ``sqlharbor.vault.keyvault`` and
``sqlharbor_agent.engines.sqlserver.connection``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sqlharbor.error_codes import ErrorCode as ErrorCode


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """An HTTP ``Retry-After`` value (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class SqlHarborError(Exception):
    """Base of every error sqlharbor raises on purpose.

    ``code`` is an ``ErrorCode`` for everything in the product (typed ``str`` so that the
    dev tooling can keep codes of its own); ``remediation`` defaults to the code's."""

    code: str = ErrorCode.INTERNAL_ERROR
    remediation: str = ErrorCode.INTERNAL_ERROR.remediation

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "remediation" not in vars(cls) and isinstance(cls.code, ErrorCode):
            cls.remediation = cls.code.remediation

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, remediation: str | None = None
    ):
        super().__init__(message)
        if code is not None:
            self.code = code
        if remediation is not None:
            self.remediation = remediation
        elif code is not None:
            self.remediation = code.remediation

    @property
    def message(self) -> str:
        return str(self)


class PermanentError(SqlHarborError):
    """Retrying will not help; the unit of work fails with this code."""


class TemporaryError(SqlHarborError):
    """Retry with backoff; ``retry_after``: the delay the other side asked for, if it said."""

    code = ErrorCode.TEMPORARY_FAILURE

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        remediation: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, code=code, remediation=remediation)
        self.retry_after = retry_after


class NotLeader(TemporaryError):
    """This operator replica does not hold the leader Lease (any more): the write was not
    sent.  Another replica is (or will be) the one that writes."""


class Conflict(SqlHarborError):
    """A lost race, not a failure to retry: the object changed since it was read (a stale
    resourceVersion), the API server refused a forbidden status change, or a create-only
    write found the name taken.  Read again and decide again."""

    code = ErrorCode.CONFLICT


class TransitionRefused(Conflict):
    """The API server's transition rules refused the write (e.g. a finished job)."""


class AlreadyExists(Conflict):
    """A create-only blob write found the blob already there: another writer won."""

    code = ErrorCode.VAULT_OBJECT_EXISTS


# -- permanent errors ----------------------------------------------------------------------
class InvalidInput(PermanentError):
    """Bad configuration or input: a setting, a name, a key, a policy, a time."""

    code = ErrorCode.INVALID_CONFIGURATION


class InvalidName(InvalidInput):
    """A name component cannot be used in the vault (empty, ``/``, control characters)."""

    code = ErrorCode.VAULT_INVALID_NAME


class InvalidKey(InvalidInput):
    """The configured key-encryption key is unusable (the key itself is never shown)."""

    code = ErrorCode.VAULT_KEY_INVALID


class KeyUnavailable(PermanentError):
    """The key a recovery point needs is not held here: not listed in the vault (a rotated
    out key), or not granted to this job (an agent holds only what its job brought)."""

    code = ErrorCode.KEY_NOT_LISTED


class GrantRefused(PermanentError):
    """A claimed job got no usable grant: the operator did not answer in time, or the grant
    does not open in this session (sealed to another session or job, or altered)."""

    code = ErrorCode.GRANT_REFUSED


class InvalidPolicy(InvalidInput):
    """The policy passed the API server's checks but cannot be evaluated (bad cron field
    values, unknown time zone).  Reported as a condition on the policy."""

    code = ErrorCode.INVALID_POLICY


class SchemaError(InvalidInput):
    """A resource model cannot become a structural CRD schema (raised by crdgen)."""

    code = ErrorCode.CRD_SCHEMA_INVALID


class NotFound(PermanentError):
    """The object or blob does not exist."""

    code = ErrorCode.NOT_FOUND


class BlobNotFound(NotFound):
    code = ErrorCode.VAULT_OBJECT_NOT_FOUND


class ContainerNotFound(BlobNotFound):
    """The vault's container does not exist: the operator has not opened the vault yet (it
    creates the container; agents cannot), or the BackupVault names the wrong one."""

    code = ErrorCode.VAULT_CONTAINER_NOT_FOUND


class RecoveryPointNotFound(NotFound):
    """The vault holds no committed recovery point with that id."""

    code = ErrorCode.VAULT_RECOVERY_POINT_NOT_FOUND


class SourceNotFound(NotFound):
    """The vault holds no database matching a restore's source."""

    code = ErrorCode.RESTORE_SOURCE_NOT_FOUND


class AccessDenied(PermanentError):
    """The credentials do not allow the operation (Kubernetes RBAC, the vault's storage)."""

    code = ErrorCode.FORBIDDEN


class VaultAccessDenied(AccessDenied):
    code = ErrorCode.VAULT_ACCESS_DENIED


class IntegrityError(PermanentError):
    """Vault data failed authentication: tampered, truncated, reordered, or wrong key."""

    code = ErrorCode.VAULT_INTEGRITY_FAILURE


class ChainError(PermanentError):
    """The LSN chain does not allow what was asked (gap, missing base, wrong order)."""

    code = ErrorCode.SQL_LSN_VALIDATION_FAILURE


class PlanError(PermanentError):
    """No restore plan reaches the target; the message names the nearest restorable points."""

    code = ErrorCode.RESTORE_POINT_OUTSIDE_WINDOW


class EngineError(PermanentError):
    """The database engine refused a backup or restore (plugins may subclass it)."""
