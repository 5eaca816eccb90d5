"""The LSN chain rules of DESIGN.md section 4, over ``BackupRecord``s: pure, no I/O.

Used by the restore planner (``sqlharbor.planner``), the operator (recovery window and
chain health in status) and the agent (checks before and after a backup, through
``sqlharbor.autoheal``).  The rules, as SQL Server applies them:

- a differential belongs to the non-copy-only full whose ``checkpoint_lsn`` equals its
  ``differential_base_lsn`` (same database GUID);
- the first log after a base B needs ``first_lsn <= B.last_lsn <= last_lsn``; each next
  log has ``first_lsn == previous.last_lsn``; anything else is a gap;
- copy-only logs are outside the chain (ignored here); copy-only fulls are restore bases
  but never differential bases;
- a restore by the LSN position L holds every transaction with an LSN at or before L, so
  a backup ending at ``last_lsn`` restores exactly to position ``last_lsn - 1``.

``ChainIndex`` arranges a history once (sorting, prefix sums) so that every question
after that is a bisection: planning over a year of one-minute logs stays fast.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlharbor.backupset import BackupRecord, BackupType

T = TypeVar("T")


@dataclass(frozen=True)
class TimeWindow:
    """A closed interval of restorable times (UTC)."""

    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment <= self.end


@dataclass(frozen=True)
class LsnRange:
    """A closed interval of restorable LSN positions of one database incarnation."""

    database_guid: str
    first: int
    last: int


@dataclass(frozen=True)
class LogChain:
    """Consecutive log backups of one database incarnation, each starting where the last ended."""

    database_guid: str
    logs: tuple[BackupRecord, ...]

    @property
    def first_lsn(self) -> int:
        return self.logs[0].first_lsn

    @property
    def last_lsn(self) -> int:
        return self.logs[-1].last_lsn

    @property
    def end(self) -> datetime:
        return self.logs[-1].finish


@dataclass(frozen=True)
class Gap:
    """Log between two chains that no log backup we hold contains."""

    database_guid: str
    after: BackupRecord
    before: BackupRecord

    @property
    def missing_lsns(self) -> tuple[int, int]:
        return self.after.last_lsn, self.before.first_lsn


# -- the rules, one pair at a time ------------------------------------------------------


def is_differential_of(diff: BackupRecord, full: BackupRecord) -> bool:
    """Whether ``diff`` is a differential based on ``full``."""
    return (
        diff.backup_type is BackupType.DIFFERENTIAL
        and full.is_differential_base
        and full.database_guid == diff.database_guid
        and diff.differential_base_lsn == full.checkpoint_lsn
    )


def differential_base(diff: BackupRecord, records: Iterable[BackupRecord]) -> BackupRecord | None:
    """The full ``diff`` belongs to, if ``records`` hold it."""
    return next((full for full in records if is_differential_of(diff, full)), None)


def log_follows_base(log: BackupRecord, base: BackupRecord) -> bool:
    """Whether ``log`` can be the first log restored after the full or differential ``base``."""
    return (
        log.backup_type is BackupType.LOG
        and log.database_guid == base.database_guid
        and log.first_lsn <= base.last_lsn <= log.last_lsn
    )


def log_follows_log(previous: BackupRecord, log: BackupRecord) -> bool:
    """Whether ``log`` continues ``previous`` with no gap."""
    return (
        log.backup_type is BackupType.LOG
        and previous.backup_type is BackupType.LOG
        and log.database_guid == previous.database_guid
        and log.first_lsn == previous.last_lsn
    )


def restored_position(record: BackupRecord) -> int:
    """The LSN position a restore ending with ``record`` (without a stop point) reaches."""
    return record.last_lsn - 1


# -- whole histories --------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """How far a base goes: the chain of logs that continues it (log indexes, inclusive)."""

    first_log: int | None
    last_log: int | None
    end: datetime
    end_position: int


class ChainIndex(Generic[T]):
    """A history arranged for bisection; items are records or anything holding one."""

    def __init__(self, items: Iterable[T], record_of: Callable[[T], BackupRecord]) -> None:
        self.record_of = record_of
        logs: dict[str, list[T]] = defaultdict(list)
        fulls: list[T] = []
        diffs: list[T] = []
        for item in items:
            record = record_of(item)
            if record.backup_type is BackupType.LOG:
                if not record.is_copy_only:
                    logs[record.database_guid].append(item)
            elif record.backup_type is BackupType.FULL:
                fulls.append(item)
            else:
                diffs.append(item)
        self.logs = {guid: _LogRun(run, record_of) for guid, run in logs.items()}
        self.fulls = fulls
        diff_bases = {
            (r.database_guid, r.checkpoint_lsn): full
            for full in fulls
            if (r := record_of(full)).is_differential_base
        }
        #: every restorable differential, with its full
        self.differentials: list[tuple[T, T]] = []
        for diff in diffs:
            r = record_of(diff)
            full = diff_bases.get((r.database_guid, r.differential_base_lsn or -1))
            if full is not None:
                self.differentials.append((full, diff))

    def bases(self) -> Iterable[tuple[tuple[T, ...], BackupRecord]]:
        """Every restorable base: (the steps it takes, the record it ends with)."""
        for full in self.fulls:
            yield (full,), self.record_of(full)
        for full, diff in self.differentials:
            yield (full, diff), self.record_of(diff)

    def reach(self, base: BackupRecord) -> Reach:
        run = self.logs.get(base.database_guid)
        start = None if run is None else run.covering(base.last_lsn)
        if run is None or start is None:
            return Reach(None, None, base.finish, restored_position(base))
        end = run.chain_end[start]
        last = run.records[end]
        return Reach(start, end, max(base.finish, last.finish), restored_position(last))

    def chains(self) -> list[LogChain]:
        out = []
        for guid, run in self.logs.items():
            for start, end in run.chain_spans():
                out.append(LogChain(guid, tuple(run.records[start : end + 1])))
        return sorted(out, key=lambda chain: chain.logs[0].finish)


class _LogRun(Generic[T]):
    """One incarnation's non-copy-only logs sorted by LSN, with chain ends and prefix sizes."""

    def __init__(self, items: list[T], record_of: Callable[[T], BackupRecord]) -> None:
        items.sort(key=lambda item: record_of(item).first_lsn)
        self.items = items
        self.records = [record_of(item) for item in items]
        self.first_lsns = [r.first_lsn for r in self.records]
        self.last_lsns = [r.last_lsn for r in self.records]
        self.finishes = [r.finish for r in self.records]
        self.size_prefix = [0, *itertools.accumulate(r.size_bytes for r in self.records)]
        n = len(self.records)
        self.chain_end = [0] * n
        end = n - 1
        for i in range(n - 1, -1, -1):
            if i < n - 1 and self.first_lsns[i + 1] != self.last_lsns[i]:
                end = i
            self.chain_end[i] = end

    def covering(self, lsn: int) -> int | None:
        """The first log with ``first_lsn <= lsn <= last_lsn``, if any."""
        i = bisect.bisect_left(self.last_lsns, lsn)
        if i < len(self.records) and self.first_lsns[i] <= lsn:
            return i
        return None

    def chain_spans(self) -> list[tuple[int, int]]:
        spans = []
        i = 0
        while i < len(self.records):
            spans.append((i, self.chain_end[i]))
            i = self.chain_end[i] + 1
        return spans


