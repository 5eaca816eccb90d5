"""Synthetic backup histories (no engine) for planner and chain tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlharbor.backupset import BackupRecord, BackupType, RecoveryModel, RecoveryPoint

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class History:
    """Builds records the way SQL Server numbers them: each event takes LSNs in order."""

    guid: str = "GUID-A"
    now: datetime = T0
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

    def _record(self, kind: BackupType, first: int, ckpt: int, **kw: object) -> BackupRecord:
        self.now += timedelta(seconds=1)
        record = BackupRecord(
            database_name="db",
            database_guid=self.guid,
            backup_type=kind,
            is_copy_only=False,
            first_lsn=first,
            last_lsn=self.lsn + 1,
            checkpoint_lsn=ckpt,
            database_backup_lsn=0,
            differential_base_lsn=None,
            start=self.now,
            finish=self.now,
            recovery_model=RecoveryModel.FULL,
            size_bytes=100,
        )
        self.lsn += 1
        return replace(record, **kw)  # type: ignore[arg-type]

    def full(self, copy_only: bool = False, size: int = 10_000) -> RecoveryPoint:
        ckpt = self.lsn
        record = self._record(BackupType.FULL, ckpt, ckpt, is_copy_only=copy_only, size_bytes=size)
        if not copy_only:
            self.diff_base = ckpt
            if self.chain is None:
                self.chain = ckpt
        return self._add(record)

    def diff(self, size: int = 1_000) -> RecoveryPoint:
        ckpt = self.lsn
        record = self._record(
            BackupType.DIFFERENTIAL,
            ckpt,
            ckpt,
            differential_base_lsn=self.diff_base,
            size_bytes=size,
        )
        return self._add(record)

    def log(self, copy_only: bool = False, size: int = 100) -> RecoveryPoint:
        assert self.chain is not None
        record = self._record(
            BackupType.LOG, self.chain, self.lsn, is_copy_only=copy_only, size_bytes=size
        )
        if not copy_only:
            self.chain = record.last_lsn
        return self._add(record)

    def foreign_log(self) -> None:
        """Another tool's log backup: truncates, never reaches our vault."""
        assert self.chain is not None
        self.now += timedelta(seconds=1)
        self.lsn += 1
        self.chain = self.lsn
