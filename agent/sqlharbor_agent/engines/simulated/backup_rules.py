"""SQL Server's refusals of a backup, in the order it checks them (simulated engine)."""

from __future__ import annotations

from sqlharbor.domain.backupset import BackupRequest, BackupType, DatabaseState, RecoveryModel
from sqlharbor.errors import EngineError, ErrorCode
from sqlharbor_agent.engines.simulated.tables import DatabaseRow


def validate_backup(db: DatabaseRow, request: BackupRequest) -> None:
    """SQL Server's refusals, in the order it checks them."""
    if db.state is not DatabaseState.ONLINE:
        raise not_online(db)
    kind = request.backup_type
    if kind is not BackupType.FULL and db.is_master:
        raise EngineError(
            f"Only full backups of the master database are possible ({kind.value} requested).",
            code=ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE,
            remediation="Back up master with full backups only.",
        )
    if kind is BackupType.LOG and db.recovery_model is RecoveryModel.SIMPLE:
        raise EngineError(
            f"The statement BACKUP LOG is not allowed while the recovery model of "
            f"'{db.name}' is SIMPLE.",
            code=ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE,
            remediation="Use the FULL recovery model, or take full/differential backups only.",
        )
    if kind is BackupType.LOG and db.last_log_backup_lsn is None:
        raise EngineError(
            f"BACKUP LOG cannot be performed because there is no current database backup "
            f"of '{db.name}' (no log chain: take a full or differential first).",
            code=ErrorCode.PARENT_FULL_BACKUP_MISSING,
            remediation="Take a full backup.",
        )
    if kind is BackupType.DIFFERENTIAL and db.diff_base_lsn is None:
        raise EngineError(
            f"Cannot perform a differential backup of '{db.name}': no full backup exists "
            "to base it on.",
            code=ErrorCode.PARENT_FULL_BACKUP_MISSING,
            remediation="Take a full backup.",
        )


def not_online(db: DatabaseRow) -> EngineError:
    return EngineError(
        f"Database '{db.name}' is {db.state.value}, not ONLINE.",
        code=ErrorCode.DATABASE_NOT_ONLINE,
        remediation="Bring the database online (finish or redo its restore).",
    )
