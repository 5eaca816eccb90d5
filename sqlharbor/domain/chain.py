"""The LSN chain rules of DESIGN.md section 4, over ``BackupRecord``s: pure, no I/O.

Used by the restore planner (``sqlharbor.domain.planner``), the operator (recovery window and
chain health in status) and the agent (checks before and after a backup, through
``sqlharbor.domain.autoheal``).  The rules, as SQL Server applies them:

- a differential belongs to the non-copy-only full its ``differential_base_guid`` names
  (its ``backup_set_uuid``), or, when that is unknown, whose ``checkpoint_lsn`` equals its
  ``differential_base_lsn`` (same database GUID): ``sqlharbor.domain.diffbase``;
- the first log after a base B needs ``first_lsn <= B.last_lsn <= last_lsn``; each next
  log has ``first_lsn == previous.last_lsn``; anything else is a gap;
- copy-only logs are outside the chain (ignored here); copy-only fulls are restore bases
  but never differential bases;
- a restore by the LSN position L holds every transaction with an LSN at or before L, so
  a backup ending at ``last_lsn`` restores exactly to position ``last_lsn - 1``;
- an idle database's log backups are empty (``first_lsn == last_lsn``), often several in a
  row sharing their LSN with the next real log: they continue the chain, restore nothing
  and extend the restorable time to their finish;
- recovery forks: an in-place restore starts a new fork that shares LSN values with the
  old one.  A log continues a base or log only on the same fork (a log spanning the fork
  point continues the new fork's bases, never the old fork's logs), so a chain never
  crosses a fork boundary and a plan never mixes forks.

``ChainIndex`` arranges a history once (sorting, prefix sums) so that every question
after that is a bisection: planning over a year of one-minute logs stays fast.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlharbor.domain.backupset import BackupRecord, BackupType
from sqlharbor.domain.diffbase import DifferentialBases
from sqlharbor.domain.diffbase import differential_base as differential_base
from sqlharbor.domain.diffbase import is_differential_of as is_differential_of
from sqlharbor.domain.ordering import default_forks, lsn_order, merge, pick

T = TypeVar("T")

_FIRST_LSN = operator.attrgetter("first_lsn")
_LAST_LSN = operator.attrgetter("last_lsn")
_FINISH = operator.attrgetter("finish")
_SIZE = operator.attrgetter("size_bytes")
_KIND = operator.attrgetter("backup_type")
_COPY_ONLY = operator.attrgetter("is_copy_only")
_GUID = operator.attrgetter("database_guid")
_FIRST_FORK = operator.attrgetter("first_recovery_fork_guid")
_LAST_FORK = operator.attrgetter("last_recovery_fork_guid")


@dataclass(frozen=True)
class TimeWindow:
    """A closed interval of restorable times (UTC)."""

    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment <= self.end


@dataclass(frozen=True)
class LsnRange:
    """A closed interval of restorable LSN positions of one database incarnation (GUID) on
    one recovery fork.  After an in-place restore two forks share LSN values."""

    database_guid: str
    first: int
    last: int
    recovery_fork: str = ""


@dataclass(frozen=True)
class LogChain:
    """Consecutive log backups of one database incarnation, each starting where the last ended."""

    database_guid: str
    logs: tuple[BackupRecord, ...]
    recovery_fork: str = ""

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
    recovery_fork: str = ""

    @property
    def missing_lsns(self) -> tuple[int, int]:
        return self.after.last_lsn, self.before.first_lsn


# -- the rules, one pair at a time ------------------------------------------------------


def log_follows_base(log: BackupRecord, base: BackupRecord) -> bool:
    """Whether ``log`` can be the first log restored after the full or differential ``base``."""
    return (
        log.backup_type is BackupType.LOG
        and log.database_guid == base.database_guid
        and log.first_lsn <= base.last_lsn <= log.last_lsn
        and _same_fork(log.fork_at(base.last_lsn), base.recovery_fork)
    )


def log_follows_log(previous: BackupRecord, log: BackupRecord) -> bool:
    """Whether ``log`` continues ``previous`` with no gap (on the same recovery fork)."""
    return (
        log.backup_type is BackupType.LOG
        and previous.backup_type is BackupType.LOG
        and log.database_guid == previous.database_guid
        and log.first_lsn == previous.last_lsn
        and not log.spans_fork
        and _same_fork(log.recovery_fork, previous.recovery_fork)
    )


def _same_fork(a: str, b: str) -> bool:
    """Forks match when equal or when either is unknown (points written before forks)."""
    return a == b or not a or not b


def restored_position(record: BackupRecord) -> int:
    """The LSN position a restore ending with ``record`` (without a stop point) reaches."""
    return record.last_lsn - 1


# -- whole histories --------------------------------------------------------------------

#: one line of descent of a database: its GUID and a recovery fork
Lineage = tuple[str, str]


@dataclass(frozen=True)
class Reach:
    """How far a base goes: the chain of logs that continues it (log indexes, inclusive).

    ``first_log`` is the first log that restores anything after the base; when only logs
    that end where the base ends follow it (empty logs of an idle database), they extend
    ``end`` in time but ``end_position`` stays the base's."""

    first_log: int | None
    last_log: int | None
    end: datetime
    end_position: int


