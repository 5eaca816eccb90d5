"""Auto-heal: the scheduled backup type, corrected for what the chain needs.  Pure.

A broken chain, no full yet, a recovery-model switch, a database overwritten by a restore
(its GUID changed), or a full older than the policy allows makes the next backup a full,
with the reason recorded in the job.  Logs are skipped under SIMPLE recovery; read-only
databases get fulls only; master gets fulls only.
"""

from __future__ import annotations

from datetime import datetime

from sqlharbor.api import JobReason, ProtectedDatabaseStatus
from sqlharbor.backupset import BackupType, RecoveryModel
from sqlharbor_operator.resolve import Resolved
from sqlharbor_operator.scheduling import parse_duration

Decision = tuple[BackupType | None, JobReason, str | None]


def heal(
    requested: BackupType, status: ProtectedDatabaseStatus | None, resolved: Resolved, now: datetime
) -> Decision:
    db = resolved.database
    chain = status.chain if status else None
    last_full = status.last_full if status else None
    full = BackupType.FULL
    if last_full is None:
        reason = JobReason.SCHEDULED if requested is full else JobReason.AUTO_HEAL
        return full, reason, "NoFullBackup: no full backup yet"
    if chain is not None and chain.full_required:
        return full, JobReason.AUTO_HEAL, f"{chain.full_required}: {chain.full_required_message}"
    if chain is not None and chain.database_guid and chain.database_guid != db.database_guid:
        return (
            full,
            JobReason.AUTO_HEAL,
            ("DatabaseOverwritten: the database GUID changed (it was restored over or recreated)"),
        )
    if (
        chain is not None
        and chain.recovery_model is not None
        and chain.recovery_model is not db.recovery_model
        and requested is not full
    ):
        return (
            full,
            JobReason.AUTO_HEAL,
            (
                f"RecoveryModelChanged: recovery model changed from {chain.recovery_model.value} "
                f"to {db.recovery_model.value}"
            ),
        )
    max_age = parse_duration(resolved.policy.spec.max_full_age)
    if requested is not full and now - last_full.time > max_age:
        return (
            full,
            JobReason.AUTO_HEAL,
            (
                "FullTooOld: the last full is older than maxFullAge "
                + resolved.policy.spec.max_full_age
            ),
        )
    if requested is BackupType.LOG and db.recovery_model is RecoveryModel.SIMPLE:
        return None, JobReason.SCHEDULED, None
    if requested is not full and (db.read_only or db.name.lower() == "master"):
        return None, JobReason.SCHEDULED, None
    return requested, JobReason.SCHEDULED, None
