"""``BackupPolicy``: schedules (full, differential, log), GFS retention and compression.
Spec by users; status by the operator."""

from __future__ import annotations

import enum

from pydantic import ConfigDict, Field

from sqlharbor.api._base import (
    CRON_PATTERN,
    DURATION_PATTERN,
    ApiModel,
    Condition,
    LocalObjectReference,
    StatusModel,
    cel,
    validations,
)


class CronSchedule(ApiModel):
    """A cron schedule in the policy's time zone."""

    schedule: str = Field(
        description=(
            "Five-field cron expression (minute hour day-of-month month day-of-week), e.g. "
            "'0 1 * * 0' for Sundays at 01:00, or a macro such as @daily."
        ),
        pattern=CRON_PATTERN,
        max_length=128,
    )


class LogSchedule(ApiModel):
    """Transaction-log backups every interval (databases in FULL or BULK_LOGGED recovery)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "duration(self.interval) >= duration('30s') && "
                "duration(self.interval) <= duration('24h')",
                "log.interval must be between 30s and 24h",
                ".interval",
            )
        )
    )

    interval: str = Field(
        description="How often to back up the log, between 30s and 24h (e.g. 30s, 15m, 1h).",
        pattern=DURATION_PATTERN,
        max_length=32,
    )


class Schedules(ApiModel):
    """When each type of backup runs."""

    full: CronSchedule = Field(description="When to take full backups.")
    differential: CronSchedule | None = Field(
        default=None, description="When to take differential backups (optional)."
    )
    log: LogSchedule | None = Field(
        default=None, description="Log backup interval (optional; omit for fulls/diffs only)."
    )


class RetentionCount(ApiModel):
    """How many periods to keep."""

    count: int = Field(description="Number of periods to keep.", ge=1, le=9999)


class Retention(ApiModel):
    """Grandfather-father-son retention.  A recovery point is kept while any rule keeps it or
    any kept point depends on it (chain-aware)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.daily) || self.logDays <= self.daily.count",
                "retention.logDays cannot exceed retention.daily.count: logs need the daily "
                "fulls/differentials they follow",
                ".logDays",
            )
        )
    )

    daily: RetentionCount | None = Field(
        default=None, description="Keep the last backup of each day for this many days."
    )
    weekly: RetentionCount | None = Field(
        default=None, description="Keep the last full of each week for this many weeks."
    )
    monthly: RetentionCount | None = Field(
        default=None, description="Keep the last full of each month for this many months."
    )
    yearly: RetentionCount | None = Field(
        default=None, description="Keep the last full of each year for this many years."
    )
    log_days: int = Field(
        default=14,
        description="Keep log backups (point-in-time restore) this many days.",
        ge=1,
        le=3650,
    )


class CompressionAlgorithm(enum.StrEnum):
    ZSTD = "zstd"
    NONE = "none"


class Compression(ApiModel):
    """How backup streams are compressed before encryption."""

    algorithm: CompressionAlgorithm = Field(
        default=CompressionAlgorithm.ZSTD, description="zstd (default) or none."
    )
    level: int = Field(default=3, description="zstd level (1 fastest .. 19 smallest).", ge=1, le=19)


class BackupPolicySpec(ApiModel):
    """How databases that use this policy are backed up and kept."""

    vault_ref: LocalObjectReference | None = Field(
        default=None,
        description="Default vault for databases using this policy (a ProtectedDatabase may "
        "override it).",
    )
    time_zone: str = Field(
        default="UTC",
        description="IANA time zone the cron schedules are read in, e.g. Europe/Berlin.",
        pattern=r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$",
        max_length=64,
    )
    schedules: Schedules = Field(description="When each backup type runs.")
    retention: Retention = Field(description="What is kept, and for how long.")
    compression: Compression = Field(
        default_factory=Compression, description="Compression of backup streams."
    )
    max_full_age: str = Field(
        default="360h",
        description="A full older than this makes the next backup a full (auto-heal); "
        "default 15 days.",
        pattern=DURATION_PATTERN,
        max_length=32,
    )


class BackupPolicyStatus(StatusModel):
    """The operator's view of the policy."""

    observed_generation: int | None = Field(default=None, description="Generation validated.")
    protected_databases: int | None = Field(
        default=None, description="How many ProtectedDatabases use this policy."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Observations.")
