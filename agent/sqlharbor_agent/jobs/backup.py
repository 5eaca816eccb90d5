"""Run one claimed ``BackupJob``: each database through the engine into the vault.

Called by the job loop (``sqlharbor_agent.jobs.loop``) on a worker thread.  Databases of a
job run concurrently, each holding one of the VM's backup slots.  Before a log or a
differential, the engine's backup history is checked against the chain position the
operator expects, so a backup another tool took is reported as a chain break
(``UserErrorSQLLSNValidationFailure``) instead of silently continuing a broken chain.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlharbor.api import BackupJob, DatabaseResult, ErrorInfo, JobDatabase, JobPhase
from sqlharbor.domain.backupset import BackupRecord, BackupRequest, BackupType
from sqlharbor.errors import ChainError, EngineError, ErrorCode, PermanentError, SqlHarborError
from sqlharbor_agent.engines.base import Engine, Sink
from sqlharbor_agent.jobs.reporter import JobReporter


class RecoveryPointWriter(Sink, Protocol):
    def commit(self, record: BackupRecord) -> Any: ...

    def abort(self) -> None: ...


class WriterFactory(Protocol):
    """Opens a vault writer for one backup (the agent binds it to a resolved vault)."""

    def __call__(
        self,
        *,
        database_name: str,
        database_guid: str,
        backup_type: BackupType,
        progress: Callable[[int, int], None],
    ) -> RecoveryPointWriter: ...


@dataclass(frozen=True)
class BackupContext:
    engine: Engine
    open_writer: WriterFactory
    slots: threading.Semaphore


def run_backup_job(ctx: BackupContext, job: BackupJob, reporter: JobReporter) -> bool:
    """Back up every database of the job; True when all succeeded."""
    databases = job.spec.databases
    for db in databases:
        reporter.set_result(DatabaseResult(name=db.name, phase=JobPhase.PENDING))
    with ThreadPoolExecutor(
        max_workers=min(len(databases), 8), thread_name_prefix="backup"
    ) as pool:
        outcomes = list(pool.map(lambda db: _one(ctx, job, db, reporter), databases))
    return all(outcomes)


def _one(ctx: BackupContext, job: BackupJob, db: JobDatabase, reporter: JobReporter) -> bool:
    with ctx.slots:
        started = datetime.now(UTC)
        reporter.set_result(DatabaseResult(name=db.name, phase=JobPhase.RUNNING, start=started))
        try:
            result = _backup(ctx, job, db, reporter)
        except SqlHarborError as exc:
            result = _failed(db.name, started, exc)
        except Exception as exc:  # an engine bug must not leave the job Running
            result = _failed(
                db.name,
                started,
                PermanentError(
                    f"unexpected {type(exc).__name__}: {exc}", code=ErrorCode.AGENT_INTERNAL_ERROR
                ),
            )
        reporter.set_result(result)
        return result.phase is JobPhase.SUCCEEDED


def _failed(name: str, started: datetime, exc: SqlHarborError) -> DatabaseResult:
    return DatabaseResult(
        name=name,
        phase=JobPhase.FAILED,
        start=started,
        finish=datetime.now(UTC),
        error=ErrorInfo.of(exc, datetime.now(UTC)),
    )


def _backup(
    ctx: BackupContext, job: BackupJob, db: JobDatabase, reporter: JobReporter
) -> DatabaseResult:
    backup_type = job.spec.type
    info = _find_database(ctx.engine, db.name)
    _check_chain_before(ctx.engine, job, db)
    writer = ctx.open_writer(
        database_name=db.name,
        database_guid=info.database_guid,
        backup_type=backup_type,
        progress=lambda raw, stored: reporter.add_progress(raw, stored),
    )
    try:
        record = ctx.engine.backup(
            BackupRequest(db.name, backup_type, copy_only=job.spec.copy_only), writer
        )
    except BaseException:
        writer.abort()
        raise
    try:
        manifest = writer.commit(record)
    except BaseException as exc:
        writer.abort()
        lost = _lost_chain_link(db.name, record, exc)
        if lost is not None:
            raise lost from exc
        raise
    result = DatabaseResult(
        name=db.name,
        phase=JobPhase.SUCCEEDED,
        backup_type=record.backup_type,
        recovery_point_id=manifest.recovery_point_id,
        database_guid=record.database_guid,
        recovery_model=record.recovery_model.value,
        first_lsn=str(record.first_lsn),
        last_lsn=str(record.last_lsn),
        checkpoint_lsn=str(record.checkpoint_lsn),
        database_backup_lsn=str(record.database_backup_lsn),
        differential_base_lsn=(
            str(record.differential_base_lsn) if record.differential_base_lsn is not None else None
        ),
        start=record.start,
        finish=record.finish,
        bytes_read=manifest.raw_size,
        bytes_stored=manifest.stored_size,
    )
    gap = _chain_gap_after(db, record)
    if gap:
        return result.model_copy(
            update={
                "phase": JobPhase.FAILED,
                "error": ErrorInfo(
                    code=ErrorCode.SQL_LSN_VALIDATION_FAILURE,
                    message=gap,
                    remediation=ErrorCode.SQL_LSN_VALIDATION_FAILURE.remediation,
                    time=datetime.now(UTC),
                ),
            }
        )
    return result


def _lost_chain_link(name: str, record: BackupRecord, exc: BaseException) -> ChainError | None:
    """The engine finished a chain backup (SQL Server recorded it: a log is truncated, a full
    moved the differential base) but its bytes never reached the vault: the chain is broken."""
    if record.is_copy_only or record.backup_type is BackupType.DIFFERENTIAL:
        return None
    cause = exc.message if isinstance(exc, SqlHarborError) else type(exc).__name__
    what = (
        "the log was truncated"
        if record.backup_type is BackupType.LOG
        else "the differential base moved"
    )
    return ChainError(
        f"{record.backup_type.value.lower()} backup of '{name}' (LSN {record.first_lsn}-"
        f"{record.last_lsn}) was taken but could not be stored ({cause}); {what}, so the chain "
        "is broken and the next backup will be a full"
    )


def _find_database(engine: Engine, name: str) -> Any:
    for info in engine.discover():
        if info.name == name:
            return info
    raise EngineError(
        f"database '{name}' does not exist on instance {engine.instance_name}",
        code=ErrorCode.SQL_PO_DOES_NOT_EXIST,
        remediation="Restore the database, fix spec.databaseName, or delete the "
        "ProtectedDatabase to stop protection.",
    )


def _check_chain_before(engine: Engine, job: BackupJob, db: JobDatabase) -> None:
    """Refuse a log/differential that would build on a backup another tool took."""
    if job.spec.copy_only:
        return
    if job.spec.type is BackupType.LOG and db.expected_last_lsn:
        expected = int(db.expected_last_lsn)
        foreign = _foreign_logs(engine.history(db.name), expected)
        if foreign:
            raise ChainError(
                f"log chain of '{db.name}' broken: another tool took a log backup "
                f"(first_lsn {foreign[0].first_lsn}) after our last one (last_lsn {expected}); "
                "the next backup will be a full"
            )
    if job.spec.type is BackupType.DIFFERENTIAL and db.expected_base_checkpoint_lsn:
        expected = int(db.expected_base_checkpoint_lsn)
        bases = [r for r in engine.history(db.name) if r.is_differential_base]
        if bases and bases[-1].checkpoint_lsn != expected:
            raise ChainError(
                f"differential base of '{db.name}' moved: another tool took a full backup "
                f"(checkpoint_lsn {bases[-1].checkpoint_lsn}, ours {expected}); "
                "the next backup will be a full"
            )


def _foreign_logs(history: Sequence[BackupRecord], expected_last_lsn: int) -> list[BackupRecord]:
    """Logs after ours that took log we do not hold.  An empty log (an idle database's,
    ours or another tool's: ``first_lsn == last_lsn == expected_last_lsn``) takes none."""
    return [
        r
        for r in history
        if r.backup_type is BackupType.LOG
        and not r.is_copy_only
        and r.first_lsn >= expected_last_lsn
        and r.last_lsn > expected_last_lsn
    ]


def _chain_gap_after(db: JobDatabase, record: BackupRecord) -> str | None:
    if record.backup_type is not BackupType.LOG or record.is_copy_only:
        return None
    if db.expected_last_lsn and record.first_lsn != int(db.expected_last_lsn):
        return (
            f"log backup of '{db.name}' starts at LSN {record.first_lsn}, not at "
            f"{db.expected_last_lsn} where our chain ended: a backup by another tool broke "
            "the chain; the next backup will be a full"
        )
    return None