def split_chains(records: Iterable[BackupRecord]) -> list[LogChain]:
    """The log chains of a history (copy-only logs left out), oldest first."""
    return ChainIndex(records, _identity).chains()


def find_gaps(records: Iterable[BackupRecord]) -> list[Gap]:
    """Where a database's log sequence breaks: between consecutive chains of one GUID."""
    chains = split_chains(records)
    by_guid: dict[str, list[LogChain]] = defaultdict(list)
    for chain in chains:
        by_guid[chain.database_guid].append(chain)
    gaps = []
    for guid, run in by_guid.items():
        run.sort(key=lambda chain: chain.first_lsn)
        for before, after in itertools.pairwise(run):
            gaps.append(Gap(guid, before.logs[-1], after.logs[0]))
    return sorted(gaps, key=lambda gap: gap.after.finish)


def restorable_windows(records: Iterable[BackupRecord]) -> list[TimeWindow]:
    """The restorable times: each base's finish through the end of the logs that continue
    it; overlapping or touching intervals merged, oldest first.  A gap splits them."""
    return windows_of(ChainIndex(records, _identity))


def windows_of(index: ChainIndex[T]) -> list[TimeWindow]:
    spans = sorted((base.finish, index.reach(base).end) for _, base in index.bases())
    return [TimeWindow(start, end) for start, end in _merge(spans)]


def restorable_lsn_ranges(records: Iterable[BackupRecord]) -> list[LsnRange]:
    """The restorable LSN positions, per database incarnation (GUID), merged."""
    return lsn_ranges_of(ChainIndex(records, _identity))


def lsn_ranges_of(index: ChainIndex[T]) -> list[LsnRange]:
    by_guid: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for _, base in index.bases():
        by_guid[base.database_guid].append(
            (restored_position(base), index.reach(base).end_position)
        )
    return [
        LsnRange(guid, first, last)
        for guid, spans in by_guid.items()
        for first, last in _merge(sorted(spans))
    ]


_P = TypeVar("_P", datetime, int)


def _merge(spans: Sequence[tuple[_P, _P]]) -> list[tuple[_P, _P]]:
    merged: list[tuple[_P, _P]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _identity(record: BackupRecord) -> BackupRecord:
    return record