class ChainIndex(Generic[T]):
    """A history arranged for bisection; items are records or anything holding one.

    Every answer is independent of the order the items arrive in: logs are ordered by
    ``(first_lsn, last_lsn, finish, start, backup_set_id)``, so runs of empty logs (equal
    first and last LSNs) fall in a fixed place.  Logs are split by lineage (database GUID
    and recovery fork): a chain never crosses a fork boundary.  Records whose fork is
    unknown (written before forks were recorded) belong to the earliest known fork of
    their GUID, or to the unknown fork "" when none is known."""

    def __init__(self, items: Iterable[T], record_of: Callable[[T], BackupRecord]) -> None:
        # C-level passes only (map, compress, itemgetter) and one sort: a year of one-minute
        # logs is half a million items, arriving in any order.
        self.record_of = record_of
        unsorted = list(items)
        unsorted_records = list(map(record_of, unsorted))
        order = lsn_order(unsorted_records)
        if all(map(operator.lt, order, order[1:])):  # already in order
            ordered, records = unsorted, unsorted_records
        else:
            ordered, records = pick(unsorted, order), pick(unsorted_records, order)
        self._default_fork = default_forks(records)
        is_log = list(map(operator.is_, map(_KIND, records), itertools.repeat(BackupType.LOG)))
        in_chain = list(map(operator.and_, is_log, map(operator.not_, map(_COPY_ONLY, records))))
        self.logs: dict[Lineage, _LogRun[T]] = {}
        lineages = self._lineages(records)
        if isinstance(lineages, tuple):  # one GUID, one fork: no masks to build
            if any(in_chain):
                self.logs[lineages] = _LogRun(
                    lineages[1],
                    list(itertools.compress(ordered, in_chain)),
                    list(itertools.compress(records, in_chain)),
                )
        else:
            for lineage in dict.fromkeys(itertools.compress(lineages, in_chain)):
                mask = list(
                    map(
                        operator.and_,
                        in_chain,
                        map(operator.eq, lineages, itertools.repeat(lineage)),
                    )
                )
                self.logs[lineage] = _LogRun(
                    lineage[1],
                    list(itertools.compress(ordered, mask)),
                    list(itertools.compress(records, mask)),
                )
        bases = [i for i in itertools.compress(range(len(records)), map(operator.not_, is_log))]
        self.fulls = [ordered[i] for i in bases if records[i].backup_type is BackupType.FULL]
        diff_bases = DifferentialBases(self.fulls, record_of)
        #: every restorable differential, with its full (a differential taken after an
        #: in-place restore of a full is based on that full, across the fork)
        self.differentials: list[tuple[T, T]] = []
        for i in bases:
            r = records[i]
            if r.backup_type is BackupType.DIFFERENTIAL:
                base = diff_bases.base_of(r)
                if base is not None:
                    self.differentials.append((base, ordered[i]))

    def _lineages(self, records: list[BackupRecord]) -> list[Lineage] | Lineage:
        """Each record's lineage, or the one lineage they all share."""
        guids = list(map(_GUID, records))
        forks = list(map(_LAST_FORK, records))
        if len(set(guids)) <= 1 and len(set(forks)) <= 1:
            return (
                (guids[0], forks[0] or self._default_fork.get(guids[0], "")) if guids else ("", "")
            )
        if "" in set(forks) and self._default_fork:
            forks = [f or self._default_fork.get(g, "") for g, f in zip(guids, forks, strict=True)]
        return list(zip(guids, forks, strict=True))

    def lineage(self, record: BackupRecord) -> Lineage:
        """The GUID and the recovery fork a restore ending with ``record`` is on."""
        guid = record.database_guid
        return guid, record.last_recovery_fork_guid or self._default_fork.get(guid, "")

    def bases(self) -> Iterable[tuple[tuple[T, ...], BackupRecord]]:
        """Every restorable base: (the steps it takes, the record it ends with)."""
        for full in self.fulls:
            yield (full,), self.record_of(full)
        for full, diff in self.differentials:
            yield (full, diff), self.record_of(diff)

    def reach(self, base: BackupRecord) -> Reach:
        run = self.logs.get(self.lineage(base))
        start = None if run is None else run.covering(base.last_lsn)
        if run is None or start is None:
            return Reach(None, None, base.finish, restored_position(base))
        end = run.chain_end(start)
        last = run.records[end]
        position = max(restored_position(last), restored_position(base))
        return Reach(start, end, max(base.finish, last.finish), position)

    def chains(self) -> list[LogChain]:
        out = []
        for (guid, fork), run in self.logs.items():
            for start, end in run.chain_spans():
                out.append(LogChain(guid, tuple(run.records[start : end + 1]), fork))
        return sorted(out, key=lambda chain: (chain.logs[0].finish, chain.first_lsn))


