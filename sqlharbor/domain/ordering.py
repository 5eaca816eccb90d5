"""How ``ChainIndex`` (``sqlharbor.domain.chain``) arranges a history, whatever order it
arrives in: ordered by ``(first_lsn, last_lsn, finish, start, backup_set_id)``, so runs of
empty logs (equal first and last LSNs) fall in a fixed place; the default fork of each
GUID; merged spans.  C-level passes where it counts: a year of one-minute logs is half a
million records.  Pure, no I/O.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlharbor.domain.backupset import BackupRecord

T = TypeVar("T")

_FIRST_LSN = operator.attrgetter("first_lsn")
ORDER = operator.attrgetter("first_lsn", "last_lsn", "finish", "start", "backup_set_id")


def lsn_order(records: list[BackupRecord]) -> list[int]:
    """Positions of ``records`` in ``ORDER``: one C-level sort by first LSN, then the few
    runs of equal first LSNs (empty logs, a full and a log starting together) by the full
    key, so that the order never depends on the input's."""
    firsts = list(map(_FIRST_LSN, records))
    order = sorted(range(len(records)), key=firsts.__getitem__)
    ordered_firsts = pick(firsts, order)
    ties = list(
        itertools.compress(
            range(len(order) - 1), map(operator.eq, ordered_firsts, ordered_firsts[1:])
        )
    )
    start = 0
    while start < len(ties):
        end = start
        while end + 1 < len(ties) and ties[end + 1] == ties[end] + 1:
            end += 1
        low, high = ties[start], ties[end] + 2
        order[low:high] = sorted(order[low:high], key=lambda i: ORDER(records[i]))
        start = end + 1
    return order


def pick(values: list[T], positions: list[int]) -> list[T]:
    """``[values[i] for i in positions]``, in C."""
    if len(positions) < 2:
        return [values[i] for i in positions]
    return list(operator.itemgetter(*positions)(values))


def default_forks(records: Sequence[BackupRecord]) -> dict[str, str]:
    """Per GUID, the fork of its earliest record whose fork is known."""
    forks: dict[str, tuple[datetime, str]] = {}
    for r in records:
        fork = r.first_recovery_fork_guid or r.last_recovery_fork_guid
        if fork and (r.database_guid not in forks or r.finish < forks[r.database_guid][0]):
            forks[r.database_guid] = (r.finish, fork)
    return {guid: fork for guid, (_, fork) in forks.items()}


_P = TypeVar("_P", datetime, int)


def merge(spans: Sequence[tuple[_P, _P]]) -> list[tuple[_P, _P]]:
    """Sorted closed spans with overlapping or touching ones merged."""
    merged: list[tuple[_P, _P]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
