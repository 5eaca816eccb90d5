"""Builders of operator objects (Velero-style): defaults that make sense, one keyword per
thing a test cares about: policies, databases, resolved targets, job results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlharbor_operator.resolve import Resolved

from sqlharbor.api import (
    BackupPolicy,
    BackupVault,
    DatabaseResult,
    DiscoveredDatabase,
    ErrorInfo,
    JobPhase,
    ProtectedDatabaseStatus,
    SqlInstance,
)
from sqlharbor.domain.backupset import BackupType, DatabaseState, RecoveryModel

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # a Sunday
GUID = "46508AB9-F43A-4790-9D20-CB7901045949"


def policy(
    *,
    full: str = "0 1 * * 0",
    differential: str | None = "0 1 * * 1-6",
    log: str | None = "15m",
    max_full_age: str = "360h",
    tz: str = "UTC",
) -> BackupPolicy:
    schedules: dict[str, Any] = {"full": {"schedule": full}}
    if differential:
        schedules["differential"] = {"schedule": differential}
    if log:
        schedules["log"] = {"interval": log}
    return BackupPolicy.model_validate(
        {
            "kind": "BackupPolicy",
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "vaultRef": {"name": "v"},
                "schedules": schedules,
                "timeZone": tz,
                "retention": {"logDays": 7},
                "maxFullAge": max_full_age,
            },
        }
    )


def database(
    name: str = "sales",
    *,
    model: RecoveryModel = RecoveryModel.FULL,
    guid: str = GUID,
    read_only: bool = False,
) -> DiscoveredDatabase:
    return DiscoveredDatabase(
        name=name,
        database_guid=guid,
        recovery_model=model,
        state=DatabaseState.ONLINE,
        read_only=read_only,
    )


def resolved(db: DiscoveredDatabase | None = None, pol: BackupPolicy | None = None) -> Resolved:
    vault = BackupVault.model_validate(
        {
            "kind": "BackupVault",
            "metadata": {"name": "v", "namespace": "ns"},
            "spec": {
                "azureBlob": {
                    "container": "abc",
                    "credentials": {"secretRef": {"name": "s", "key": "k"}},
                },
                "encryption": {"keySecretRef": {"name": "k", "key": "k"}},
            },
        }
    )
    instance = SqlInstance.model_validate(
        {
            "kind": "SqlInstance",
            "metadata": {"name": "i", "namespace": "ns"},
            "spec": {"host": "vm1"},
        }
    )
    return Resolved(pol or policy(), vault, instance, db or database())


def result(
    kind: BackupType,
    finish: datetime,
    *,
    first: int = 100,
    last: int = 200,
    checkpoint: int = 150,
    rp: str = "rp",
    guid: str = GUID,
    model: RecoveryModel = RecoveryModel.FULL,
) -> DatabaseResult:
    return DatabaseResult(
        name="sales",
        phase=JobPhase.SUCCEEDED,
        backup_type=kind,
        recovery_point_id=rp,
        database_guid=guid,
        recovery_model=model.value,
        first_lsn=str(first),
        last_lsn=str(last),
        checkpoint_lsn=str(checkpoint),
        start=finish - timedelta(seconds=5),
        finish=finish,
        bytes_read=1000,
        bytes_stored=500,
    )


def failure(code: str, message: str = "it broke") -> DatabaseResult:
    return DatabaseResult(
        name="sales", phase=JobPhase.FAILED, error=ErrorInfo(code=code, message=message)
    )


def empty() -> ProtectedDatabaseStatus:
    return ProtectedDatabaseStatus()
