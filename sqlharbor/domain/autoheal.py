"""Auto-heal: what the next backup of a database must be, and the agent's chain checks.

Pure, no I/O.  The operator calls ``decide`` when a schedule fires (or a user asks for a
backup) with what it knows about the database (``BackupFacts``); the answer is a
``Decision``: the backup type to run (None: skip) and a stable reason code with a
human message for status and Events.  The agent calls ``check_log_continuity`` and
``check_differential_base`` after a backup to report a chain broken by another tool.

The rules follow Azure Backup's auto-heal (REFERENCE.md): no full yet, a broken log
chain, a missing parent, a recovery-model change, a database overwritten by a restore
(new GUID) or restored in place (same GUID, new recovery fork), or a full older than
the policy's limit turn the next backup into a full.  Log backups are skipped under
SIMPLE (an on-demand one is refused); master and read-only databases get fulls only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlharbor.domain.backupset import BackupRecord, BackupType, RecoveryModel
from sqlharbor.errors import ErrorCode

DEFAULT_MAX_FULL_AGE = timedelta(days=15)


class Reason(enum.StrEnum):
    """Stable reason codes (status, Events, metrics labels)."""

    SCHEDULED = "Scheduled"
    ON_DEMAND = "OnDemand"
    NO_FULL_BACKUP = "NoFullBackup"
    LOG_CHAIN_BROKEN = "LogChainBroken"
    PARENT_FULL_MISSING = "ParentFullMissing"
    RECOVERY_MODEL_CHANGED = "RecoveryModelChanged"
    DATABASE_OVERWRITTEN = "DatabaseOverwritten"
    RESTORED_IN_PLACE = "DatabaseRestoredInPlace"
    FULL_TOO_OLD = "FullTooOld"
    SIMPLE_RECOVERY = "SimpleRecoveryModel"
    SYSTEM_DATABASE = "SystemDatabaseFullOnly"
    READ_ONLY = "ReadOnlyDatabase"


@dataclass(frozen=True)
class BackupFacts:
    """What the operator knows about one database's backups and its current state."""

    recovery_model: RecoveryModel
    database_guid: str
    database_name: str = ""
    has_full: bool = False
    last_full_finish: datetime | None = None
    last_full_checkpoint_lsn: int | None = None
    last_log_lsn: int | None = None
    last_diff_lsn: int | None = None
    last_error_code: str | None = None
    recovery_model_at_last_backup: RecoveryModel | None = None
    database_guid_at_last_backup: str | None = None
    read_only: bool = False
    #: the database's current recovery fork and the one the last backup ended on ("" /
    #: None: unknown); they differ after an in-place restore
    recovery_fork_guid: str = ""
    recovery_fork_at_last_backup: str | None = None

    @property
    def is_master(self) -> bool:
        return self.database_name.lower() == "master"


@dataclass(frozen=True)
class HealPolicy:
    max_full_age: timedelta = DEFAULT_MAX_FULL_AGE


@dataclass(frozen=True)
class Decision:
    """The backup to run (None: none), why, and — for a refused on-demand request — the error."""

    backup_type: BackupType | None
    reason: Reason
    message: str
    error_code: str | None = None

    @property
    def is_heal(self) -> bool:
        return self.reason not in (Reason.SCHEDULED, Reason.ON_DEMAND) and (
            self.backup_type is BackupType.FULL
        )


def next_backup(
    requested: BackupType,
    state: BackupFacts,
    now: datetime,
    policy: HealPolicy = HealPolicy(),
    *,
    on_demand: bool = False,
) -> Decision:
    """The next backup of the database, given the requested type and the chain's state."""
    if not state.has_full or state.last_full_finish is None:
        return _full(Reason.NO_FULL_BACKUP, "no full backup yet")
    skip = _skip(requested, state, on_demand)
    if skip is not None:
        return skip
    if requested is not BackupType.FULL:
        heal = _heal(state, now, policy)
        if heal is not None:
            return heal
    reason = Reason.ON_DEMAND if on_demand else Reason.SCHEDULED
    return Decision(requested, reason, f"{reason.value.lower()} {requested.value.lower()} backup")