class _LogRun(Generic[T]):
    """One lineage's non-copy-only logs in LSN order, with chain ends and prefix sums."""

    def __init__(self, fork: str, items: list[T], records: list[BackupRecord]) -> None:
        self.fork = fork
        self.items = items
        self.records = records
        self.first_lsns = list(map(_FIRST_LSN, records))
        self.last_lsns = list(map(_LAST_LSN, records))
        self.finishes = list(map(_FINISH, records))
        self.size_prefix = [0, *itertools.accumulate(map(_SIZE, records))]
        #: how many logs that restore something (not empty) come before each index
        self.restoring_prefix: list[int] = [
            0,
            *itertools.accumulate(map(operator.ne, self.first_lsns, self.last_lsns)),
        ]
        #: indexes of logs the next log does not continue (the ends of chains); a log
        #: that spans a fork point never continues a log of its run (it starts the fork)
        continues: Iterable[bool] = map(operator.eq, self.first_lsns[1:], self.last_lsns)
        first_forks = list(map(_FIRST_FORK, records))
        if first_forks != [fork] * len(records):  # some log spans a fork point
            spans = [r.spans_fork for r in records[1:]]
            continues = map(operator.and_, continues, map(operator.not_, spans))
        self.breaks = list(itertools.compress(range(len(records)), map(operator.not_, continues)))

    def chain_end(self, i: int) -> int:
        """The index of the last log of the chain holding log ``i``."""
        j = bisect.bisect_left(self.breaks, i)
        return self.breaks[j] if j < len(self.breaks) else len(self.records) - 1

    def covering(self, lsn: int) -> int | None:
        """The first log with ``first_lsn <= lsn <= last_lsn`` on this run's fork, if any.
        It may restore nothing (it ends at ``lsn``: an empty log, or a log that ended where
        a full did); the chain from it reaches the log that moves past ``lsn``."""
        i = bisect.bisect_left(self.last_lsns, lsn)
        if (
            i < len(self.records)
            and self.first_lsns[i] <= lsn
            and self.records[i].fork_at(lsn) in (self.fork, "")
        ):
            return i
        return None

    def restoring(self, first: int, last: int, position: int) -> int:
        """How many logs of ``first..last`` a restore from LSN ``position`` applies."""
        count = self.restoring_prefix[last + 1] - self.restoring_prefix[first]
        head = self.records[first]
        if head.first_lsn != head.last_lsn and head.last_lsn <= position:
            count -= 1
        return count

    def chain_spans(self) -> list[tuple[int, int]]:
        starts = [0, *(b + 1 for b in self.breaks)]
        ends = [*self.breaks, len(self.records) - 1]
        return [(start, end) for start, end in zip(starts, ends, strict=True) if start <= end]


