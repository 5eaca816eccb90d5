"""``BackupJob`` and ``RestoreJob``: units of work for one instance's agent.

Specs are immutable (a CEL transition rule refuses edits).  BackupJob status is written by
the agent that claimed the job; RestoreJob status by the operator (plan) and then by the
agent (execution).  Phases only move forward; a finished job is never touched again except
by garbage collection.
"""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import ConfigDict, Field

from sqlharbor.api._base import (
    LSN_PATTERN,
    NAME_PATTERN,
    ApiModel,
    Condition,
    ErrorInfo,
    LocalObjectReference,
    StatusModel,
    cel,
    validations,
)
from sqlharbor.domain.backupset import BackupType

IMMUTABLE_SPEC = cel("self == oldSelf", "spec is immutable: create a new job instead")


class JobReason(enum.StrEnum):
    SCHEDULED = "Scheduled"
    ON_DEMAND = "OnDemand"
    AUTO_HEAL = "AutoHeal"


class JobPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def finished(self) -> bool:
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED)


class JobDatabase(ApiModel):
    """One database of a backup job, with the chain position the operator expects."""

    name: str = Field(description="Database name.", min_length=1, max_length=128)
    protected_database: str | None = Field(
        default=None,
        description="The ProtectedDatabase this backup is for.",
        pattern=NAME_PATTERN,
        max_length=253,
    )
    expected_last_lsn: str | None = Field(
        default=None,
        description="last_lsn of the previous backup in our chain; a log that does not start "
        "there is reported as a chain break.",
        pattern=LSN_PATTERN,
    )
    expected_base_checkpoint_lsn: str | None = Field(
        default=None,
        description="checkpoint_lsn of our last full; a differential on another base is "
        "reported as a chain break.",
        pattern=LSN_PATTERN,
    )


