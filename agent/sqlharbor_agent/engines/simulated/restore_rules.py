"""SQL Server's refusals of a RESTORE step (simulated engine): pure checks of a backup
against what the sequence restored so far, and of a stream against its record.

Used by ``restore.RestoreRun``.  ``position`` is exclusive (the restored data holds
every LSN below it); ``data_fork`` is the recovery fork that data is on.
"""

from __future__ import annotations

from typing import Any

from sqlharbor.domain.backupset import BackupRecord
from sqlharbor.errors import EngineError, ErrorCode
from sqlharbor_agent.engines.simulated.tables import to_us


def check_differential(full: BackupRecord, position: int, record: BackupRecord) -> None:
    """A differential must be based on the restored full (its differential base is the
    recovery path a differential is on: one taken after an in-place restore of that full,
    on the new fork, belongs to it as much as one taken before)."""
    if record.differential_base_lsn != full.checkpoint_lsn:
        raise sequence(
            "This differential backup cannot be restored because the database has not "
            f"been restored to the correct earlier state: it is based on the full with "
            f"checkpoint LSN {record.differential_base_lsn}, the restored full has "
            f"{full.checkpoint_lsn} (3136)."
        )
    if position > record.last_lsn:
        raise sequence(
            f"The differential ends at LSN {record.last_lsn}, before what is already "
            f"restored (LSN {position})."
        )


def check_differential_base(full_set_id: str | None, header: dict[str, Any]) -> None:
    """The differential's stream names its base full (msdb's ``differential_base_guid``):
    LSNs repeat across recovery forks, so a checkpoint LSN alone can match a full of
    another fork."""
    base = header.get("differential_base_guid")
    if base and full_set_id and base != full_set_id:
        raise sequence(
            "This differential backup cannot be restored because the database has not been "
            f"restored to the correct earlier state: it is based on backup set {base}, the "
            f"restored full is backup set {full_set_id} (3136)."
        )


def check_log(position: int, logs_applied: int, data_fork: str, record: BackupRecord) -> None:
    """A log must continue what is restored (an empty log starting exactly there always
    does: it restores nothing) and be on the recovery path of the restored data."""
    continues_empty = record.is_empty_log and record.first_lsn == position
    if not continues_empty and position < record.first_lsn:
        raise sequence(
            f"The log in this backup set begins at LSN {record.first_lsn}, which is too "
            f"recent to apply to the database. An earlier log backup that includes LSN "
            f"{position} can be restored (4305)."
        )
    if not continues_empty and (
        position > record.last_lsn or (position == record.last_lsn and logs_applied)
    ):
        raise sequence(
            f"The log in this backup set terminates at LSN {record.last_lsn}, which is too "
            f"early to apply to the database. A more recent log backup that includes LSN "
            f"{position} can be restored (4326)."
        )
    fork = record.fork_at(position - 1)
    if data_fork and fork and fork != data_fork:
        raise sequence(
            "This backup set cannot be applied because it is on a recovery path that is "
            "inconsistent with the database. The recovery path is the sequence of data and "
            "log backups that have brought the database to a particular recovery point "
            f"(restored so far: LSN {position - 1} on recovery fork {data_fork}; this log "
            f"continues recovery fork {fork} there)."
        )


def stop_too_early(record: BackupRecord) -> EngineError:
    return EngineError(
        f"The stop point is too early: the {record.backup_type.value.lower()} backup "
        f"already reaches {record.finish.isoformat()} (LSN {record.last_lsn - 1}) (4338).",
        code=ErrorCode.RESTORE_STOP_POINT_OUTSIDE_BACKUPS,
        remediation="Choose a base that finished before the stop point.",
    )


def stop_beyond() -> EngineError:
    return EngineError(
        "The stop point lies after the end of the last backup restored; the database "
        "is left RESTORING so that more log backups can be applied.",
        code=ErrorCode.RESTORE_STOP_POINT_OUTSIDE_BACKUPS,
        remediation="Apply the log backups that reach the stop point, or choose an earlier one.",
    )


def target_exists(target: str) -> EngineError:
    return EngineError(
        f"Database '{target}' already exists; RESTORE refuses to overwrite it "
        "without REPLACE (SQL Server error 3159).",
        code=ErrorCode.TARGET_EXISTS,
        remediation="Restore under a new name, or ask for an overwrite (replace).",
    )


def match_header(header: dict[str, Any], record: BackupRecord) -> None:
    expected: dict[str, Any] = {
        "database_guid": record.database_guid,
        "backup_type": record.backup_type.value,
        "is_copy_only": record.is_copy_only,
        "first_lsn": record.first_lsn,
        "checkpoint_lsn": record.checkpoint_lsn,
        "differential_base_lsn": record.differential_base_lsn,
    }
    if record.first_recovery_fork_guid and "first_recovery_fork_guid" in header:
        expected["first_recovery_fork_guid"] = record.first_recovery_fork_guid
        expected["last_recovery_fork_guid"] = record.last_recovery_fork_guid
    _compare(expected, header)


def match_trailer(trailer: dict[str, Any], record: BackupRecord) -> None:
    _compare({"last_lsn": record.last_lsn, "finish_us": to_us(record.finish)}, trailer)


def _compare(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    wrong = sorted(key for key, value in expected.items() if actual.get(key) != value)
    if wrong:
        raise EngineError(
            f"The backup stream does not belong to the recovery point being restored "
            f"(mismatched: {', '.join(wrong)}).",
            code=ErrorCode.BACKUP_STREAM_DOES_NOT_MATCH_RECORD,
            remediation="Check that the vault's manifest and data stream belong together.",
        )


def sequence(message: str) -> EngineError:
    return EngineError(
        message,
        code=ErrorCode.RESTORE_SEQUENCE_INVALID,
        remediation="Restore a full first, then its latest differential, then the logs in order.",
    )