def restoring_logs(records: Sequence[BackupRecord], base: BackupRecord) -> list[int]:
    """Which logs of a chain that continues ``base`` a restore applies: the ones that move
    the database forward.  Empty logs, and logs that end where the base ends, hold nothing
    the restore still needs (SQL Server would refuse some of them as "too early")."""
    position = base.last_lsn
    keep = []
    for i, record in enumerate(records):
        if record.last_lsn > position:
            keep.append(i)
            position = record.last_lsn
    return keep


def split_chains(records: Iterable[BackupRecord]) -> list[LogChain]:
    """The log chains of a history (copy-only logs left out), oldest first."""
    return ChainIndex(records, _identity).chains()


def find_gaps(records: Iterable[BackupRecord]) -> list[Gap]:
    """Where a database's log sequence breaks: between consecutive chains of one lineage
    (GUID and recovery fork)."""
    chains = split_chains(records)
    by_lineage: dict[Lineage, list[LogChain]] = defaultdict(list)
    for chain in chains:
        by_lineage[chain.database_guid, chain.recovery_fork].append(chain)
    gaps = []
    for (guid, fork), run in by_lineage.items():
        run.sort(key=lambda chain: (chain.first_lsn, chain.last_lsn))
        for before, after in itertools.pairwise(run):
            gaps.append(Gap(guid, before.logs[-1], after.logs[0], fork))
    return sorted(gaps, key=lambda gap: gap.after.finish)


def restorable_windows(records: Iterable[BackupRecord]) -> list[TimeWindow]:
    """The restorable times: each base's finish through the end of the logs that continue
    it; overlapping or touching intervals merged, oldest first.  A gap splits them."""
    return windows_of(ChainIndex(records, _identity))


def windows_of(index: ChainIndex[T]) -> list[TimeWindow]:
    spans = sorted((base.finish, index.reach(base).end) for _, base in index.bases())
    return [TimeWindow(start, end) for start, end in merge(spans)]


def restorable_lsn_ranges(records: Iterable[BackupRecord]) -> list[LsnRange]:
    """The restorable LSN positions, per database incarnation (GUID), merged."""
    return lsn_ranges_of(ChainIndex(records, _identity))


def lsn_ranges_of(index: ChainIndex[T]) -> list[LsnRange]:
    by_lineage: dict[Lineage, list[tuple[int, int]]] = defaultdict(list)
    for _, base in index.bases():
        by_lineage[index.lineage(base)].append(
            (restored_position(base), index.reach(base).end_position)
        )
    return [
        LsnRange(guid, first, last, fork)
        for (guid, fork), spans in by_lineage.items()
        for first, last in merge(sorted(spans))
    ]


def _identity(record: BackupRecord) -> BackupRecord:
    return record