class BackupJobSpec(ApiModel):
    """What to back up.  Immutable."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            IMMUTABLE_SPEC,
            cel(
                "!(self.type == 'Differential' && self.copyOnly)",
                "copyOnly is not possible for a Differential (SQL Server ignores COPY_ONLY there)",
                ".copyOnly",
            ),
        )
    )

    instance_ref: LocalObjectReference = Field(description="The SqlInstance to back up.")
    vault_ref: LocalObjectReference = Field(description="The vault to write to.")
    type: BackupType = Field(description="Full, Differential or Log.")
    copy_only: bool = Field(
        default=False, description="Copy-only backup: outside the chain, no differential base."
    )
    databases: list[JobDatabase] = Field(
        description="Databases covered (one job carries many log backups).",
        min_length=1,
        max_length=50,
        json_schema_extra=validations(
            cel(
                "self.all(d, self.exists_one(e, e.name == d.name))",
                "each database may appear only once in a job",
            )
        ),
    )
    reason: JobReason = Field(default=JobReason.ON_DEMAND, description="Why the job exists.")
    reason_message: str | None = Field(
        default=None, description="Details, e.g. why auto-heal made this a full.", max_length=1024
    )
    compression_level: int | None = Field(
        default=None, description="zstd level; 0 stores uncompressed.", ge=0, le=19
    )


class Progress(StatusModel):
    """Progress of long work."""

    bytes_done: int = Field(default=0, description="Bytes read (backup) or restored so far.")
    bytes_total: int | None = Field(default=None, description="Bytes expected, when known.")
    bytes_stored: int = Field(default=0, description="Bytes written to the vault so far.")
    percent: int | None = Field(default=None, description="0-100, when the total is known.")
    rate_bytes_per_second: int | None = Field(default=None, description="Recent throughput.")
    message: str | None = Field(default=None, description="What is happening now.")


class DatabaseResult(StatusModel):
    """The outcome for one database of a backup job."""

    name: str = Field(description="Database name.")
    phase: JobPhase = Field(description="Pending, Running, Succeeded or Failed.")
    backup_type: BackupType | None = Field(default=None, description="Type taken.")
    recovery_point_id: str | None = Field(default=None, description="Recovery point id.")
    database_guid: str | None = Field(default=None, description="database_guid at backup time.")
    recovery_fork_guid: str | None = Field(
        default=None, description="The recovery fork the backup ends on (last_recovery_fork_guid)."
    )
    recovery_model: str | None = Field(default=None, description="Recovery model at backup.")
    first_lsn: str | None = Field(default=None, description="first_lsn.")
    last_lsn: str | None = Field(default=None, description="last_lsn.")
    checkpoint_lsn: str | None = Field(default=None, description="checkpoint_lsn.")
    database_backup_lsn: str | None = Field(default=None, description="database_backup_lsn.")
    differential_base_lsn: str | None = Field(default=None, description="differential_base_lsn.")
    start: datetime | None = Field(default=None, description="Backup start.")
    finish: datetime | None = Field(default=None, description="Backup finish.")
    bytes_read: int | None = Field(default=None, description="Raw bytes read from the engine.")
    bytes_stored: int | None = Field(default=None, description="Bytes stored after compression.")
    error: ErrorInfo | None = Field(default=None, description="Why it failed.")


class SealedGrant(StatusModel):
    """The job's storage rights and keys, sealed to the claiming session (``contract.grants``);
    written once by the operator."""

    sealed_to: str = Field(description="Fingerprint of the session key it is sealed to.")
    suite: str = Field(description="HPKE suite.")
    expires: datetime = Field(description="When its storage rights expire.")
    payload: str = Field(description="The sealed grant (base64); opens only in that session.")


class BackupJobStatus(StatusModel):
    """Written by the agent that claimed the job."""

    phase: JobPhase | None = Field(default=None, description="Pending, Running, Succeeded, Failed.")
    agent_session: str | None = Field(default=None, description="Session that claimed the job.")
    agent_key: str | None = Field(
        default=None, description="Public key (X25519, base64) of the claiming session."
    )
    grant: SealedGrant | None = Field(
        default=None, description="Storage rights and keys for this job (operator, sealed)."
    )
    start_time: datetime | None = Field(default=None, description="When it started.")
    completion_time: datetime | None = Field(default=None, description="When it finished.")
    progress: Progress | None = Field(default=None, description="Bytes, percent, rate.")
    succeeded: int | None = Field(default=None, description="Databases backed up.")
    failed: int | None = Field(default=None, description="Databases that failed.")
    databases: list[DatabaseResult] = Field(default_factory=list, description="Per database.")
    error: ErrorInfo | None = Field(default=None, description="Why the job failed as a whole.")
    message: str | None = Field(default=None, description="Summary.")
    conditions: list[Condition] = Field(default_factory=list, description="Observations.")


class VaultDatabaseSource(ApiModel):
    """A database identified in the vault itself (after losing the cluster)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.databaseGuid) || has(self.databaseName)",
                "source.vault needs databaseGuid or databaseName",
            )
        )
    )

    vault_ref: LocalObjectReference = Field(description="The vault holding the backups.")
    instance: str = Field(
        description="Instance as recorded in the vault (HOST or HOST\\INSTANCE).",
        min_length=1,
        max_length=300,
    )
    database_name: str | None = Field(default=None, description="Database name.", max_length=128)
    database_guid: str | None = Field(
        default=None,
        description="database_guid (unambiguous).",
        pattern=r"^[0-9a-fA-F-]{36}$",
    )


class RestoreSource(ApiModel):
    """What to restore from: exactly one."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.protectedDatabase) != has(self.vault)",
                "set exactly one of source.protectedDatabase or source.vault",
            )
        )
    )

    protected_database: str | None = Field(
        default=None,
        description="A ProtectedDatabase in this namespace.",
        pattern=NAME_PATTERN,
        max_length=253,
    )
    vault: VaultDatabaseSource | None = Field(
        default=None, description="A database found in a vault (no ProtectedDatabase needed)."
    )


class FileRelocation(ApiModel):
    """Where restored data and log files go (WITH MOVE)."""

    data_dir: str | None = Field(
        default=None, description="Folder for data files.", max_length=1024
    )
    log_dir: str | None = Field(default=None, description="Folder for log files.", max_length=1024)


class DatabaseTarget(ApiModel):
    """Restore into a database."""

    instance_ref: LocalObjectReference = Field(description="The SqlInstance to restore into.")
    database_name: str = Field(description="Target database name.", min_length=1, max_length=128)
    overwrite: bool = Field(
        default=False, description="Replace the target if it exists (WITH REPLACE)."
    )
    relocation: FileRelocation | None = Field(default=None, description="File relocation.")


class FilesTarget(ApiModel):
    """Write the plain backup streams and a JSON description of the sequence to a folder."""

    instance_ref: LocalObjectReference = Field(
        description="The SqlInstance whose agent host receives the files."
    )
    path: str = Field(
        description="Absolute folder on the agent's host.",
        min_length=1,
        max_length=1024,
        pattern=r"^(/|[A-Za-z]:\\).*",
    )


class RestoreTarget(ApiModel):
    """Where to restore to: exactly one."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.database) != has(self.files)",
                "set exactly one of target.database or target.files",
            )
        )
    )

    database: DatabaseTarget | None = Field(default=None, description="Restore into a database.")
    files: FilesTarget | None = Field(default=None, description="Restore as files.")


