"""The exception tree shared by the operator, the agent and the CLI.

Two families, as in kopf: a ``PermanentError`` will fail the same way if retried (bad
input, a broken chain, a missing permission) and ends the unit of work with a stable
code; a ``TemporaryError`` (network, throttling, a restarting API server or Azurite)
is retried with backoff.  Every error carries a stable ``code`` (mirroring Azure
Backup's codes where one exists) and a human ``remediation``.  Messages never contain
secrets: callers pass names, never keys or connection strings.
"""

from __future__ import annotations


class SqlHarborError(Exception):
    """Base of every error sqlharbor raises on purpose."""

    code: str = "InternalError"
    remediation: str = "Check the agent and operator logs."

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
    """Retry with backoff (network, throttling, a restarting dependency)."""

    code = "TemporaryFailure"


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
