"""The exception tree shared by the operator, the agent and the CLI.

Two families, as in kopf: a ``PermanentError`` will fail the same way if retried (bad
input, a broken chain, a missing permission) and ends the unit of work with a stable
code; a ``TemporaryError`` (network, throttling, a restarting API server or Azurite)
is retried with backoff.  Every error carries a stable ``code`` (mirroring Azure
Backup's codes where one exists) and a human ``remediation``.  Messages never contain
secrets: callers pass names, never keys or connection strings.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Stable error codes, each with the remediation shown when the raiser gives none."""

    AGENT_LOST = "AgentLost"
    AGENT_RESTARTED = "AgentRestarted"
    AGENT_INTERNAL_ERROR = "AgentInternalError"
    JOB_FAILED = "JobFailed"
    TARGET_EXISTS = "UserErrorCannotRestoreExistingDBWithoutForceOverwrite"
    CONFLICT = "Conflict"
    NOT_FOUND = "NotFound"
    TEMPORARY_FAILURE = "TemporaryFailure"
    INTERNAL_ERROR = "InternalError"

    @property
    def remediation(self) -> str:
        return _REMEDIATIONS[self]


_REMEDIATIONS: dict[ErrorCode, str] = {
    ErrorCode.AGENT_LOST: "Check that sqlharbor-agent runs on the VM.",
    ErrorCode.AGENT_RESTARTED: "None needed; check the agent's logs if this repeats.",
    ErrorCode.AGENT_INTERNAL_ERROR: "Check the agent's log for the stack trace and report it.",
    ErrorCode.JOB_FAILED: "See the job's status and the agent's log.",
    ErrorCode.TARGET_EXISTS: "Restore under a new name, or allow overwriting the target.",
    ErrorCode.CONFLICT: "None: another writer changed the object first; read it again.",
    ErrorCode.NOT_FOUND: "Check the name and namespace.",
    ErrorCode.TEMPORARY_FAILURE: "None: retried automatically.",
    ErrorCode.INTERNAL_ERROR: "Check the agent and operator logs.",
}


class SqlHarborError(Exception):
    """Base of every error sqlharbor raises on purpose."""

    code: str = ErrorCode.INTERNAL_ERROR
    remediation: str = ErrorCode.INTERNAL_ERROR.remediation

    def __init__(self, message: str, *, code: str | None = None, remediation: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        if remediation is not None:
            self.remediation = remediation

    @property
    def message(self) -> str:
        return str(self)


class PermanentError(SqlHarborError):
    """Retrying will not help; the unit of work fails with this code."""


class TemporaryError(SqlHarborError):
    """Retry with backoff (network, throttling, a restarting dependency); ``retry_after``
    is the delay the other side asked for (e.g. Retry-After), when it said."""

    code = ErrorCode.TEMPORARY_FAILURE
    remediation = ErrorCode.TEMPORARY_FAILURE.remediation

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        remediation: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, code=code, remediation=remediation)
        self.retry_after = retry_after


class NotFound(PermanentError):
    """The object or blob does not exist."""

    code = ErrorCode.NOT_FOUND
    remediation = ErrorCode.NOT_FOUND.remediation


class Conflict(SqlHarborError):
    """A lost race, not a failure to retry: the object changed since it was read (a stale
    resourceVersion), or the API server refused a status change the operator-agent
    contract forbids (``TransitionRefused``).  Read again and decide again."""

    code = ErrorCode.CONFLICT
    remediation = ErrorCode.CONFLICT.remediation


class TransitionRefused(Conflict):
    """The API server's transition rules refused the write (e.g. a finished job)."""


class IntegrityError(PermanentError):
    """Vault data failed authentication: tampered, truncated, reordered, or wrong key."""

    code = "VaultIntegrityFailure"
    remediation = (
        "The recovery point is damaged or was written with another key; restore from "
        "another recovery point and check who can write to the vault container."
    )


class ChainError(PermanentError):
    """The LSN chain does not allow what was asked (gap, missing base, wrong order)."""

    code = "UserErrorSQLLSNValidationFailure"
    remediation = (
        "Another tool took a backup of this database; stop it. The next backup becomes a full."
    )


class EngineError(PermanentError):
    """The database engine refused a backup or restore."""
