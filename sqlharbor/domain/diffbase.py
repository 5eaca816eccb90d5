"""Which full a differential is based on: the one pairing rule, pure, no I/O.

Used by ``sqlharbor.domain.chain`` (``ChainIndex``: restorable differentials, the
planner, status) and ``sqlharbor.domain.retention`` (a kept differential keeps its
full).  msdb records the pairing exactly: a differential's ``differential_base_guid``
is the ``backup_set_uuid`` of its base.  A checkpoint LSN alone is not enough: after an
in-place restore the database keeps its GUID and its new recovery fork reuses the old
fork's LSN values, so two fulls can share a checkpoint LSN.  The rule:

- a differential whose ``differential_base_guid`` is known is based on the non-copy-only
  full of its database GUID with that ``backup_set_uuid``, and on no other full that
  names a ``backup_set_uuid``, even if the LSNs match.  When no full holds that uuid,
  the fulls whose uuid is unknown (points written before it was recorded) are matched
  by LSN as below, so a differential taken after an upgrade still finds its older full;
- otherwise it is based on the non-copy-only full of its GUID whose ``checkpoint_lsn``
  equals its ``differential_base_lsn``.  When several do (two forks), the one on the
  differential's recovery fork wins, else the latest that finished before it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from sqlharbor.domain.backupset import BackupRecord, BackupType

T = TypeVar("T")

_Candidates = list[tuple[BackupRecord, T]]


class DifferentialBases(Generic[T]):
    """The differential bases of a history, indexed once: each ``base_of`` is a dict
    lookup.  Items are records or anything holding one (``record_of``)."""

    def __init__(self, items: Iterable[T], record_of: Callable[[T], BackupRecord]) -> None:
        self._by_uuid: dict[tuple[str, str], _Candidates[T]] = defaultdict(list)
        self._by_lsn: dict[tuple[str, int], _Candidates[T]] = defaultdict(list)
        for item in items:
            r = record_of(item)
            if not r.is_differential_base:
                continue
            if r.backup_set_uuid:
                self._by_uuid[r.database_guid, r.backup_set_uuid.lower()].append((r, item))
            self._by_lsn[r.database_guid, r.checkpoint_lsn].append((r, item))

    def base_of(self, diff: BackupRecord) -> T | None:
        """The full ``diff`` is based on, if the history holds it (None for a full or log)."""
        if diff.backup_type is not BackupType.DIFFERENTIAL:
            return None
        guid, lsn = diff.database_guid, diff.differential_base_lsn
        by_lsn = [] if lsn is None else self._by_lsn.get((guid, lsn), [])
        if diff.differential_base_guid:
            named = self._by_uuid.get((guid, diff.differential_base_guid.lower()))
            if named:
                return _pick(named, diff)
            by_lsn = [(r, item) for r, item in by_lsn if not r.backup_set_uuid]
        return _pick(by_lsn, diff) if by_lsn else None


def _pick(candidates: _Candidates[T], diff: BackupRecord) -> T | None:
    """One of several fulls that share a checkpoint LSN: the one on the differential's
    recovery fork, else the latest that finished before the differential."""
    if len(candidates) == 1:
        return candidates[0][1]
    before = [(r, item) for r, item in candidates if r.finish <= diff.finish]
    if not before:
        return None
    fork = diff.recovery_fork
    _, item = max(
        before,
        key=lambda c: (
            bool(fork) and c[0].recovery_fork == fork,
            c[0].finish,
            c[0].start,
            c[0].first_lsn,
            c[0].last_lsn,
            c[0].backup_set_id,
        ),
    )
    return item


def differential_base(diff: BackupRecord, records: Iterable[BackupRecord]) -> BackupRecord | None:
    """The full ``diff`` is based on, if ``records`` hold it."""
    return DifferentialBases(records, _identity).base_of(diff)


def is_differential_of(diff: BackupRecord, full: BackupRecord) -> bool:
    """Whether ``diff`` is a differential based on ``full`` (the rule above, with ``full``
    the only candidate)."""
    return differential_base(diff, (full,)) is full


def _identity(record: BackupRecord) -> BackupRecord:
    return record
