"""The pairing rule of ``sqlharbor.domain.diffbase``: which full a differential is based
on, by ``differential_base_guid`` when known, else by checkpoint LSN (the fulls' recovery
forks and finish times decide between several)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlharbor.domain import chain, diffbase
from sqlharbor.domain.backupset import BackupRecord, BackupType
from tests.builders.records import backup_record

FULL, DIFF = BackupType.FULL, BackupType.DIFFERENTIAL
DAY = datetime(2026, 11, 24, tzinfo=UTC)
FORK_A, FORK_B, FORK_C = "fork-a", "fork-b", "fork-c"


def at(minutes: float) -> datetime:
    return DAY + timedelta(minutes=minutes)


def full(uuid: str, fork: str, finish: float, checkpoint: int = 1310, **kw: object) -> BackupRecord:
    return backup_record(
        FULL,
        first_lsn=checkpoint - 10,
        last_lsn=checkpoint + 90,
        checkpoint_lsn=checkpoint,
        start=at(finish) - timedelta(seconds=10),
        finish=at(finish),
        fork=fork,
        backup_set_uuid=uuid,
        **kw,  # type: ignore[arg-type]
    )


def diff(base_guid: str, fork: str, finish: float, base_lsn: int = 1310) -> BackupRecord:
    return backup_record(
        DIFF,
        first_lsn=1420,
        last_lsn=1460,
        checkpoint_lsn=1430,
        differential_base_lsn=base_lsn,
        start=at(finish) - timedelta(seconds=10),
        finish=at(finish),
        fork=fork,
        differential_base_guid=base_guid,
    )


def base(d: BackupRecord, fulls: list[BackupRecord]) -> BackupRecord | None:
    """The base, checked to be the same for every input order."""
    answers = {id(diffbase.differential_base(d, order)) for order in itertools.permutations(fulls)}
    assert len(answers) == 1
    return diffbase.differential_base(d, fulls)


def test_a_named_base_wins_over_a_full_with_the_same_checkpoint_lsn() -> None:
    old = full("u-old", FORK_A, 80)
    new = full("u-new", FORK_B, 110)
    d = diff("u-old", FORK_C, 125)  # after restoring the old fork's full in place
    assert base(d, [old, new]) is old
    assert chain.is_differential_of(d, old)
    assert not chain.is_differential_of(d, new)  # its uuid differs, though the LSNs match


def test_a_named_base_ignores_the_lsn_and_refuses_other_named_fulls() -> None:
    named = full("u-1", FORK_A, 80, checkpoint=999)
    assert base(diff("u-1", FORK_A, 90), [named]) is named
    assert base(diff("u-2", FORK_A, 90), [full("u-3", FORK_A, 80)]) is None
    assert base(diff("U-1", FORK_A, 90), [named]) is named  # GUIDs compare without case


def test_a_named_base_missing_falls_back_to_fulls_written_before_uuids() -> None:
    """A differential taken after an upgrade names a full whose point was written before
    uuids were recorded: the LSN pairs them, but never with a full of another uuid."""
    unnamed = full("", FORK_A, 80)
    other = full("u-other", FORK_A, 70)
    assert base(diff("u-1", FORK_A, 90), [unnamed, other]) is unnamed
    assert base(diff("u-1", FORK_A, 90), [other]) is None


def test_without_uuids_the_fork_then_the_latest_before_decides() -> None:
    on_a = full("", FORK_A, 80)
    on_b = full("", FORK_B, 110)
    assert base(diff("", FORK_B, 115), [on_a, on_b]) is on_b
    assert base(diff("", FORK_A, 85), [on_a, on_b]) is on_a
    # on a third fork: the latest that finished before the differential
    assert base(diff("", FORK_C, 125), [on_a, on_b]) is on_b
    assert base(diff("", FORK_C, 100), [on_a, on_b]) is on_a
    # a single candidate is the base, as it always was
    assert base(diff("", FORK_C, 50), [on_b]) is on_b
    assert base(diff("", FORK_C, 50, base_lsn=7), [on_a, on_b]) is None


def test_copy_only_fulls_other_databases_and_non_differentials_are_never_paired() -> None:
    copy = full("u-1", FORK_A, 80, copy_only=True)
    assert base(diff("u-1", FORK_A, 90), [copy]) is None
    assert base(diff("", FORK_A, 90), [copy]) is None
    elsewhere = full("u-1", FORK_A, 80, guid="another-database")
    assert base(diff("u-1", FORK_A, 90), [elsewhere]) is None
    plain = full("u-1", FORK_A, 80)
    assert base(plain, [plain]) is None