class RestorePoint(ApiModel):
    """How far to restore: exactly one."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.time) ? 1 : 0) + (has(self.lsn) ? 1 : 0) + "
                "(has(self.recoveryPointId) ? 1 : 0) + "
                "(has(self.latest) && self.latest ? 1 : 0) == 1",
                "set exactly one of pointInTime.time, .lsn, .recoveryPointId or .latest: true",
            ),
            cel(
                "!has(self.recoveryFork) || has(self.lsn)",
                "pointInTime.recoveryFork names the fork of an LSN: set pointInTime.lsn too, "
                "or remove recoveryFork",
            ),
        )
    )

    time: str | None = Field(
        default=None,
        description="RFC 3339 time, to the second or finer (UTC unless an offset is given).",
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]"
        r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
        r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$",
    )
    lsn: str | None = Field(
        default=None, description="Exact LSN (STOPATMARK).", pattern=LSN_PATTERN
    )
    recovery_point_id: str | None = Field(
        default=None,
        description="A recovery point id (restore exactly that point).",
        min_length=1,
        max_length=128,
    )
    latest: bool | None = Field(default=None, description="The latest restorable point.")
    recovery_fork: str | None = Field(
        default=None,
        description="With lsn: the recovery fork (first_recovery_fork_guid) the LSN is on. "
        "Needed only when the database was restored in place and the LSN exists on more "
        "than one fork; the planner says so.",
        pattern=r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
    )


class RestoreJobSpec(ApiModel):
    """What to restore, where, and to which point.  Immutable."""

    model_config = ConfigDict(json_schema_extra=validations(IMMUTABLE_SPEC))

    source: RestoreSource = Field(description="What to restore from.")
    target: RestoreTarget = Field(description="Where to restore to.")
    point_in_time: RestorePoint = Field(description="How far to restore.")


class RestorePhase(enum.StrEnum):
    PENDING = "Pending"
    PLANNED = "Planned"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class PlanStep(StatusModel):
    """One recovery point of the plan, applied in order."""

    recovery_point_id: str = Field(description="Recovery point id.")
    backup_type: BackupType = Field(description="Full, Differential or Log.")
    first_lsn: str = Field(description="first_lsn.")
    last_lsn: str = Field(description="last_lsn.")
    finish: datetime = Field(description="When that backup finished.")
    bytes_stored: int = Field(default=0, description="Bytes to read from the vault.")


class RestorePlanStatus(StatusModel):
    """The chain the restore uses and where it stops."""

    instance: str = Field(description="Instance as recorded in the vault.")
    database_guid: str = Field(description="Source database_guid.")
    database_name: str = Field(description="Source database name.")
    steps: list[PlanStep] = Field(description="Recovery points applied in order.")
    stop_at: datetime | None = Field(default=None, description="STOPAT time, if any.")
    stop_at_lsn: str | None = Field(default=None, description="STOPATMARK LSN, if any.")
    bytes_total: int = Field(default=0, description="Bytes to read in all.")


class RestoreJobStatus(StatusModel):
    """Plan written by the operator; execution by the agent."""

    phase: RestorePhase | None = Field(default=None, description="Progress through the phases.")
    plan: RestorePlanStatus | None = Field(
        default=None, description="The chain and the stop point."
    )
    agent_session: str | None = Field(default=None, description="Session that claimed the job.")
    agent_key: str | None = Field(
        default=None, description="Public key (X25519, base64) of the claiming session."
    )
    grant: SealedGrant | None = Field(
        default=None, description="Storage rights and keys for this job (operator, sealed)."
    )
    current_step: int | None = Field(default=None, description="1-based step being applied.")
    progress: Progress | None = Field(default=None, description="Bytes, percent, rate.")
    start_time: datetime | None = Field(default=None, description="When execution started.")
    completion_time: datetime | None = Field(default=None, description="When it finished.")
    error: ErrorInfo | None = Field(default=None, description="Why it failed.")
    message: str | None = Field(default=None, description="Summary.")
    observed_generation: int | None = Field(default=None, description="Generation observed.")
    conditions: list[Condition] = Field(default_factory=list, description="Observations.")
