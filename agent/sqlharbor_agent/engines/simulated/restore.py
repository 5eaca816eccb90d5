"""RESTORE for the simulated engine: apply a full, a differential and logs, then recover.

Called by ``SimulatedEngine.restore``.  Follows SQL Server: the first step must be a
full; a differential must belong to the restored full (error 3136); a log must continue
what is restored so far (4305 "too recent" / 4326 "too early"); STOPAT (time) and
STOPATMARK (LSN) apply exactly the transactions committed at or before the stop point on
every log; a stop point before a base's end or after the last backup's end is refused.
An empty log backup continues the sequence where it starts and restores nothing; a log
on another recovery path (another fork at the restored position) is refused.  The
target is RESTORING from the first write until recovery and ONLINE only after it, so any
failure leaves it RESTORING.  An existing target needs ``replace`` (checked before
anything is read).

Two outcomes, as in SQL Server.  Into a database that does not exist (or holds another
database): a new GUID and a new root fork, no differential base and no log chain (its
next backup must be a full, as auto-heal expects after an overwrite).  Over the database
the backups came from (same GUID): in place, the GUID is kept and a new recovery fork
starts at the restored position + 1; the restored full is the differential base and
the log chain continues, its first log backup spanning the fork point.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable

from sqlharbor.domain.backupset import BackupRecord, BackupType, DatabaseState, RecoveryModel
from sqlharbor_agent.engines.base import ProgressCallback, RestoreOptions, RestoreStep, StopAt
from sqlharbor_agent.engines.simulated import forks, tables
from sqlharbor_agent.engines.simulated.restore_rules import (
    check_differential,
    check_differential_base,
    check_log,
    match_header,
    match_trailer,
    sequence,
    stop_beyond,
    stop_too_early,
    target_exists,
)
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
        self._in_place = False  # over the database the backups came from (same GUID)
        self._full: BackupRecord | None = None
        self._full_set_id: str | None = None  # the full's backup set id, from its stream
        self._position = 0  # the restored state holds every LSN below this
        self._data_fork = ""  # ... on this recovery fork
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
            raise sequence("RESTORE needs at least one backup (a full).")
        self._check_stop_reachable()
        self._recover()

    # -- checks -----------------------------------------------------------------------

    def _check_target(self, con: sqlite3.Connection) -> None:
        existing = tables.find_database(con, self._target)
        if existing is None or self._replace or existing.state is DatabaseState.RESTORING:
            return
        raise target_exists(self._target)

    def _check_order(self, record: BackupRecord) -> None:
        kind = record.backup_type
        if self._full is None and kind is not BackupType.FULL:
            raise sequence(
                f"The {kind.value.lower()} backup cannot be restored because no files are "
                "ready to roll forward: the first backup restored must be a full (3117)."
            )
        if self._full is not None and kind is BackupType.FULL:
            raise sequence("A full backup can only be the first backup of a restore sequence.")
        if self._stop_reached:
            raise sequence(
                "The stop point was already reached by an earlier log backup; no further "
                "backups can be applied (4319)."
            )
        if kind is BackupType.DIFFERENTIAL:
            assert self._full is not None
            check_differential(self._full, self._position, record)
        if kind is BackupType.LOG:
            check_log(self._position, self._logs_applied, self._data_fork, record)
        if kind is not BackupType.LOG:
            self._check_stop_not_before(record)

    def _check_stop_not_before(self, record: BackupRecord) -> None:
        too_early = (self._stop_us is not None and self._stop_us < to_us(record.finish)) or (
            self._stop_lsn is not None and self._stop_lsn < record.last_lsn - 1
        )
        if too_early:
            raise stop_too_early(record)

    def _check_stop_reachable(self) -> None:
        if self._stop_reached:
            return
        beyond = (self._stop_us is not None and self._stop_us > self._end_us) or (
            self._stop_lsn is not None and self._stop_lsn > self._position - 1
        )
        if beyond:
            raise stop_beyond()

    # -- applying ---------------------------------------------------------------------

    def _apply(self, step: RestoreStep) -> None:
        record = step.record
        self._check_order(record)
        reader = StreamReader(step.source, self._progress)
        header = reader.header()
        match_header(header, record)
        if record.backup_type is BackupType.DIFFERENTIAL:
            check_differential_base(self._full_set_id, header)
        if record.backup_type is BackupType.FULL:
            self._create_target(record)
            self._full, self._full_set_id = record, header.get("backup_set_id")
        frames = reader.frames()
        position = record.last_lsn
        if record.backup_type is BackupType.LOG:
            position = self._apply_log(frames, record)
            self._logs_applied += 1
        else:
            self._apply_frames(frames, record)
        assert reader.trailer is not None
        match_trailer(reader.trailer, record)
        self._position = max(self._position, position)
        self._data_fork = record.fork_at(self._position - 1)
        if not self._stop_reached:
            self._end_us = to_us(record.finish)

    def _create_target(self, record: BackupRecord) -> None:
        with self._store.write() as con:
            self._check_target(con)
            existing = tables.find_database(con, self._target)
            if existing is not None and existing.guid == record.database_guid:
                # in place: the database keeps its GUID and its history (journal, forks)
                self._guid, self._in_place = existing.guid, True
                con.execute("DELETE FROM rows WHERE guid = ?", (existing.guid,))
                con.execute(
                    "UPDATE databases SET state = ?, recovery_model = ? WHERE guid = ?",
                    (DatabaseState.RESTORING.value, record.recovery_model.value, existing.guid),
                )
                return
            if existing is not None:
                con.execute("DELETE FROM rows WHERE guid = ?", (existing.guid,))
                forks.delete_all(con, existing.guid)
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

    def _apply_log(self, frames: Iterable[Frame], record: BackupRecord) -> int:
        """Apply the log up to the stop point; the position reached (exclusive)."""
        batch: list[Frame] = []
        first_skipped: int | None = None
        for frame in frames:
            if not isinstance(frame, OpFrame):
                raise sequence("A log backup stream holds a data frame.")
            if frame.lsn < self._position or self._stop_reached:
                continue
            if self._past_stop(frame):
                self._stop_reached, first_skipped = True, frame.lsn
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
        if not self._stop_reached:
            return record.last_lsn
        if self._stop_us is not None:
            self._end_us = self._stop_us
        if self._stop_lsn is not None:
            return min(record.last_lsn, self._stop_lsn + 1)
        return record.last_lsn if first_skipped is None else first_skipped

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
                raise sequence(f"Database '{self._target}' changed during the restore.")
            now_us = max(to_us(self._clock()), self._end_us + 1, db.last_event_us + 1)
            # recovery itself is log activity: it uses the LSN at the restored position
            position, columns = self._position, self._in_place_state(db)
            if not self._in_place:
                fork = forks.create(con, self._guid, now_us)
                con.execute(
                    "INSERT INTO journal (guid, fork, lsn, seq, commit_us, op, k, payload) "
                    "SELECT guid, ?, ?, k, ?, ?, k, payload FROM rows WHERE guid = ?",
                    (fork, position, now_us, OP_PUT, self._guid),
                )
            else:
                fork = forks.create(
                    con,
                    self._guid,
                    now_us,
                    parent=self._data_fork or db.fork_guid,
                    fork_point_lsn=position,
                )
            assignments = "".join(f", {name} = ?" for name in columns)
            con.execute(
                "UPDATE databases SET state = ?, next_lsn = ?, last_event_us = ?, fork_guid = ?"
                f"{assignments} WHERE guid = ?",
                (
                    DatabaseState.ONLINE.value,
                    position + 1,
                    now_us,
                    fork,
                    *columns.values(),
                    self._guid,
                ),
            )

    def _in_place_state(self, db: tables.DatabaseRow) -> dict[str, int | str | None]:
        """After an in-place restore the restored full is the differential base and the log
        chain continues from the restored position (the fork point); otherwise neither."""
        full = self._full
        if not self._in_place or full is None or not full.is_differential_base:
            base, base_guid = None, None
        else:
            base, base_guid = full.checkpoint_lsn, self._full_set_id
        chain = None
        if self._in_place and db.recovery_model is not RecoveryModel.SIMPLE:
            chain = self._position
        return {
            "diff_base_lsn": base,
            "full_checkpoint_lsn": base,
            "diff_base_guid": base_guid,
            "last_log_backup_lsn": chain,
        }


_UPSERT = (
    "INSERT INTO rows (guid, k, payload) VALUES (?, ?, ?) "
    "ON CONFLICT (guid, k) DO UPDATE SET payload = excluded.payload"
)
_DELETE = "DELETE FROM rows WHERE guid = ? AND k = ?"
