"""``sqlharbor.domain.chain`` on hand-built histories."""

from __future__ import annotations

from sqlharbor.domain import chain
from tests.builders.records import History


def _records(h: History) -> list:
    return [p.record for p in h.points]


def test_split_chains_gaps_and_windows() -> None:
    h = History()
    full = h.full().record
    h.work()
    log1 = h.log().record
    h.work()
    copy_log = h.log(copy_only=True).record
    h.work()
    log2 = h.log().record
    h.foreign_log()
    h.work()
    log3 = h.log().record
    h.work()
    diff = h.diff().record
    h.work()
    log4 = h.log().record
    records = _records(h)
    assert chain.is_differential_of(diff, full)
    assert chain.differential_base(diff, records) == full
    assert chain.log_follows_base(log1, full)
    assert chain.log_follows_log(log1, log2)
    assert not chain.log_follows_log(log1, copy_log) or copy_log.first_lsn == log1.last_lsn
    assert chain.log_follows_base(log4, diff)
    chains = chain.split_chains(records)
    assert [c.logs for c in chains] == [(log1, log2), (log3, log4)]
    gaps = chain.find_gaps(records)
    assert len(gaps) == 1
    assert (gaps[0].after, gaps[0].before) == (log2, log3)
    windows = chain.restorable_windows(records)
    assert windows == [
        chain.TimeWindow(full.finish, log2.finish),
        chain.TimeWindow(diff.finish, log4.finish),
    ]
    ranges = chain.restorable_lsn_ranges(records)
    assert ranges == [
        chain.LsnRange("GUID-A", full.last_lsn - 1, log2.last_lsn - 1),
        chain.LsnRange("GUID-A", diff.last_lsn - 1, log4.last_lsn - 1),
    ]


def test_diff_without_its_full_and_incarnations() -> None:
    h = History()
    h.full()
    h.work()
    diff = h.diff().record
    records = [r for r in _records(h) if r.backup_type.value != "Full"]
    assert chain.differential_base(diff, records) is None
    assert chain.restorable_windows(records) == []
    other = History(guid="GUID-B", lsn=h.lsn - 5, now=h.now)
    other.full()
    ranges = chain.restorable_lsn_ranges(_records(h) + _records(other))
    assert [r.database_guid for r in ranges] == ["GUID-A", "GUID-A", "GUID-B"]
