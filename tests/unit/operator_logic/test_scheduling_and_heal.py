"""Scheduling (what the policy asks for now) and auto-heal (what the chain needs)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlharbor_operator.accounting import apply_failure, apply_success
from sqlharbor_operator.heal import heal
from sqlharbor_operator.scheduling import due, parse_duration, validate_policy

from sqlharbor.api import JobReason
from sqlharbor.domain.backupset import BackupType, RecoveryModel
from sqlharbor.errors import ErrorCode, InvalidPolicy
from tests.builders.operator import T0, database, empty, failure, policy, resolved, result


def test_durations() -> None:
    assert parse_duration("30s") == timedelta(seconds=30)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("15 minutes")


def test_no_full_yet_asks_for_a_full_now() -> None:
    assert due(policy().spec, None, RecoveryModel.FULL, T0).backup_type is BackupType.FULL


def test_log_due_after_the_interval_and_never_under_simple() -> None:
    status = apply_success(empty(), result(BackupType.FULL, T0), "j", False)
    spec = policy(log="15m").spec
    assert due(spec, status, RecoveryModel.FULL, T0 + timedelta(minutes=14)).backup_type is None
    at = due(spec, status, RecoveryModel.FULL, T0 + timedelta(minutes=15))
    assert at.backup_type is BackupType.LOG
    simple = due(spec, status, RecoveryModel.SIMPLE, T0 + timedelta(minutes=15))
    assert simple.backup_type is None


def test_weekly_full_and_daily_differential_follow_cron() -> None:
    status = apply_success(empty(), result(BackupType.FULL, T0), "j", False)  # Sunday 12:00
    spec = policy(log=None).spec
    monday_1am = T0.replace(day=23, hour=1)
    assert (
        due(spec, status, RecoveryModel.FULL, monday_1am - timedelta(seconds=1)).backup_type is None
    )
    assert due(spec, status, RecoveryModel.FULL, monday_1am).backup_type is BackupType.DIFFERENTIAL
    next_sunday = T0.replace(day=29, hour=1)
    assert due(spec, status, RecoveryModel.FULL, next_sunday).backup_type is BackupType.FULL


def test_next_time_is_reported_when_nothing_is_due() -> None:
    status = apply_success(empty(), result(BackupType.FULL, T0), "j", False)
    d = due(policy(log="15m").spec, status, RecoveryModel.FULL, T0 + timedelta(minutes=1))
    assert d.backup_type is None
    assert d.next_time == T0 + timedelta(minutes=15)


def test_invalid_cron_values_and_time_zones_are_named() -> None:
    with pytest.raises(InvalidPolicy, match=r"schedules\.full\.schedule"):
        validate_policy(policy(full="*/0 * * * *").spec)  # the pattern admits it; cron does not
    with pytest.raises(InvalidPolicy, match="Mars/Olympus"):
        validate_policy(policy(tz="Mars/Olympus").spec)


def test_first_full_is_scheduled_not_auto_heal() -> None:
    kind, reason, message = heal(BackupType.FULL, None, resolved(), T0)
    assert (kind, reason, message) == (BackupType.FULL, JobReason.SCHEDULED, None)


def test_a_log_before_any_full_becomes_a_full() -> None:
    kind, reason, message = heal(BackupType.LOG, empty(), resolved(), T0)
    assert kind is BackupType.FULL
    assert reason is JobReason.AUTO_HEAL
    assert message is not None
    assert "NoFullBackup" in message


def test_chain_break_reported_by_the_agent_makes_the_next_backup_a_full() -> None:
    status = apply_success(empty(), result(BackupType.FULL, T0), "j", False)
    broken = apply_failure(
        status, failure(ErrorCode.SQL_LSN_VALIDATION_FAILURE, "gap"), T0 + timedelta(minutes=1)
    )
    assert broken.chain is not None
    assert broken.chain.full_required == "LogChainBroken"
    kind, reason, message = heal(BackupType.LOG, broken, resolved(), T0 + timedelta(minutes=2))
    assert kind is BackupType.FULL
    assert reason is JobReason.AUTO_HEAL
    assert message is not None
    assert "LogChainBroken" in message
    healed = apply_success(
        broken, result(BackupType.FULL, T0 + timedelta(minutes=3), rp="f2"), "j2", False
    )
    assert healed.chain is not None
    assert healed.chain.full_required is None
    assert healed.recovery_window is not None
    assert healed.recovery_window.earliest == T0 + timedelta(minutes=3), "a new chain starts"
    kind, reason, _ = heal(BackupType.LOG, healed, resolved(), T0 + timedelta(minutes=4))
    assert (kind, reason) == (BackupType.LOG, JobReason.SCHEDULED)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"model": RecoveryModel.BULK_LOGGED}, "RecoveryModelChanged"),
        ({"guid": "11111111-2222-3333-4444-555555555555"}, "DatabaseOverwritten"),
    ],
)
def test_model_switch_and_overwrite_heal_with_a_full(
    change: dict[str, object], reason: str
) -> None:
    status = apply_success(empty(), result(BackupType.FULL, T0), "j", False)
    now_db = database(**change)
    kind, why, message = heal(BackupType.LOG, status, resolved(now_db), T0 + timedelta(hours=1))
    assert kind is BackupType.FULL
    assert why is JobReason.AUTO_HEAL
    assert message is not None
    assert reason in message


def test_full_older_than_max_full_age_heals() -> None:
    status = apply_success(empty(), result(BackupType.FULL, T0), "j", False)
    pol = policy(max_full_age="24h")
    kind, _, message = heal(BackupType.LOG, status, resolved(pol=pol), T0 + timedelta(hours=25))
    assert kind is BackupType.FULL
    assert message is not None
    assert "FullTooOld" in message


def test_simple_recovery_skips_logs_and_read_only_skips_differentials() -> None:
    status = apply_success(
        empty(), result(BackupType.FULL, T0, model=RecoveryModel.SIMPLE), "j", False
    )
    simple = resolved(database(model=RecoveryModel.SIMPLE))
    assert heal(BackupType.LOG, status, simple, T0)[0] is None
    ro = resolved(database(read_only=True))
    assert heal(BackupType.DIFFERENTIAL, status, ro, T0)[0] is None
