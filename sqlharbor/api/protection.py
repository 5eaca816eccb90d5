"""``ProtectedDatabase``: one database under a policy.  Spec by users (or auto-protection);
status by the operator only.  The status answers "am I protected, and to which second can
I restore?" — it keeps summaries; the full recovery-point catalog lives in the vault."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import Field

from sqlharbor.api._base import (
    LSN_PATTERN,
    ApiModel,
    Condition,
    ErrorInfo,
    LocalObjectReference,
    StatusModel,
)
from sqlharbor.domain.backupset import RecoveryModel


class ProtectedDatabaseSpec(ApiModel):
    """Protect one database of one instance with a policy."""

    instance_ref: LocalObjectReference = Field(description="The SqlInstance the database is on.")
    database_name: str = Field(
        description="Database name exactly as SQL Server spells it (any characters).",
        min_length=1,
        max_length=128,
    )
    policy_ref: LocalObjectReference = Field(description="The BackupPolicy to apply.")
    vault_ref: LocalObjectReference | None = Field(
        default=None, description="Vault override; defaults to the policy's vault."
    )
    suspend: bool = Field(
        default=False,
        description="Stop scheduling backups (existing recovery points are kept).",
    )


class Health(enum.StrEnum):
    PENDING = "Pending"
    HEALTHY = "Healthy"
    WARNING = "Warning"
    UNHEALTHY = "Unhealthy"
    SUSPENDED = "Suspended"


class ChainHealth(enum.StrEnum):
    HEALTHY = "Healthy"
    BROKEN = "Broken"
    NOT_APPLICABLE = "NotApplicable"
    UNKNOWN = "Unknown"


class LastBackup(StatusModel):
    """The latest successful backup of one type."""

    time: datetime = Field(description="When the backup finished (UTC).")
    recovery_point_id: str = Field(description="Recovery point id in the vault.")
    job: str = Field(default="", description="The BackupJob that took it.")
    first_lsn: str = Field(default="0", description="first_lsn.", pattern=LSN_PATTERN)
    last_lsn: str = Field(default="0", description="last_lsn.", pattern=LSN_PATTERN)
    checkpoint_lsn: str = Field(default="0", description="checkpoint_lsn.", pattern=LSN_PATTERN)
    bytes_stored: int = Field(default=0, description="Bytes stored in the vault.")


class RecoveryWindow(StatusModel):
    """The range of seconds a point-in-time restore can reach (the latest continuous chain)."""

    earliest: datetime | None = Field(default=None, description="Earliest restorable time.")
    latest: datetime | None = Field(default=None, description="Latest restorable time.")
    earliest_text: str | None = Field(
        default=None, description="Earliest restorable time, RFC 3339 (for kubectl get)."
    )
    latest_text: str | None = Field(
        default=None, description="Latest restorable time, RFC 3339 (for kubectl get)."
    )


class ChainState(StatusModel):
    """What the operator needs to decide whether the next backup must be a full."""

    database_guid: str | None = Field(default=None, description="GUID at the last backup.")
    recovery_fork_guid: str | None = Field(
        default=None, description="Recovery fork at the last backup."
    )
    recovery_model: RecoveryModel | None = Field(
        default=None, description="Recovery model at the last backup."
    )
    base_checkpoint_lsn: str | None = Field(
        default=None,
        description="checkpoint_lsn of the last full (the differential base).",
        pattern=LSN_PATTERN,
    )
    last_lsn: str | None = Field(
        default=None,
        description="last_lsn of the latest backup in the chain (where the next log must start).",
        pattern=LSN_PATTERN,
    )
    full_required: str | None = Field(
        default=None, description="Why the next backup must be a full (auto-heal reason code)."
    )
    full_required_message: str | None = Field(default=None, description="Explanation.")


class ProtectedDatabaseStatus(StatusModel):
    """Protection state of the database."""

    health: Health | None = Field(default=None, description="Overall health.")
    message: str | None = Field(default=None, description="One line on the current health.")
    recovery_model: RecoveryModel | None = Field(default=None, description="As last discovered.")
    database_guid: str | None = Field(default=None, description="As last discovered.")
    last_backup_time: datetime | None = Field(
        default=None, description="When any backup last succeeded."
    )
    last_full: LastBackup | None = Field(default=None, description="Latest full backup.")
    last_differential: LastBackup | None = Field(default=None, description="Latest differential.")
    last_log: LastBackup | None = Field(default=None, description="Latest log backup.")
    recovery_window: RecoveryWindow | None = Field(
        default=None, description="Earliest and latest restorable second."
    )
    rpo_seconds: int | None = Field(
        default=None,
        description="Seconds between the latest restorable time and when status was last written.",
    )
    rpo: str | None = Field(default=None, description="Current RPO, human-readable (e.g. 42s).")
    recovery_points: int | None = Field(default=None, description="Recovery points in the vault.")
    unreadable_points: int | None = Field(
        default=None,
        description="Recovery points under a key the vault no longer lists: not restorable, "
        "outside the recovery window.",
    )
    unreadable_keys: list[str] = Field(
        default_factory=list, description="The keys (id, version) those points need."
    )
    log_chain: ChainHealth | None = Field(default=None, description="Log-chain health.")
    chain: ChainState | None = Field(default=None, description="Chain bookkeeping (auto-heal).")
    next_backup: str | None = Field(
        default=None, description="Next scheduled backup: type and time (RFC 3339)."
    )
    last_error: ErrorInfo | None = Field(default=None, description="Latest error, if any.")
    consecutive_failures: int | None = Field(default=None, description="Failures in a row.")
    observed_generation: int | None = Field(default=None, description="Generation observed.")
    conditions: list[Condition] = Field(default_factory=list, description="Observations.")
