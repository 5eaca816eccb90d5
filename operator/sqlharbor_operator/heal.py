"""Auto-heal in the operator: translate what ProtectedDatabase status knows into the core's
``sqlharbor.domain.autoheal.BackupFacts`` and let ``autoheal.next_backup`` say what the
next backup must be (the rules live there, once, with their property tests).  Pure.
"""

from __future__ import annotations

from datetime import datetime

from sqlharbor.api import JobReason, ProtectedDatabaseStatus
from sqlharbor.domain import autoheal
from sqlharbor.domain.backupset import BackupType
from sqlharbor_operator.accounting import FULL_REQUIRED_CODES
from sqlharbor_operator.resolve import Resolved
from sqlharbor_operator.scheduling import parse_duration

Decision = tuple[BackupType | None, JobReason, str | None]

#: status.chain.fullRequired (operator reason) → the engine error code that caused it
_CAUSE = {reason: code for code, reason in FULL_REQUIRED_CODES.items()}


def backup_facts(
    status: ProtectedDatabaseStatus | None, resolved: Resolved
) -> autoheal.BackupFacts:
    db = resolved.database
    chain = status.chain if status else None
    last_full = status.last_full if status else None

    def lsn(value: str | None) -> int | None:
        return int(value) if value else None

    return autoheal.BackupFacts(
        recovery_model=db.recovery_model,
        database_guid=db.database_guid,
        database_name=db.name,
        has_full=last_full is not None,
        last_full_finish=last_full.time if last_full else None,
        last_full_checkpoint_lsn=lsn(chain.base_checkpoint_lsn) if chain else None,
        last_log_lsn=lsn(chain.last_lsn) if chain else None,
        last_error_code=_CAUSE.get(chain.full_required) if chain and chain.full_required else None,
        recovery_model_at_last_backup=chain.recovery_model if chain else None,
        database_guid_at_last_backup=chain.database_guid if chain else None,
        recovery_fork_guid=db.recovery_fork_guid or "",
        recovery_fork_at_last_backup=chain.recovery_fork_guid if chain else None,
        read_only=db.read_only,
    )


def heal(
    requested: BackupType, status: ProtectedDatabaseStatus | None, resolved: Resolved, now: datetime
) -> Decision:
    policy = autoheal.HealPolicy(max_full_age=parse_duration(resolved.policy.spec.max_full_age))
    decision = autoheal.next_backup(requested, backup_facts(status, resolved), now, policy)
    if decision.backup_type is None:
        return None, JobReason.SCHEDULED, None
    first_full = decision.reason is autoheal.Reason.NO_FULL_BACKUP and requested is BackupType.FULL
    if decision.is_heal and not first_full:
        return (
            decision.backup_type,
            JobReason.AUTO_HEAL,
            (f"{decision.reason.value}: {decision.message}"),
        )
    return decision.backup_type, JobReason.SCHEDULED, None
