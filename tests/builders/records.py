"""``BackupRecord`` / ``RecoveryPoint`` builders and synthetic backup histories (no engine).

``backup_record`` builds one record: every field has a keyword (named as in
``BackupRecord``, but ``name``, ``guid`` and ``copy_only``), so a test states only what it
cares about.  ``History`` numbers a chain the way SQL Server does (each event takes LSNs
in order); ``catalog_history`` lays out a long, regular history for catalog tests and
benchmarks (a log every ``step``, bases where ``base_at`` says).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlharbor.domain.backupset import (
    BackupMedia,
    BackupRecord,
    BackupType,
    RecoveryModel,
    RecoveryPoint,
)
from sqlharbor.vault.layout import new_recovery_point_id

T0 = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


class _Derived(enum.Enum):
    """Marks a default that depends on other arguments (``None`` is a real value)."""

    VALUE = "derived"


DERIVED = _Derived.VALUE


def backup_record(
    backup_type: BackupType = BackupType.FULL,
    *,
    name: str = "Sales",
    guid: str = GUID,
    copy_only: bool = False,
    first_lsn: int = 1000,
    last_lsn: int = 2000,
    checkpoint_lsn: int | None = None,
    database_backup_lsn: int | None = None,
    differential_base_lsn: int | _Derived | None = DERIVED,
    start: datetime = T0,
    duration: timedelta = timedelta(seconds=30),
    finish: datetime | None = None,
    recovery_model: RecoveryModel = RecoveryModel.FULL,
    size_bytes: int = 12345,
    fork: str | tuple[str, str] = "",
    fork_point_lsn: int | None = None,
    server_name: str = "",
    media: BackupMedia | None = None,
    backup_set_id: str = "",
    backup_set_uuid: str = "",
    differential_base_guid: str = "",
) -> BackupRecord:
    """One backup set.  Derived defaults: ``checkpoint_lsn`` = ``first_lsn + 10``,
    ``database_backup_lsn`` = ``first_lsn``, ``differential_base_lsn`` = ``None`` for a
    full and ``first_lsn - 500`` otherwise, ``finish`` = ``start + duration``.  ``fork``
    is the recovery fork, or (first, last) for a log that spans a fork point."""
    first_fork, last_fork = (fork, fork) if isinstance(fork, str) else fork
    if differential_base_lsn is DERIVED:
        differential_base_lsn = None if backup_type is BackupType.FULL else first_lsn - 500
    return BackupRecord(
        database_name=name,
        database_guid=guid,
        backup_type=backup_type,
        is_copy_only=copy_only,
        first_lsn=first_lsn,
        last_lsn=last_lsn,
        checkpoint_lsn=first_lsn + 10 if checkpoint_lsn is None else checkpoint_lsn,
        database_backup_lsn=first_lsn if database_backup_lsn is None else database_backup_lsn,
        differential_base_lsn=differential_base_lsn,
        start=start,
        finish=start + duration if finish is None else finish,
        recovery_model=recovery_model,
        size_bytes=size_bytes,
        first_recovery_fork_guid=first_fork,
        last_recovery_fork_guid=last_fork,
        fork_point_lsn=fork_point_lsn,
        server_name=server_name,
        media=media,
        backup_set_id=backup_set_id,
        backup_set_uuid=backup_set_uuid,
        differential_base_guid=differential_base_guid,
    )


# -- a chain numbered the way SQL Server numbers it ----------------------------------------

HISTORY_START = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class History:
    """Builds records the way SQL Server numbers them: each event takes LSNs in order."""

    guid: str = "GUID-A"
    now: datetime = HISTORY_START
    lsn: int = 1_000
    chain: int | None = None  # last_log_backup_lsn
    diff_base: int | None = None
    points: list[RecoveryPoint] = field(default_factory=list)

    def work(self, seconds: float = 60.0, transactions: int = 5) -> None:
        self.now += timedelta(seconds=seconds)
        self.lsn += transactions

    def _add(self, record: BackupRecord) -> RecoveryPoint:
        point = RecoveryPoint(f"{self.guid}-{len(self.points):07d}", record)
        self.points.append(point)
        return point

    def _record(
        self,
        kind: BackupType,
        first: int,
        ckpt: int,
        *,
        size: int,
        copy_only: bool = False,
        differential_base_lsn: int | None = None,
    ) -> BackupRecord:
        self.now += timedelta(seconds=1)
        record = backup_record(
            kind,
            name="db",
            guid=self.guid,
            copy_only=copy_only,
            first_lsn=first,
            last_lsn=self.lsn + 1,
            checkpoint_lsn=ckpt,
            database_backup_lsn=0,
            differential_base_lsn=differential_base_lsn,
            start=self.now,
            finish=self.now,
            size_bytes=size,
        )
        self.lsn += 1
        return record

    def full(self, copy_only: bool = False, size: int = 10_000) -> RecoveryPoint:
        ckpt = self.lsn
        record = self._record(BackupType.FULL, ckpt, ckpt, copy_only=copy_only, size=size)
        if not copy_only:
            self.diff_base = ckpt
            if self.chain is None:
                self.chain = ckpt
        return self._add(record)

    def diff(self, size: int = 1_000) -> RecoveryPoint:
        ckpt = self.lsn
        record = self._record(
            BackupType.DIFFERENTIAL, ckpt, ckpt, differential_base_lsn=self.diff_base, size=size
        )
        return self._add(record)

    def log(self, copy_only: bool = False, size: int = 100) -> RecoveryPoint:
        assert self.chain is not None
        record = self._record(BackupType.LOG, self.chain, self.lsn, copy_only=copy_only, size=size)
        if not copy_only:
            self.chain = record.last_lsn
        return self._add(record)

    def foreign_log(self) -> None:
        """Another tool's log backup: truncates, never reaches our vault."""
        assert self.chain is not None
        self.now += timedelta(seconds=1)
        self.lsn += 1
        self.chain = self.lsn


