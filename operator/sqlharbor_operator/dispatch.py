"""Dispatch: find the backups due this tick (schedules, auto-heal, log alignment) and create
them as BackupJobs: one job per (instance, vault, type, reason), at most 50 databases each
(log backups of many databases cost one job).  ``Dispatcher`` is called by the tick."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlharbor.api import (
    API_VERSION,
    BackupJobSpec,
    JobDatabase,
    JobReason,
    LocalObjectReference,
    ProtectedDatabase,
    contract,
)
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import SqlHarborError
from sqlharbor_operator.heal import heal
from sqlharbor_operator.logs import fields
from sqlharbor_operator.resolve import Problem, resolve
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.scheduling import due, log_alignment
from sqlharbor_operator.state import Key

log = logging.getLogger(__name__)

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


def job_body(batch: list[DueBackup], agent: str | None = None) -> dict[str, Any]:
    """The BackupJob of one batch, assigned to ``agent`` (the instance's ``spec.agent``;
    unset: ``assignment`` labels it once the instance has an agent)."""
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
                **({contract.LABEL_AGENT: agent} if agent else {}),
            },
        },
        "spec": spec.to_wire(),
    }


class Dispatcher:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def tick(self, now: datetime) -> None:
        state = self._rt.state
        due_now: list[DueBackup] = []
        for key, pd in state.databases.items():
            item = self._due_backup(key, pd, now)
            if item is not None:
                due_now.append(item)
        due_now += self._aligned_logs(due_now, now)
        for batch in batches(due_now):
            try:
                first = batch[0]
                instance = state.instances.get((first.namespace, first.instance))
                agent = instance.spec.agent if instance is not None else None
                created = await self._rt.api.create(
                    "BackupJob", first.namespace, job_body(batch, agent)
                )
            except SqlHarborError as exc:
                log.warning("cannot create backup job: %s", exc)
                continue
            job_name = created["metadata"]["name"]
            for item in batch:
                state.busy[(item.namespace, item.protected_database)] = job_name
                log.info(
                    "dispatched %s backup of %s/%s in BackupJob %s (%s)",
                    item.backup_type.value,
                    item.namespace,
                    item.protected_database,
                    job_name,
                    item.reason.value,
                    extra=fields(
                        namespace=item.namespace, job=job_name, database=item.protected_database
                    ),
                )
            state.add_created("BackupJob", created)
            if batch[0].reason is JobReason.AUTO_HEAL:
                for item in batch:
                    pd = state.databases[(item.namespace, item.protected_database)]
                    note = f"next backup is a full: {item.reason_message}"
                    await self._rt.event(pd, "AutoHeal", note, "Normal")

    def _aligned_logs(self, due_now: list[DueBackup], now: datetime) -> list[DueBackup]:
        """Log backups taken early, in the same job as a log backup due now on the same
        instance (see ``scheduling.log_alignment``): databases of an instance fall into
        step, so log backups of N databases cost one job per interval, not N."""
        instances = {(i.namespace, i.instance) for i in due_now if i.backup_type is BackupType.LOG}
        if not instances:
            return []
        taken = {(i.namespace, i.protected_database) for i in due_now}
        early: list[DueBackup] = []
        for key, pd in self._rt.state.databases.items():
            if key in taken or (key[0], pd.spec.instance_ref.name) not in instances:
                continue
            item = self._due_backup(key, pd, now, early=True)
            if item is not None:
                early.append(item)
        return early

    def _due_backup(
        self, key: Key, pd: ProtectedDatabase, now: datetime, *, early: bool = False
    ) -> DueBackup | None:
        """The backup ``pd`` needs now; with ``early``, only a scheduled log backup that
        falls within the policy's alignment window."""
        state = self._rt.state
        if pd.spec.suspend or key in state.busy:
            return None
        if state.retry_after.get(key, now) > now:
            return None
        resolved = resolve(state, pd, now)
        if isinstance(resolved, Problem):
            return None
        spec = resolved.policy.spec
        horizon = now + log_alignment(spec) if early else now
        requested = due(spec, pd.status, resolved.database.recovery_model, horizon)
        if requested.backup_type is None:
            return None
        if early and requested.backup_type is not BackupType.LOG:
            return None
        backup_type, reason, message = heal(requested.backup_type, pd.status, resolved, now)
        if backup_type is None or (early and backup_type is not BackupType.LOG):
            return None
        chain = pd.status.chain if pd.status else None
        compression = spec.compression
        return DueBackup(
            namespace=key[0],
            protected_database=key[1],
            database_name=pd.spec.database_name,
            instance=resolved.instance.metadata.name,
            vault=resolved.vault.metadata.name,
            backup_type=backup_type,
            reason=reason,
            reason_message=message,
            expected_last_lsn=chain.last_lsn if chain and backup_type is BackupType.LOG else None,
            expected_base_checkpoint_lsn=(
                chain.base_checkpoint_lsn
                if chain and backup_type is BackupType.DIFFERENTIAL
                else None
            ),
            compression_level=compression.level if compression.algorithm.value == "zstd" else 0,
        )