def _skip(requested: BackupType, state: BackupFacts, on_demand: bool) -> Decision | None:
    """Backups that cannot be taken: logs under SIMPLE, anything but fulls of master or of
    a read-only database."""
    if requested is BackupType.FULL:
        return None
    if state.is_master:
        if requested is BackupType.DIFFERENTIAL:
            return _full(Reason.SYSTEM_DATABASE, "master takes full backups only")
        return _refuse(on_demand, Reason.SYSTEM_DATABASE, "master takes full backups only")
    if requested is BackupType.LOG and state.recovery_model is RecoveryModel.SIMPLE:
        return _refuse(
            on_demand,
            Reason.SIMPLE_RECOVERY,
            "database uses SIMPLE recovery: log backups are skipped; fulls only",
        )
    if state.read_only:
        return _refuse(on_demand, Reason.READ_ONLY, "database is read-only: full backups only")
    return None


def _heal(state: BackupFacts, now: datetime, policy: HealPolicy) -> Decision | None:
    guid_then = state.database_guid_at_last_backup
    if guid_then is not None and guid_then != state.database_guid:
        return _full(
            Reason.DATABASE_OVERWRITTEN,
            "the database was overwritten by a restore (its GUID changed)",
        )
    fork_then = state.recovery_fork_at_last_backup
    if fork_then and state.recovery_fork_guid and fork_then != state.recovery_fork_guid:
        return _full(
            Reason.RESTORED_IN_PLACE,
            "the database was restored in place (a new recovery fork began)",
        )
    model_then = state.recovery_model_at_last_backup
    if model_then is not None and model_then is not state.recovery_model:
        return _full(
            Reason.RECOVERY_MODEL_CHANGED,
            f"the recovery model changed from {model_then.value} to {state.recovery_model.value}",
        )
    if state.last_error_code == ErrorCode.SQL_LSN_VALIDATION_FAILURE:
        return _full(
            Reason.LOG_CHAIN_BROKEN, "the log chain is broken (another tool took a backup)"
        )
    if state.last_error_code == ErrorCode.PARENT_FULL_BACKUP_MISSING:
        return _full(Reason.PARENT_FULL_MISSING, "the engine reports no usable full backup")
    assert state.last_full_finish is not None
    age = now - state.last_full_finish
    if age > policy.max_full_age:
        return _full(
            Reason.FULL_TOO_OLD,
            f"the latest full is {age.days} days old (limit {policy.max_full_age.days} days)",
        )
    return None


def _full(reason: Reason, why: str) -> Decision:
    return Decision(BackupType.FULL, reason, f"full backup instead: {why}")


def _refuse(on_demand: bool, reason: Reason, why: str) -> Decision:
    if on_demand:
        return Decision(
            None,
            reason,
            f"refused: {why}",
            error_code=ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE,
        )
    return Decision(None, reason, f"skipped: {why}")


# -- chain checks the agent runs around a backup ------------------------------------------


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    code: str | None = None
    message: str = ""


def check_log_continuity(expected_lsn: int | None, log: BackupRecord) -> ChainCheck:
    """Is there a gap between what we hold and ``log``?

    ``expected_lsn`` is the previous log's ``last_lsn`` (or the base's ``last_lsn`` for
    the first log after it); a log that does not contain it leaves log we never saw."""
    if expected_lsn is None:
        return ChainCheck(
            False, ErrorCode.PARENT_FULL_BACKUP_MISSING, "no base to continue: take a full"
        )
    if log.spans_fork:
        return ChainCheck(
            False,
            ErrorCode.SQL_LSN_VALIDATION_FAILURE,
            f"log backup spans a recovery fork (LSN {log.fork_point_lsn}): the database was "
            "restored in place; the next backup will be a full",
        )
    if log.first_lsn <= expected_lsn <= log.last_lsn:
        return ChainCheck(True)
    return ChainCheck(
        False,
        ErrorCode.SQL_LSN_VALIDATION_FAILURE,
        f"log backup starts at LSN {log.first_lsn} but the chain expects LSN {expected_lsn}: "
        "another tool backed up the log; the next backup will be a full",
    )


def check_differential_base(our_full_checkpoint_lsn: int | None, diff: BackupRecord) -> ChainCheck:
    """Was the differential base moved by someone else's full?"""
    if (
        our_full_checkpoint_lsn is not None
        and diff.differential_base_lsn == our_full_checkpoint_lsn
    ):
        return ChainCheck(True)
    return ChainCheck(
        False,
        ErrorCode.SQL_LSN_VALIDATION_FAILURE,
        f"the differential is based on the full with checkpoint LSN {diff.differential_base_lsn}, "
        f"not on ours ({our_full_checkpoint_lsn}): another tool took a full; the next backup "
        "will be a full",
    )
