"""Random backup histories shaped like real ``msdb.dbo.backupset`` histories (no engine).

``RealHistory`` numbers LSNs the way SQL Server does and knows the shapes real servers
produce that the project's own engine long did not: empty log backups of an idle
database (``first_lsn == last_lsn``, several in a row sharing their LSN with the next
real log), log backups taken while a full or differential runs, copy-only fulls used as
restore bases, another tool's log backup (a gap), and in-place restores that start a new
recovery fork (the next log spans the fork point; a differential may follow the restored
full across the fork).  Every backup set has a ``backup_set_uuid`` and a differential
names its base's (``differential_base_guid``), as msdb does; ``repeat_on_a_new_fork``
makes two fulls of different forks share a checkpoint LSN, where only those uuids tell
which full a differential is based on.  ``random_history`` drives it from a seed for
property tests.

``accepts`` is the restore-sequence check SQL Server applies (3117 no full first, 3136
wrong differential base, by backup set uuid when known, 4305 too recent, 4326 too early,
recovery-path mismatch), so a test can say "SQL Server would accept this plan" without a
server.
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlharbor.domain.backupset import BackupRecord, BackupType, RecoveryPoint
from tests.builders.records import backup_record

START = datetime(2026, 11, 20, tzinfo=UTC)


def _fork(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128))).upper()


def _set_uuid(number: int) -> str:
    """A backup set's uuid (drawn from its number, not from the history's random stream)."""
    return str(uuid.UUID(int=(0x5E7 << 116) | number))


@dataclass
class RealHistory:
    """One database's backups, taken in time order; every method moves time forward."""

    rng: random.Random
    guid: str = "5D3B2A10-0000-4000-8000-000000000001"
    now: datetime = START
    lsn: int = 35_000_000_000_000_100_001  # the next LSN the database will write
    fork: str = ""
    last_log_backup: int | None = None  # where the next log backup starts
    diff_base: int | None = None  # checkpoint LSN of the differential base
    diff_base_uuid: str = ""  # its backup_set_uuid
    span: tuple[str, int | None] | None = None  # (restored fork, fork point) after a restore
    points: list[RecoveryPoint] = field(default_factory=list)
    #: fulls by checkpoint LSN, to restore one in place
    fulls: list[BackupRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fork = self.fork or _fork(self.rng)

    # -- the database ---------------------------------------------------------------

    def work(self, transactions: int = 5, seconds: float = 30.0) -> None:
        self.now += timedelta(seconds=seconds)
        self.lsn += transactions

    def idle(self, seconds: float = 30.0) -> None:
        self.now += timedelta(seconds=seconds)

    # -- backups --------------------------------------------------------------------

    def _add(self, record: BackupRecord) -> RecoveryPoint:
        point = RecoveryPoint(f"p{len(self.points):05d}", record)
        self.points.append(point)
        return point

    def _data(self, kind: BackupType, *, copy_only: bool = False) -> BackupRecord:
        """A full or differential: checkpoint, copy the data, end after the log it needed."""
        first = self.lsn
        checkpoint = self.lsn + 1
        self.lsn += 3
        start, self.now = self.now, self.now + timedelta(seconds=20)
        return backup_record(
            kind,
            name="db",
            guid=self.guid,
            copy_only=copy_only,
            first_lsn=first,
            last_lsn=self.lsn,
            checkpoint_lsn=checkpoint,
            database_backup_lsn=self.diff_base or 0,
            differential_base_lsn=self.diff_base if kind is BackupType.DIFFERENTIAL else None,
            start=start,
            finish=self.now,
            fork=self.fork,
            size_bytes=10_000 if kind is BackupType.FULL else 2_000,
            backup_set_id=f"set-{len(self.points)}",
            backup_set_uuid=_set_uuid(len(self.points)),
            differential_base_guid=(self.diff_base_uuid if kind is BackupType.DIFFERENTIAL else ""),
        )

    def full(self, *, copy_only: bool = False) -> RecoveryPoint:
        record = self._data(BackupType.FULL, copy_only=copy_only)
        if not copy_only:
            self.diff_base, self.diff_base_uuid = record.checkpoint_lsn, record.backup_set_uuid
            self.fulls.append(record)
            if self.last_log_backup is None:
                self.last_log_backup = record.first_lsn
        return self._add(record)

    def diff(self) -> RecoveryPoint | None:
        if self.diff_base is None:
            return None
        return self._add(self._data(BackupType.DIFFERENTIAL))

    def log(self, *, copy_only: bool = False) -> RecoveryPoint | None:
        """A log backup (empty when nothing happened since the previous one)."""
        if self.last_log_backup is None:
            return None
        first, last = self.last_log_backup, self.lsn
        first_fork, fork_point = self.span or (self.fork, None)
        start, self.now = self.now, self.now + timedelta(seconds=2)
        record = backup_record(
            BackupType.LOG,
            name="db",
            guid=self.guid,
            copy_only=copy_only,
            first_lsn=first,
            last_lsn=last,
            checkpoint_lsn=first,
            database_backup_lsn=self.diff_base or 0,
            differential_base_lsn=None,
            start=start,
            finish=self.now,
            fork=(first_fork, self.fork),
            fork_point_lsn=fork_point,
            size_bytes=100 + (last - first),
            backup_set_id=f"set-{len(self.points)}",
            backup_set_uuid=_set_uuid(len(self.points)),
        )
        if not copy_only:
            self.last_log_backup = last
            self.span = None
        return self._add(record)

    def full_with_log_during(self) -> None:
        """A full during which a log backup runs: the log ends after the full's first LSN
        and before its last, and finishes first."""
        if self.last_log_backup is None:
            self.full()
            return
        first, checkpoint = self.lsn, self.lsn + 1
        start = self.now
        self.lsn += 2
        self.now += timedelta(seconds=5)
        self.log()
        self.lsn += 1
        self.now += timedelta(seconds=15)
        record = backup_record(
            BackupType.FULL,
            name="db",
            guid=self.guid,
            first_lsn=first,
            last_lsn=self.lsn,
            checkpoint_lsn=checkpoint,
            database_backup_lsn=self.diff_base or 0,
            differential_base_lsn=None,
            start=start,
            finish=self.now,
            fork=self.fork,
            size_bytes=10_000,
            backup_set_id=f"set-{len(self.points)}",
            backup_set_uuid=_set_uuid(len(self.points)),
        )
        self.diff_base, self.diff_base_uuid = checkpoint, record.backup_set_uuid
        self.fulls.append(record)
        self._add(record)

    def foreign_log(self) -> None:
        """Another tool backs up the log: it never reaches the vault, the chain has a gap."""
        if self.last_log_backup is not None and self.lsn > self.last_log_backup:
            self.last_log_backup = self.lsn
            self.idle(5)

    def restore_in_place(self, restored: BackupRecord | None = None) -> None:
        """RESTORE ... WITH REPLACE of one of our fulls over the database, then recovery:
        same GUID, a new fork from the restored position, the restored full becomes the
        differential base and the next log backup spans the fork point."""
        if not self.fulls:
            return
        if restored is None:
            restored = self.rng.choice(self.fulls)
        self.fork = _fork(self.rng)
        fork_point = restored.last_lsn
        self.lsn = fork_point
        self.diff_base, self.diff_base_uuid = restored.checkpoint_lsn, restored.backup_set_uuid
        self.last_log_backup = fork_point
        self.span = (restored.recovery_fork, fork_point)
        self.idle(60)

    def repeat_on_a_new_fork(self) -> None:
        """Restore a full F in place and do, on the new fork, the work the old fork did
        until its next full G, then a full G': G and G' share a checkpoint LSN.  A
        differential of G' follows (same fork as its base); then G is restored in place
        and a differential of G follows, on a third fork, after G' finished: only its
        ``differential_base_guid`` names G."""
        pairs = [
            (f, g)
            for f, g in itertools.combinations(self.fulls, 2)
            if g.recovery_fork == f.recovery_fork and g.checkpoint_lsn > f.last_lsn
        ]
        if not pairs:
            return
        first, later = self.rng.choice(pairs)
        self.restore_in_place(first)
        self.work(later.checkpoint_lsn - first.last_lsn - 1)
        self.full()
        self.work()
        self.diff()
        self.restore_in_place(later)
        self.work()
        self.diff()


def random_history(seed: int, events: int = 60) -> list[RecoveryPoint]:
    """A history with every real shape, drawn from ``seed``."""
    rng = random.Random(seed)
    h = RealHistory(rng)
    h.full()
    for _ in range(events):
        roll = rng.random()
        if roll < 0.30:
            h.work(rng.randint(1, 20))
            h.log()
        elif roll < 0.50:
            for _ in range(rng.randint(1, 5)):  # a quiet spell: a run of empty logs
                h.idle()
                h.log()
        elif roll < 0.58:
            h.work(rng.randint(1, 20))
            h.diff()
        elif roll < 0.64:
            h.work(rng.randint(1, 20))
            h.full_with_log_during()
        elif roll < 0.70:
            h.work()
            h.full(copy_only=True)
        elif roll < 0.74:
            h.work()
            h.log(copy_only=True)
        elif roll < 0.78:
            h.work()
            h.foreign_log()
        elif roll < 0.82:
            h.restore_in_place()
        elif roll < 0.86:
            h.work()
            h.full()
        elif roll < 0.89:
            h.repeat_on_a_new_fork()
        else:
            h.work(rng.randint(1, 50), 60)
    return h.points


# -- what SQL Server accepts -------------------------------------------------------------


def accepts(steps: list[BackupRecord]) -> str | None:
    """Why SQL Server would refuse this RESTORE sequence (None: it accepts it).  Every log
    must move the database forward from where it is, on the fork it is on."""
    if not steps or steps[0].backup_type is not BackupType.FULL:
        return "3117: the first backup restored must be a full"
    full = steps[0]
    position, fork = full.last_lsn, full.recovery_fork
    for step in steps[1:]:
        if step.backup_type is BackupType.FULL:
            return "a full can only start a sequence"
        if step.backup_type is BackupType.DIFFERENTIAL:
            if step.differential_base_lsn != full.checkpoint_lsn or step.last_lsn < position:
                return "3136: differential of another base"
            named, uuid_ = step.differential_base_guid, full.backup_set_uuid
            if named and uuid_ and named != uuid_:
                return "3136: differential of another backup set"
            position, fork = step.last_lsn, step.recovery_fork
            continue
        if step.first_lsn > position:
            return f"4305: log starts at {step.first_lsn}, database is at {position}"
        if step.last_lsn <= position:
            return f"4326: log ends at {step.last_lsn}, database is at {position}"
        if fork and step.fork_at(position) not in (fork, ""):
            return "the log is on a recovery path inconsistent with the database"
        position, fork = step.last_lsn, step.recovery_fork
    return None
