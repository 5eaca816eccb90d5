"""Build BackupJob objects from the backups due this tick: one job per (instance, vault,
type, reason), at most 50 databases each (log backups of many databases cost one job)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlharbor.api import (
    API_VERSION,
    BackupJobSpec,
    JobDatabase,
    JobReason,
    LocalObjectReference,
    contract,
)
from sqlharbor.backupset import BackupType

MAX_DATABASES_PER_JOB = 50


@dataclass(frozen=True)
class DueBackup:
    namespace: str
    protected_database: str
    database_name: str
    instance: str
    vault: str
    backup_type: BackupType
    reason: JobReason
    reason_message: str | None
    expected_last_lsn: str | None
    expected_base_checkpoint_lsn: str | None
    compression_level: int | None


def batches(due: Iterable[DueBackup]) -> Iterator[list[DueBackup]]:
    groups: dict[tuple[str, str, str, BackupType, JobReason], list[DueBackup]] = defaultdict(list)
    for item in due:
        groups[(item.namespace, item.instance, item.vault, item.backup_type, item.reason)].append(
            item
        )
    for items in groups.values():
        for start in range(0, len(items), MAX_DATABASES_PER_JOB):
            yield items[start : start + MAX_DATABASES_PER_JOB]


def job_body(batch: list[DueBackup]) -> dict[str, Any]:
    first = batch[0]
    messages = [f"{b.database_name}: {b.reason_message}" for b in batch if b.reason_message]
    spec = BackupJobSpec(
        instance_ref=LocalObjectReference(name=first.instance),
        vault_ref=LocalObjectReference(name=first.vault),
        type=first.backup_type,
        databases=[
            JobDatabase(
                name=b.database_name,
                protected_database=b.protected_database,
                expected_last_lsn=b.expected_last_lsn,
                expected_base_checkpoint_lsn=b.expected_base_checkpoint_lsn,
            )
            for b in batch
        ],
        reason=first.reason,
        reason_message="; ".join(messages)[:1024] or None,
        compression_level=first.compression_level,
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "BackupJob",
        "metadata": {
            "generateName": f"{first.instance}-{first.backup_type.value.lower()}-"[:50],
            "namespace": first.namespace,
            "labels": {
                contract.LABEL_INSTANCE: first.instance,
                contract.LABEL_BACKUP_TYPE: first.backup_type.value,
                contract.LABEL_SCHEDULED: contract.truthy_label(),
            },
        },
        "spec": spec.to_wire(),
    }