# -- long, regular histories for the catalog -----------------------------------------------

#: where ``catalog_history`` starts numbering: SQL Server's numeric(25,0) territory
CATALOG_FIRST_LSN = 1_000_000_000_000_000_000_000
LOG_LSNS = 100


def catalog_point(
    kind: BackupType, start: datetime, first: int, last: int, base: int, *, name: str, guid: str
) -> RecoveryPoint:
    """A point as the catalog holds it: a base takes 20 minutes, a log 3 seconds, 1 MiB."""
    duration = timedelta(minutes=20) if kind is not BackupType.LOG else timedelta(seconds=3)
    record = backup_record(
        kind,
        name=name,
        guid=guid,
        first_lsn=first,
        last_lsn=last,
        checkpoint_lsn=first + 5,
        database_backup_lsn=base,
        differential_base_lsn=None if kind is BackupType.FULL else base + 5,
        start=start,
        duration=duration,
        size_bytes=1 << 20,
    )
    return RecoveryPoint(new_recovery_point_id(kind, start), record)


def catalog_history(
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    base_at: Callable[[datetime], BackupType | None],
    base_lsns: int,
    name: str,
    guid: str,
) -> list[RecoveryPoint]:
    """A log every ``step`` from ``start`` until ``end`` (each ``LOG_LSNS`` long); before
    the log of a moment, the base ``base_at(moment)`` names (``None``: no base), spanning
    ``base_lsns`` from the log's first LSN."""
    points: list[RecoveryPoint] = []
    lsn = CATALOG_FIRST_LSN
    full_lsn = lsn
    moment = start
    while moment < end:
        kind = base_at(moment)
        if kind is not None:
            if kind is BackupType.FULL:
                full_lsn = lsn
            points.append(
                catalog_point(kind, moment, lsn, lsn + base_lsns, full_lsn, name=name, guid=guid)
            )
        points.append(
            catalog_point(
                BackupType.LOG, moment, lsn, lsn + LOG_LSNS, full_lsn, name=name, guid=guid
            )
        )
        lsn += LOG_LSNS
        moment += step
    return points
