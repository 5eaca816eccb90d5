"""The chain rules and the planner over histories shaped like real servers' ``msdb``:
runs of empty logs of an idle database, logs taken during a full or differential, a
copy-only full as restore base, a striped full, two recovery forks, fulls of different
forks sharing a checkpoint LSN (paired by backup set uuid).  Each history is
written by hand with the restore sequence SQL Server would accept worked out by hand;
property tests then check every answer is independent of input order and every plan is
one SQL Server accepts, over random histories holding all of these shapes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlharbor.domain import chain, planner
from sqlharbor.domain.backupset import (
    BackupMedia,
    BackupRecord,
    BackupType,
    MediaFile,
    MediaKind,
    RecoveryPoint,
)
from sqlharbor.errors import ErrorCode, PlanError
from tests.builders.histories import accepts, random_history
from tests.builders.records import backup_record

FULL, DIFF, LOG = BackupType.FULL, BackupType.DIFFERENTIAL, BackupType.LOG
DAY = datetime(2026, 11, 24, tzinfo=UTC)
FORK_A = "A0000000-0000-4000-8000-00000000000A"
FORK_B = "B0000000-0000-4000-8000-00000000000B"


def at(minutes: float) -> datetime:
    return DAY + timedelta(minutes=minutes)


def point(pid: str, kind: BackupType, first: int, last: int, finish: float, **kw: object):
    record = backup_record(
        kind,
        first_lsn=first,
        last_lsn=last,
        start=at(finish) - timedelta(seconds=10),
        finish=at(finish),
        **kw,  # type: ignore[arg-type]
    )
    return RecoveryPoint(pid, record)


def ids(plan: planner.RestorePlan) -> list[str]:
    return [p.id for p in plan.steps]


def orders(points: list[RecoveryPoint]) -> list[list[RecoveryPoint]]:
    """The history as given, newest first, and shuffled."""
    shuffled = list(points)
    random.Random(7).shuffle(shuffled)
    return [list(points), list(reversed(points)), shuffled]


# -- an idle night: runs of empty log backups -----------------------------------------------


def idle_night() -> list[RecoveryPoint]:
    return [
        point("F", FULL, 1000, 1100, 5, checkpoint_lsn=1010),
        point("L1", LOG, 900, 1200, 10),
        *(point(f"E{i}", LOG, 1200, 1200, 10 + i) for i in range(1, 5)),  # 00:11 .. 00:14
        point("L2", LOG, 1200, 1350, 15),
        point("E5", LOG, 1350, 1350, 16),
    ]


@pytest.mark.parametrize("order", range(3))
def test_runs_of_empty_logs_are_one_chain_in_any_order(order: int) -> None:
    points = orders(idle_night())[order]
    records = [p.record for p in points]
    chains = chain.split_chains(records)
    assert [[r.last_lsn for r in c.logs] for c in chains] == [[1200] * 5 + [1350] * 2]
    assert chain.find_gaps(records) == []
    assert chain.restorable_windows(records) == [chain.TimeWindow(at(5), at(16))]
    assert [(r.first, r.last) for r in chain.restorable_lsn_ranges(records)] == [(1099, 1349)]


@pytest.mark.parametrize("order", range(3))
def test_plans_through_an_idle_night_leave_empty_logs_out(order: int) -> None:
    plans = planner.RestorePlanner(orders(idle_night())[order])
    # idle at 00:12:30: the state then is the end of L1; no STOPAT (it would lie past L1)
    idle = plans.plan(at(12.5))
    assert (ids(idle), idle.stop_time, idle.target_time) == (["F", "L1"], None, at(12.5))
    # 00:14:30 falls in L2 (the log that ends after it restores something): STOPAT there
    busy = plans.plan(at(14.5))
    assert (ids(busy), busy.stop_time) == (["F", "L1", "L2"], at(14.5))
    early = plans.plan(at(9))
    assert (ids(early), early.stop_time) == (["F", "L1"], at(9))
    latest = plans.plan(planner.Latest())
    assert (ids(latest), latest.stop_time, latest.target_time) == (["F", "L1", "L2"], None, at(16))
    by_point = plans.plan(planner.AtRecoveryPoint("E3"))
    assert (ids(by_point), by_point.stop_time, by_point.target_time) == (["F", "L1"], None, at(13))
    # LSN 1200 is the first LSN after L1: only L2 holds it
    lsn = plans.plan(planner.AtLsn(1200))
    assert (ids(lsn), lsn.stop_lsn) == (["F", "L1", "L2"], 1200)
    assert ids(plans.plan(planner.AtLsn(1199))) == ["F", "L1"]
    with pytest.raises(PlanError) as refused:
        plans.plan(at(16.5))
    assert refused.value.code == ErrorCode.RESTORE_POINT_OUTSIDE_WINDOW


def test_an_empty_log_right_after_a_full_is_not_restored() -> None:
    points = [
        point("F", FULL, 1000, 1200, 5),
        point("E1", LOG, 1200, 1200, 6),
        point("E2", LOG, 1200, 1200, 7),
        point("L", LOG, 1200, 1300, 8),
    ]
    plans = planner.RestorePlanner(list(reversed(points)))
    assert ids(plans.plan(at(6.5))) == ["F"]
    assert plans.plan(at(6.5)).stop_time is None
    assert ids(plans.plan(at(7.5))) == ["F", "L"]


# -- logs taken while a full or a differential runs; a copy-only full as base ---------------


def busy_day() -> list[RecoveryPoint]:
    return [
        point("L0", LOG, 500, 900, -10),
        point("L_during_full", LOG, 900, 1050, 2),  # runs while F copies data
        point("F", FULL, 950, 1100, 5, checkpoint_lsn=960),
        point("L_after_full", LOG, 1050, 1100, 6),  # ends where F ends: restores nothing
        point("L3", LOG, 1100, 1300, 10),
        point("L_during_diff", LOG, 1300, 1450, 22),
        point("D", DIFF, 1400, 1500, 25, checkpoint_lsn=1410, differential_base_lsn=960),
        point("L5", LOG, 1450, 1600, 30),
        point("CF", FULL, 1700, 1800, 40, checkpoint_lsn=1710, copy_only=True),
        point("L6", LOG, 1600, 1900, 45),
        point("D2", DIFF, 1950, 2000, 52, checkpoint_lsn=1960, differential_base_lsn=960),
    ]


@pytest.mark.parametrize("order", range(3))
def test_logs_during_data_backups_and_a_copy_only_base(order: int) -> None:
    points = orders(busy_day())[order]
    plans = planner.RestorePlanner(points)
    # F then the first log that moves past F's end (L_after_full ends exactly there)
    after_full = plans.plan(at(8))
    assert (ids(after_full), after_full.stop_time) == (["F", "L3"], at(8))
    # the log taken during the differential does not reach D's end; L5 does
    after_diff = plans.plan(at(28))
    assert (ids(after_diff), after_diff.stop_time) == (["F", "D", "L5"], at(28))
    # the copy-only full is a restore base (fewer steps than F, D, L5, L6) ...
    after_copy = plans.plan(at(44))
    assert (ids(after_copy), after_copy.stop_time) == (["CF", "L6"], at(44))
    # ... but never a differential base: D2 belongs to F
    index = chain.ChainIndex(points, lambda p: p.record)
    assert {(full.id, diff.id) for full, diff in index.differentials} == {("F", "D"), ("F", "D2")}
    assert ids(plans.plan(planner.AtRecoveryPoint("D2"))) == ["F", "D2"]
    assert accepts([p.record for p in plans.plan(at(44)).steps]) is None


def test_a_striped_full_is_one_step_with_every_device() -> None:
    media = BackupMedia(
        files=tuple(
            MediaFile(f"{{GUID-{n}}}", family=n, kind=MediaKind.VIRTUAL_DEVICE)
            for n in (1, 2, 3, 4)
        ),
        media_set_id="42",
    )
    points = [
        point("F", FULL, 1000, 1100, 5, media=media, server_name="VM1\\SQL01"),
        point("L", LOG, 1000, 1300, 10),
    ]
    plan = planner.plan_restore(points, at(8))
    assert ids(plan) == ["F", "L"]
    assert plan.full.record.media is not None
    assert plan.full.record.media.stripes == 4
    assert plan.full.record.server_name == "VM1\\SQL01"


# -- two recovery forks -----------------------------------------------------------------------


def two_forks() -> list[RecoveryPoint]:
    """Fork A to 01:30; at 01:35 the database is restored in place to LSN 1250 (fork B
    begins at 1251); a differential of the restored full, the log that spans the fork
    point, the heal full and a log follow on fork B."""
    return [
        point("F_A", FULL, 1000, 1100, 60, checkpoint_lsn=1010, fork=FORK_A),
        point("L1", LOG, 1000, 1200, 70, fork=FORK_A),
        point("L2", LOG, 1200, 1300, 80, fork=FORK_A),
        point("L3", LOG, 1300, 1400, 90, fork=FORK_A),
        point("D_B", DIFF, 1260, 1320, 100, checkpoint_lsn=1270, differential_base_lsn=1010,
              fork=FORK_B),
        point("S", LOG, 1251, 1340, 105, fork=(FORK_A, FORK_B), fork_point_lsn=1251),
        point("F_B", FULL, 1345, 1360, 110, checkpoint_lsn=1350, fork=FORK_B),
        point("L4", LOG, 1340, 1500, 120, fork=FORK_B),
    ]  # fmt: skip


@pytest.mark.parametrize("order", range(3))
def test_chains_never_cross_a_fork_boundary(order: int) -> None:
    records = [p.record for p in orders(two_forks())[order]]
    chains = chain.split_chains(records)
    assert [([r.last_lsn for r in c.logs], c.recovery_fork) for c in chains] == [
        ([1200, 1300, 1400], FORK_A),
        ([1340, 1500], FORK_B),
    ]
    assert chain.find_gaps(records) == []
    assert chain.restorable_windows(records) == [
        chain.TimeWindow(at(60), at(90)),
        chain.TimeWindow(at(100), at(120)),
    ]
    ranges = {(r.recovery_fork, r.first, r.last) for r in chain.restorable_lsn_ranges(records)}
    assert ranges == {(FORK_A, 1099, 1399), (FORK_B, 1319, 1499)}


@pytest.mark.parametrize("order", range(3))
def test_the_planner_picks_the_fork_that_holds_the_point(order: int) -> None:
    plans = planner.RestorePlanner(orders(two_forks())[order])
    assert ids(plans.plan(at(85))) == ["F_A", "L1", "L2", "L3"]
    assert ids(plans.plan(at(102))) == ["F_A", "D_B", "S"]  # the restored full's differential
    assert ids(plans.plan(at(115))) == ["F_B", "L4"]
    assert ids(plans.plan(planner.AtLsn(1290))) == ["F_A", "L1", "L2"]  # only fork A has it
    assert ids(plans.plan(planner.AtLsn(1450))) == ["F_B", "L4"]  # only fork B has it
    with pytest.raises(PlanError) as ambiguous:
        plans.plan(planner.AtLsn(1330))  # both forks hold LSN 1330
    assert ambiguous.value.code == ErrorCode.RESTORE_POINT_AMBIGUOUS
    assert FORK_A in ambiguous.value.message
    assert FORK_B in ambiguous.value.message
    on_b = plans.plan(planner.AtLsn(1330, recovery_fork=FORK_B))
    assert (ids(on_b), on_b.stop_lsn) == (["F_A", "D_B", "S"], 1330)
    on_a = plans.plan(planner.AtLsn(1330, recovery_fork=FORK_A))
    assert ids(on_a) == ["F_A", "L1", "L2", "L3"]
    with pytest.raises(PlanError) as gap:
        plans.plan(at(95))  # after fork A's last log, before anything on fork B
    assert gap.value.code == ErrorCode.RESTORE_POINT_IN_LOG_GAP
    for target in (at(85), at(102), at(115)):
        assert accepts([p.record for p in plans.plan(target).steps]) is None


def test_points_from_before_forks_were_recorded_join_the_first_known_fork() -> None:
    points = [
        point("F", FULL, 1000, 1100, 5),  # fork unknown (an older manifest)
        point("L1", LOG, 1000, 1200, 10),
        point("L2", LOG, 1200, 1300, 15, fork=FORK_A),
        point("L3", LOG, 1300, 1400, 20, fork=FORK_A),
    ]
    assert ids(planner.plan_restore(points, at(18))) == ["F", "L1", "L2", "L3"]
    assert len(chain.split_chains([p.record for p in points])) == 1


# -- two fulls of different forks with one checkpoint LSN -------------------------------------

FORK_C = "C0000000-0000-4000-8000-00000000000C"


def forks_sharing_a_checkpoint(*, uuids: bool = True) -> list[RecoveryPoint]:
    """Fork A: F1, F2 (checkpoint 1310).  At 01:35 F1 is restored in place: fork B begins
    at 1100 and reaches 1310 again; its full F_B has F2's checkpoint LSN, and D_B is its
    differential.  At 01:58 the old fork's F2 is restored in place (fork C begins at
    1400): D_C, taken after that restore, is based on F2, but F_B finished later with the
    same checkpoint LSN.  (A differential after restoring a full is on a fork newer than
    any full with that full's checkpoint: the new fork's LSNs begin past its end.  So the
    collision needs the second restore.)  Without ``uuids`` the points were written
    before backup set uuids were recorded."""

    def named(uuid: str, base: str = "") -> dict[str, str]:
        return {"backup_set_uuid": uuid, "differential_base_guid": base} if uuids else {}

    return [
        point("F1", FULL, 1000, 1100, 60, checkpoint_lsn=1010, fork=FORK_A, **named("u-f1")),
        point("L1", LOG, 1000, 1200, 70, fork=FORK_A),
        point("F2", FULL, 1300, 1400, 80, checkpoint_lsn=1310, fork=FORK_A, **named("u-f2")),
        point("L2", LOG, 1200, 1500, 90, fork=FORK_A),
        point("S1", LOG, 1100, 1250, 100, fork=(FORK_A, FORK_B), fork_point_lsn=1100),
        point("F_B", FULL, 1300, 1380, 110, checkpoint_lsn=1310, fork=FORK_B, **named("u-fb")),
        point("D_B", DIFF, 1390, 1420, 112, checkpoint_lsn=1395, differential_base_lsn=1310,
              fork=FORK_B, **named("u-db", "u-fb")),
        point("L_B", LOG, 1250, 1450, 115, fork=FORK_B),
        point("D_C", DIFF, 1420, 1460, 125, checkpoint_lsn=1430, differential_base_lsn=1310,
              fork=FORK_C, **named("u-dc", "u-f2")),
        point("S2", LOG, 1400, 1480, 130, fork=(FORK_A, FORK_C), fork_point_lsn=1400),
    ]  # fmt: skip


def _pairs(points: list[RecoveryPoint]) -> set[tuple[str, str]]:
    index = chain.ChainIndex(points, lambda p: p.record)
    return {(full.id, diff.id) for full, diff in index.differentials}


@pytest.mark.parametrize("order", range(3))
def test_a_differential_is_paired_by_the_backup_set_it_names(order: int) -> None:
    points = orders(forks_sharing_a_checkpoint())[order]
    assert _pairs(points) == {("F_B", "D_B"), ("F2", "D_C")}
    plans = planner.RestorePlanner(points)
    assert ids(plans.plan(planner.AtRecoveryPoint("D_C"))) == ["F2", "D_C"]
    assert ids(plans.plan(planner.AtRecoveryPoint("D_B"))) == ["F_B", "D_B"]
    after = plans.plan(at(127))
    assert (ids(after), after.stop_time) == (["F2", "D_C", "S2"], at(127))
    targets = [at(127), at(130), planner.AtRecoveryPoint("D_C"), planner.AtRecoveryPoint("D_B")]
    for target in targets:
        assert accepts([p.record for p in plans.plan(target).steps]) is None, target


@pytest.mark.parametrize("order", range(3))
def test_without_uuids_the_pairing_falls_back_to_forks_and_finish_times(order: int) -> None:
    """D_B is on F_B's fork; D_C is on neither full's fork, so the later full is taken:
    the pairing SQL Server refuses (3136), which only the uuids could have avoided."""
    points = orders(forks_sharing_a_checkpoint(uuids=False))[order]
    assert _pairs(points) == {("F_B", "D_B"), ("F_B", "D_C")}
    plan = planner.RestorePlanner(points).plan(planner.AtRecoveryPoint("D_C"))
    assert ids(plan) == ["F_B", "D_C"]
    assert accepts([p.record for p in plan.steps]) is None  # by LSN alone it looks right
    named = {p.id: p.record for p in forks_sharing_a_checkpoint()}
    refused = accepts([named[i] for i in ids(plan)])
    assert refused is not None
    assert refused.startswith("3136")


# -- the rules one pair at a time --------------------------------------------------------------


def test_pair_rules_respect_forks_and_empty_logs() -> None:
    base = backup_record(FULL, first_lsn=1000, last_lsn=1300, fork=FORK_B)
    spanning = backup_record(LOG, first_lsn=1251, last_lsn=1340, fork=(FORK_A, FORK_B),
                             fork_point_lsn=1251)  # fmt: skip
    old = backup_record(LOG, first_lsn=1200, last_lsn=1340, fork=FORK_A)
    assert chain.log_follows_base(spanning, base)
    assert not chain.log_follows_base(old, base)
    assert not chain.log_follows_log(backup_record(LOG, first_lsn=1100, last_lsn=1251,
                                                   fork=FORK_A), spanning)  # fmt: skip
    empty = backup_record(LOG, first_lsn=1340, last_lsn=1340, fork=FORK_B)
    assert empty.is_empty_log
    assert chain.log_follows_log(spanning, empty)
    assert spanning.fork_at(1250) == FORK_A
    assert spanning.fork_at(1251) == FORK_B


# -- properties over random real-shaped histories ----------------------------------------------


def _answers(points: list[RecoveryPoint], targets: list[object]) -> list[object]:
    records = [p.record for p in points]
    out: list[object] = [
        [(c.recovery_fork, [r.backup_set_id for r in c.logs]) for c in chain.split_chains(records)],
        [(g.after.backup_set_id, g.before.backup_set_id) for g in chain.find_gaps(records)],
        chain.restorable_windows(records),
        sorted(chain.restorable_lsn_ranges(records), key=repr),
    ]
    plans = planner.RestorePlanner(points)
    for target in targets:
        try:
            plan = plans.plan(target)  # type: ignore[arg-type]
            out.append((ids(plan), plan.stop_time, plan.stop_lsn))
        except PlanError as exc:
            out.append(exc.code)
    return out


def _targets(points: list[RecoveryPoint], rng: random.Random) -> list[object]:
    windows = planner.recovery_window(points)
    targets: list[object] = [planner.Latest()]
    for w in windows:
        span = (w.end - w.start).total_seconds()
        targets += [w.start, w.end, w.start + timedelta(seconds=rng.uniform(0, span))]
    for r in planner.recovery_lsn_ranges(points):
        lsn = rng.randint(r.first, r.last)
        targets.append(planner.AtLsn(lsn, r.database_guid, r.recovery_fork))
    targets += [planner.AtRecoveryPoint(p.id) for p in rng.sample(points, min(5, len(points)))]
    return targets


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_answer_is_independent_of_input_order(seed: int) -> None:
    points = random_history(seed)
    rng = random.Random(seed)
    targets = _targets(points, rng)
    expected = _answers(points, targets)
    shuffled = list(points)
    rng.shuffle(shuffled)
    assert _answers(list(reversed(points)), targets) == expected
    assert _answers(shuffled, targets) == expected


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_restorable_second_plans_to_a_sequence_sql_server_accepts(seed: int) -> None:
    points = random_history(seed)
    plans = planner.RestorePlanner(points)
    rng = random.Random(seed)
    for target in _targets(points, rng):
        if isinstance(target, planner.AtRecoveryPoint):
            continue  # a point may sit in a gap; the window targets must all plan
        plan = plans.plan(target)  # type: ignore[arg-type]
        records: list[BackupRecord] = [p.record for p in plan.steps]
        assert accepts(records) is None, (target, [p.id for p in plan.steps])
        assert len({r.recovery_fork for r in records if r.backup_type is LOG}) <= 1
        if plan.stop_time is not None:
            assert records[-1].backup_type is LOG
            assert not records[-1].is_empty_log
            assert records[-1].finish >= plan.stop_time
