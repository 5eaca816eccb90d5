"""RESTORE for the simulated engine: apply a full, a differential and logs, then recover.

Called by ``SimulatedEngine.restore``.  Follows SQL Server: the first step must be a
full; a differential must belong to the restored full (error 3136); a log must continue
what is restored so far (4305 "too recent" / 4326 "too early"); STOPAT (time) and
STOPATMARK (LSN) apply exactly the transactions committed at or before the stop point on
every log; a stop point before a base's end or after the last backup's end is refused.
The target is RESTORING from the first write until recovery and ONLINE only after it,
so any failure leaves it RESTORING.  An existing target needs ``replace`` (checked before
anything is read).  The restored database gets a new GUID, no differential base and no
log chain (its next backup must be a full, as auto-heal expects after an overwrite).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from typing import Any

from sqlharbor.domain.backupset import BackupRecord, BackupType, DatabaseState
from sqlharbor.errors import EngineError, ErrorCode
from sqlharbor_agent.engines.base import ProgressCallback, RestoreOptions, RestoreStep, StopAt
from sqlharbor_agent.engines.simulated import tables
from sqlharbor_agent.engines.simulated.store import Store
from sqlharbor_agent.engines.simulated.stream import (
    OP_PUT,
    DeleteFrame,
    Frame,
    OpFrame,
    StreamReader,
)
from sqlharbor_agent.engines.simulated.tables import Clock, to_us

_BATCH = 2000


class RestoreRun:
    """One RESTORE sequence into one target database."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        options: RestoreOptions,
        stop: StopAt | None,
        progress: ProgressCallback | None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._target = options.target_database
        self._replace = options.replace
        self._stop_us = None if stop is None or stop.time is None else to_us(stop.time)
        self._stop_lsn = None if stop is None else stop.lsn
        self._progress = progress
        self._guid = str(uuid.uuid4()).upper()
        self._full: BackupRecord | None = None
        self._position = 0  # the restored state holds every LSN below this
        self._end_us = 0  # ... and every commit at or before this time
        self._stop_reached = False
        self._steps = 0
        self._logs_applied = 0

    def run(self, steps: Iterable[RestoreStep]) -> None:
        with self._store.read() as con:
            self._check_target(con)
        for step in steps:
            self._apply(step)
            self._steps += 1
        if self._steps == 0:
            raise _sequence("RESTORE needs at least one backup (a full).")
        self._check_stop_reachable()
        self._recover()

    # -- checks -----------------------------------------------------------------------

    def _check_target(self, con: sqlite3.Connection) -> None:
        existing = tables.find_database(con, self._target)
        if existing is None or self._replace or existing.state is DatabaseState.RESTORING:
            return
        raise EngineError(
            f"Database '{self._target}' already exists; RESTORE refuses to overwrite it "
            "without REPLACE (SQL Server error 3159).",
            code=ErrorCode.TARGET_EXISTS,
            remediation="Restore under a new name, or ask for an overwrite (replace).",
        )

    def _check_order(self, record: BackupRecord) -> None:
        kind = record.backup_type
        if self._full is None and kind is not BackupType.FULL:
            raise _sequence(
                f"The {kind.value.lower()} backup cannot be restored because no files are "
                "ready to roll forward: the first backup restored must be a full (3117)."
            )
        if self._full is not None and kind is BackupType.FULL:
            raise _sequence("A full backup can only be the first backup of a restore sequence.")
        if self._stop_reached:
            raise _sequence(
                "The stop point was already reached by an earlier log backup; no further "
                "backups can be applied (4319)."
            )
        if kind is BackupType.DIFFERENTIAL:
            self._check_differential(record)
        if kind is BackupType.LOG:
            self._check_log(record)
        if kind is not BackupType.LOG:
            self._check_stop_not_before(record)

    def _check_differential(self, record: BackupRecord) -> None:
        assert self._full is not None
        if record.differential_base_lsn != self._full.checkpoint_lsn:
            raise _sequence(
                "This differential backup cannot be restored because the database has not "
                f"been restored to the correct earlier state: it is based on the full with "
                f"checkpoint LSN {record.differential_base_lsn}, the restored full has "
                f"{self._full.checkpoint_lsn} (3136)."
            )
        if self._position > record.last_lsn:
            raise _sequence(
                f"The differential ends at LSN {record.last_lsn}, before what is already "
                f"restored (LSN {self._position})."
            )

    def _check_log(self, record: BackupRecord) -> None:
        if self._position < record.first_lsn:
            raise _sequence(
                f"The log in this backup set begins at LSN {record.first_lsn}, which is too "
                f"recent to apply to the database. An earlier log backup that includes LSN "
                f"{self._position} can be restored (4305)."
            )
        if self._position > record.last_lsn or (
            self._position == record.last_lsn and self._logs_applied
        ):
            raise _sequence(
                f"The log in this backup set terminates at LSN {record.last_lsn}, which is too "
                f"early to apply to the database. A more recent log backup that includes LSN "
                f"{self._position} can be restored (4326)."
            )

    def _check_stop_not_before(self, record: BackupRecord) -> None:
        too_early = (self._stop_us is not None and self._stop_us < to_us(record.finish)) or (
            self._stop_lsn is not None and self._stop_lsn < record.last_lsn - 1
        )
        if too_early:
            raise EngineError(
                f"The stop point is too early: the {record.backup_type.value.lower()} backup "
                f"already reaches {record.finish.isoformat()} (LSN {record.last_lsn - 1}) "
                "(4338).",
                code=ErrorCode.RESTORE_STOP_POINT_OUTSIDE_BACKUPS,
                remediation="Choose a base that finished before the stop point.",
            )

    def _check_stop_reachable(self) -> None:
        if self._stop_reached:
            return
        beyond = (self._stop_us is not None and self._stop_us > self._end_us) or (
            self._stop_lsn is not None and self._stop_lsn > self._position - 1
        )
        if beyond:
            raise EngineError(
                "The stop point lies after the end of the last backup restored; the database "
                "is left RESTORING so that more log backups can be applied.",
                code=ErrorCode.RESTORE_STOP_POINT_OUTSIDE_BACKUPS,
                remediation="Apply the log backups that reach the stop point, or choose "
                "an earlier one.",
            )

    # -- applying ---------------------------------------------------------------------

    def _apply(self, step: RestoreStep) -> None:
        record = step.record
        self._check_order(record)
        reader = StreamReader(step.source, self._progress)
        _match(reader.header(), record)
        if record.backup_type is BackupType.FULL:
            self._create_target(record)
            self._full = record
        frames = reader.frames()
        if record.backup_type is BackupType.LOG:
            self._apply_log(frames, record)
            self._logs_applied += 1
        else:
            self._apply_frames(frames, record)
        assert reader.trailer is not None
        _match_trailer(reader.trailer, record)
        self._position = record.last_lsn
        if not self._stop_reached:
            self._end_us = to_us(record.finish)

    def _create_target(self, record: BackupRecord) -> None:
        with self._store.write() as con:
            self._check_target(con)
            existing = tables.find_database(con, self._target)
            if existing is not None:
                con.execute("DELETE FROM rows WHERE guid = ?", (existing.guid,))
                con.execute("DELETE FROM journal WHERE guid = ?", (existing.guid,))
                con.execute("DELETE FROM databases WHERE name = ?", (self._target,))
            con.execute(
                "INSERT INTO databases (name, guid, recovery_model, state, next_lsn, "
                "last_event_us) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    self._target,
                    self._guid,
                    record.recovery_model.value,
                    DatabaseState.RESTORING.value,
                    record.last_lsn,
                    to_us(self._clock()),
                ),
            )

    def _apply_frames(self, frames: Iterable[Frame], record: BackupRecord) -> None:
        """A full or differential: rows and deletions, then the log written during it."""
        batch: list[Frame] = []
        for frame in frames:
            batch.append(frame)
            if len(batch) >= _BATCH:
                self._write(batch)
                batch = []
        self._write(batch)

    def _apply_log(self, frames: Iterable[Frame], record: BackupRecord) -> None:
        batch: list[Frame] = []
        for frame in frames:
            if not isinstance(frame, OpFrame):
                raise _sequence("A log backup stream holds a data frame.")
            if frame.lsn < self._position or self._stop_reached:
                continue
            if self._past_stop(frame):
                self._stop_reached = True
                continue
            batch.append(frame)
            self._end_us = max(self._end_us, frame.commit_us)
            if len(batch) >= _BATCH:
                self._write(batch)
                batch = []
        self._write(batch)
        if not self._stop_reached:
            self._stop_reached = (
                self._stop_us is not None and self._stop_us < to_us(record.finish)
            ) or (self._stop_lsn is not None and self._stop_lsn < record.last_lsn - 1)
        if self._stop_reached and self._stop_us is not None:
            self._end_us = self._stop_us

    def _past_stop(self, frame: OpFrame) -> bool:
        if self._stop_us is not None:
            return frame.commit_us > self._stop_us
        return self._stop_lsn is not None and frame.lsn > self._stop_lsn

    def _write(self, batch: list[Frame]) -> None:
        """Apply frames in order, in one short write transaction."""
        if not batch:
            return
        with self._store.write() as con:
            for frame in batch:
                if isinstance(frame, DeleteFrame) or (
                    isinstance(frame, OpFrame) and frame.op != OP_PUT
                ):
                    con.execute(_DELETE, (self._guid, frame.key))
                else:
                    con.execute(_UPSERT, (self._guid, frame.key, frame.payload))

    def _recover(self) -> None:
        with self._store.write() as con:
            db = tables.find_database(con, self._target)
            if db is None or db.guid != self._guid:
                raise _sequence(f"Database '{self._target}' changed during the restore.")
            now_us = max(to_us(self._clock()), self._end_us + 1)
            con.execute(
                "INSERT INTO journal (guid, lsn, seq, commit_us, op, k, payload) "
                "SELECT guid, ?, k, ?, ?, k, payload FROM rows WHERE guid = ?",
                (self._position, now_us, OP_PUT, self._guid),
            )
            con.execute(
                "UPDATE databases SET state = ?, next_lsn = ?, last_event_us = ? WHERE guid = ?",
                (DatabaseState.ONLINE.value, self._position + 1, now_us, self._guid),
            )


_UPSERT = (
    "INSERT INTO rows (guid, k, payload) VALUES (?, ?, ?) "
    "ON CONFLICT (guid, k) DO UPDATE SET payload = excluded.payload"
)
_DELETE = "DELETE FROM rows WHERE guid = ? AND k = ?"


def _match(header: dict[str, Any], record: BackupRecord) -> None:
    expected = {
        "database_guid": record.database_guid,
        "backup_type": record.backup_type.value,
        "is_copy_only": record.is_copy_only,
        "first_lsn": record.first_lsn,
        "checkpoint_lsn": record.checkpoint_lsn,
        "differential_base_lsn": record.differential_base_lsn,
    }
    _compare(expected, header)


def _match_trailer(trailer: dict[str, Any], record: BackupRecord) -> None:
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


def _sequence(message: str) -> EngineError:
    return EngineError(
        message,
        code=ErrorCode.RESTORE_SEQUENCE_INVALID,
        remediation="Restore a full first, then its latest differential, then the logs in order.",
    )
