"""Run one claimed ``RestoreJob``: stream the operator's plan out of the vault into the engine
(or into a folder, "restore as files"), reporting progress, and write the outcome.

Called by the RestoreJob loop of ``sqlharbor_agent.worker.InstanceWorker`` on a worker
thread, after the claim moved the job from Planned to Running.  Every step is read through
``RecoveryPointReader`` (parallel ranged downloads; each chunk authenticated, decrypted and
decompressed, the whole stream verified before its end is handed out), one step at a time
and in plan order, so memory stays bounded by the reader's chunks in flight.  The status
writer is throttled (``RestoreReporter``) and always writes once at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlharbor.api import ErrorInfo, Progress, RestoreJob, contract
from sqlharbor.api.jobs import RestorePlanStatus
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import Conflict, ErrorCode, PermanentError, SqlHarborError
from sqlharbor.vault import Manifest, Vault
from sqlharbor_agent.engines.base import (
    Engine,
    FileRelocation,
    RestoreOptions,
    RestoreStep,
    StopAt,
)

log = logging.getLogger(__name__)

COPY_BUFFER = 1024 * 1024
DESCRIPTION_FILE = "restore-sequence.json"

Writer = Callable[[dict[str, Any]], None]


class RestoreReporter:
    """The only writer of one RestoreJob's status while the agent runs it (throttled)."""

    def __init__(self, write: Writer, *, interval: float, bytes_total: int) -> None:
        self._write = write
        self._interval = interval
        self._total = bytes_total
        self._lock = threading.Lock()
        self._done = 0
        self._step = 0
        self._message = "starting"
        self._started = time.monotonic()
        self._last = 0.0

    def step(self, number: int, message: str) -> None:
        with self._lock:
            self._step, self._message = number, message
        self._flush(force=True)

    def add(self, raw: int, _stored: int = 0) -> None:
        with self._lock:
            self._done += raw
        self._flush()

    def set_total(self, total: int) -> None:
        with self._lock:
            self._total = total

    @property
    def total(self) -> int:
        return self._total

    @property
    def rate(self) -> int:
        return int(self._done / max(time.monotonic() - self._started, 1e-6))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            percent = min(100, self._done * 100 // self._total) if self._total else None
            progress = Progress(
                bytes_done=self._done,
                bytes_total=self._total,
                percent=percent,
                rate_bytes_per_second=self.rate,
                message=self._message,
            )
            return {"progress": progress.to_wire(), "currentStep": self._step or None}

    def _flush(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        with contextlib.suppress(SqlHarborError):  # best effort; the final write is not
            self._write(self.snapshot())

    def final(self, extra: dict[str, Any]) -> None:
        status = self.snapshot()
        status.update(extra)
        self._write(status)


@dataclass(frozen=True)
class RestoreContext:
    engine: Engine
    slots: threading.Semaphore
    write_status: Callable[[str, str, dict[str, Any]], None]  # namespace, name, status
    progress_seconds: float


def run_restore_job(ctx: RestoreContext, obj: dict[str, Any], vault: Vault) -> bool:
    """Execute a claimed RestoreJob with the ``vault`` its grant gives; True when it
    succeeded.  Always ends the job."""
    job = RestoreJob.model_validate(obj)
    ns, name = job.metadata.namespace or "", job.metadata.name

    def write(status: dict[str, Any]) -> None:
        ctx.write_status(ns, name, status)

    plan = job.status.plan if job.status else None
    reporter = RestoreReporter(
        write, interval=ctx.progress_seconds, bytes_total=plan.bytes_total if plan else 0
    )
    try:
        if plan is None or not plan.steps:
            raise PermanentError("the RestoreJob has no plan", code=ErrorCode.RESTORE_PLAN_MISSING)
        with ctx.slots:
            message = _execute(ctx, job, plan, vault, reporter)
    except SqlHarborError as exc:
        _end(reporter, exc.message, exc)
        return False
    except Exception as exc:  # an engine bug must not leave the job Running
        error = PermanentError(
            f"unexpected {type(exc).__name__}", code=ErrorCode.AGENT_INTERNAL_ERROR
        )
        log.exception("RestoreJob %s/%s crashed", ns, name)
        _end(reporter, error.message, error)
        return False
    _end(reporter, message)
    return True


def _end(reporter: RestoreReporter, message: str, error: SqlHarborError | None = None) -> None:
    info = ErrorInfo.of(error) if error is not None else None
    try:
        reporter.final(contract.restore_finished(message, info, datetime.now(UTC)))
    except Conflict as lost:  # e.g. failed AgentLost while we were cut off
        log.warning("the outcome of this restore job was refused: %s", lost)


def _manifests(vault: Vault, plan: RestorePlanStatus) -> list[Manifest]:
    manifests = [
        vault.manifest(plan.instance, plan.database_guid, step.recovery_point_id)
        for step in plan.steps
    ]
    for m in manifests:
        vault.authenticate(m)  # every step, before the target is touched
        if len(m.data.stripes) != 1:  # one stream per step: striped points come later
            raise PermanentError(
                f"recovery point {m.identity.recovery_point_id} is striped over "
                f"{len(m.data.stripes)} streams; this agent restores one stream per step",
                code=ErrorCode.VAULT_FORMAT_TOO_NEW,
            )
    return manifests


def _execute(
    ctx: RestoreContext,
    job: RestoreJob,
    plan: RestorePlanStatus,
    vault: Vault,
    reporter: RestoreReporter,
) -> str:
    manifests = _manifests(vault, plan)
    reporter.set_total(sum(m.data.raw_size for m in manifests))  # exact stream bytes
    started = time.monotonic()
    stop = _stop_of(plan)
    target = job.spec.target
    if target.files is not None:
        folder = write_files(vault, plan, manifests, Path(target.files.path), stop, reporter)
        outcome = f"wrote {len(manifests)} backup stream(s) and {DESCRIPTION_FILE} to {folder}"
    else:
        assert target.database is not None
        db = target.database
        relocation = db.relocation
        options = RestoreOptions(
            target_database=db.database_name,
            replace=db.overwrite,
            relocation=FileRelocation(
                data_dir=relocation.data_dir if relocation else None,
                log_dir=relocation.log_dir if relocation else None,
            ),
        )
        ctx.engine.restore(options, _steps(vault, manifests, reporter), stop)
        outcome = f"restored {plan.database_name} into {db.database_name}"
    elapsed = max(time.monotonic() - started, 1e-6)
    total = reporter.total
    return (
        f"{outcome} ({len(manifests)} step(s), {total} bytes in {elapsed:.1f}s, "
        f"{int(total / elapsed)} B/s)"
    )


def _stop_of(plan: RestorePlanStatus) -> StopAt | None:
    if plan.stop_at is not None:
        return StopAt(time=plan.stop_at)
    if plan.stop_at_lsn is not None:
        return StopAt(lsn=int(plan.stop_at_lsn))
    return None


def _steps(
    vault: Vault, manifests: list[Manifest], reporter: RestoreReporter
) -> Iterator[RestoreStep]:
    """One verified stream per step, opened lazily and closed before the next one."""
    for number, manifest in enumerate(manifests, start=1):
        reporter.step(number, _describe(number, len(manifests), manifest))
        with vault.open_reader(manifest, progress=reporter.add) as reader:
            yield RestoreStep(record=manifest.to_record(), source=reader)


def _describe(number: int, count: int, manifest: Manifest) -> str:
    return (
        f"step {number}/{count}: {manifest.backup.backup_type.value} "
        f"{manifest.identity.recovery_point_id} ({manifest.data.raw_size} bytes)"
    )


# -- restore as files ----------------------------------------------------------------


def _file_name(number: int, manifest: Manifest) -> str:
    suffix = {BackupType.FULL: "bak", BackupType.DIFFERENTIAL: "dif", BackupType.LOG: "trn"}
    backup_type = manifest.backup.backup_type
    point = manifest.identity.recovery_point_id
    return f"{number:03d}-{backup_type.value.lower()}-{point}.{suffix[backup_type]}"


def write_files(
    vault: Vault,
    plan: RestorePlanStatus,
    manifests: list[Manifest],
    folder: Path,
    stop: StopAt | None,
    reporter: RestoreReporter,
) -> Path:
    """The plain backup streams, in order, and a JSON description of the sequence.

    Files are written under a temporary name and renamed when complete (and verified by
    the reader); the description is written last, so its presence means the set is whole.
    """
    if folder.exists() and any(folder.iterdir()):
        raise PermanentError(
            f"the folder {folder} exists and is not empty; restore-as-files never overwrites",
            code=ErrorCode.RESTORE_FOLDER_NOT_EMPTY,
            remediation="Choose a new or empty folder.",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermanentError(
            f"cannot create {folder}: {exc.strerror}", code=ErrorCode.RESTORE_FOLDER
        ) from None
    entries: list[dict[str, Any]] = []
    for number, manifest in enumerate(manifests, start=1):
        reporter.step(number, _describe(number, len(manifests), manifest))
        name = _file_name(number, manifest)
        partial = folder / f".{name}.partial"
        with (
            vault.open_reader(manifest, progress=reporter.add) as reader,
            partial.open("wb") as out,
        ):
            buffer = bytearray(COPY_BUFFER)
            view = memoryview(buffer)
            while count := reader.readinto(view):
                out.write(view[:count])
            out.flush()
            os.fsync(out.fileno())
        partial.rename(folder / name)
        entries.append(_entry(number, name, manifest, folder))
    description = describe_sequence(plan, entries, stop, folder)
    (folder / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")
    return folder


def _entry(number: int, name: str, manifest: Manifest, folder: Path) -> dict[str, Any]:
    b = manifest.backup
    return {
        "order": number,
        "file": name,
        "path": str(folder / name),
        "type": b.backup_type.value,
        "recoveryPointId": manifest.identity.recovery_point_id,
        "copyOnly": b.copy_only,
        "firstLsn": str(b.first_lsn),
        "lastLsn": str(b.last_lsn),
        "checkpointLsn": str(b.checkpoint_lsn),
        "databaseBackupLsn": str(b.database_backup_lsn),
        "differentialBaseLsn": None
        if b.differential_base_lsn is None
        else str(b.differential_base_lsn),
        "start": b.start.astimezone(UTC).isoformat(),
        "finish": b.finish.astimezone(UTC).isoformat(),
        "bytes": manifest.data.raw_size,
    }


def _quote(text: str) -> str:
    return text.replace("'", "''")


def describe_sequence(
    plan: RestorePlanStatus, entries: list[dict[str, Any]], stop: StopAt | None, folder: Path
) -> dict[str, Any]:
    """The JSON a DBA reads: what each file is, in which order, and the T-SQL to run."""
    db = plan.database_name.replace("]", "]]")
    stop_clause = ""
    if stop is not None and stop.time is not None:
        stamp = stop.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        stop_clause = f", STOPAT = '{stamp}'"
    elif stop is not None and stop.lsn is not None:
        stop_clause = f", STOPATMARK = 'lsn:{stop.lsn}'"
    statements = []
    for entry in entries:
        verb = "LOG" if entry["type"] == BackupType.LOG.value else "DATABASE"
        extra = stop_clause if verb == "LOG" else ""
        statements.append(
            f"RESTORE {verb} [{db}] FROM DISK = N'{_quote(entry['path'])}' "
            f"WITH NORECOVERY, CHECKSUM{extra};"
        )
    statements.append(f"RESTORE DATABASE [{db}] WITH RECOVERY;")
    return {
        "format": "sqlharbor.restore-sequence/v1",
        "note": "Plain backup streams as the engine produced them, verified against the "
        "vault; apply them in order (all WITH NORECOVERY), then recover.",
        "source": {
            "instance": plan.instance,
            "databaseName": plan.database_name,
            "databaseGuid": plan.database_guid,
        },
        "stopAt": None
        if stop is None or stop.time is None
        else stop.time.astimezone(UTC).isoformat(),
        "stopAtLsn": None if stop is None or stop.lsn is None else str(stop.lsn),
        "folder": str(folder),
        "sequence": entries,
        "restoreStatements": statements,
    }
