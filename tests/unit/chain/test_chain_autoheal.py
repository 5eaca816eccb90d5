"""Auto-heal decisions and the agent's chain checks (``sqlharbor.domain.autoheal``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sqlharbor.domain.autoheal import (
    BackupFacts,
    HealPolicy,
    Reason,
    check_differential_base,
    check_log_continuity,
    next_backup,
)
from sqlharbor.domain.backupset import BackupRecord, BackupType, RecoveryModel
from sqlharbor.errors import ErrorCode
from tests.builders.records import backup_record

NOW = datetime(2024, 5, 1, tzinfo=UTC)
HEALTHY = BackupFacts(
    recovery_model=RecoveryModel.FULL,
    database_guid="G1",
    database_name="sales",
    has_full=True,
    last_full_finish=NOW - timedelta(days=1),
    last_full_checkpoint_lsn=100,
    recovery_model_at_last_backup=RecoveryModel.FULL,
    database_guid_at_last_backup="G1",
)


@pytest.mark.parametrize(
    ("requested", "changes", "expected", "reason"),
    [
        (BackupType.LOG, {}, BackupType.LOG, Reason.SCHEDULED),
        (BackupType.DIFFERENTIAL, {}, BackupType.DIFFERENTIAL, Reason.SCHEDULED),
        (
            BackupType.LOG,
            {"has_full": False, "last_full_finish": None},
            BackupType.FULL,
            Reason.NO_FULL_BACKUP,
        ),
        (
            BackupType.LOG,
            {"last_error_code": ErrorCode.SQL_LSN_VALIDATION_FAILURE},
            BackupType.FULL,
            Reason.LOG_CHAIN_BROKEN,
        ),
        (
            BackupType.DIFFERENTIAL,
            {"last_error_code": ErrorCode.PARENT_FULL_BACKUP_MISSING},
            BackupType.FULL,
            Reason.PARENT_FULL_MISSING,
        ),
        (
            BackupType.LOG,
            {"recovery_model_at_last_backup": RecoveryModel.SIMPLE},
            BackupType.FULL,
            Reason.RECOVERY_MODEL_CHANGED,
        ),
        (BackupType.LOG, {"database_guid": "G2"}, BackupType.FULL, Reason.DATABASE_OVERWRITTEN),
        (
            BackupType.LOG,
            {"recovery_fork_guid": "F2", "recovery_fork_at_last_backup": "F1"},
            BackupType.FULL,
            Reason.RESTORED_IN_PLACE,
        ),
        (
            BackupType.DIFFERENTIAL,
            {"recovery_fork_guid": "F2", "recovery_fork_at_last_backup": "F1"},
            BackupType.FULL,
            Reason.RESTORED_IN_PLACE,
        ),
        # a fork nobody recorded (an older agent or status) is not a reason for a full
        (BackupType.LOG, {"recovery_fork_guid": "F2"}, BackupType.LOG, Reason.SCHEDULED),
        (
            BackupType.LOG,
            {"recovery_fork_guid": "F1", "recovery_fork_at_last_backup": "F1"},
            BackupType.LOG,
            Reason.SCHEDULED,
        ),
        (
            BackupType.LOG,
            {"last_full_finish": NOW - timedelta(days=16)},
            BackupType.FULL,
            Reason.FULL_TOO_OLD,
        ),
        (
            BackupType.LOG,
            {
                "recovery_model": RecoveryModel.SIMPLE,
                "recovery_model_at_last_backup": RecoveryModel.SIMPLE,
            },
            None,
            Reason.SIMPLE_RECOVERY,
        ),
        (BackupType.LOG, {"recovery_model": RecoveryModel.SIMPLE}, None, Reason.SIMPLE_RECOVERY),
        (
            BackupType.DIFFERENTIAL,
            {"database_name": "master"},
            BackupType.FULL,
            Reason.SYSTEM_DATABASE,
        ),
        (BackupType.LOG, {"database_name": "MASTER"}, None, Reason.SYSTEM_DATABASE),
        (BackupType.LOG, {"read_only": True}, None, Reason.READ_ONLY),
        (BackupType.DIFFERENTIAL, {"read_only": True}, None, Reason.READ_ONLY),
        (BackupType.FULL, {"read_only": True}, BackupType.FULL, Reason.SCHEDULED),
        (BackupType.FULL, {"database_guid": "G2"}, BackupType.FULL, Reason.SCHEDULED),
    ],
)
def test_decisions(
    requested: BackupType, changes: dict, expected: BackupType | None, reason: Reason
) -> None:
    decision = next_backup(requested, replace(HEALTHY, **changes), NOW)
    assert decision.backup_type is expected
    assert decision.reason is reason
    assert decision.message
    assert decision.error_code is None


def test_simple_log_message_and_on_demand_refusal() -> None:
    state = replace(
        HEALTHY,
        recovery_model=RecoveryModel.SIMPLE,
        recovery_model_at_last_backup=RecoveryModel.SIMPLE,
    )
    skipped = next_backup(BackupType.LOG, state, NOW)
    assert "database uses SIMPLE recovery: log backups are skipped; fulls only" in skipped.message
    refused = next_backup(BackupType.LOG, state, NOW, on_demand=True)
    assert refused.backup_type is None
    assert refused.error_code == ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE


def test_policy_sets_the_full_age_limit() -> None:
    state = replace(HEALTHY, last_full_finish=NOW - timedelta(days=3))
    assert next_backup(BackupType.LOG, state, NOW).backup_type is BackupType.LOG
    strict = HealPolicy(max_full_age=timedelta(days=2))
    decision = next_backup(BackupType.LOG, state, NOW, strict)
    assert decision.reason is Reason.FULL_TOO_OLD
    assert decision.is_heal


def _log(first: int, last: int) -> BackupRecord:
    return backup_record(
        BackupType.LOG,
        name="sales",
        guid="G1",
        first_lsn=first,
        last_lsn=last,
        checkpoint_lsn=last - 1,
        database_backup_lsn=100,
        differential_base_lsn=None,
        start=NOW,
        finish=NOW,
        size_bytes=0,
    )


def test_log_continuity() -> None:
    assert check_log_continuity(200, _log(200, 250)).ok
    assert check_log_continuity(210, _log(200, 250)).ok  # first log after a base
    broken = check_log_continuity(200, _log(230, 250))
    assert not broken.ok
    assert broken.code == ErrorCode.SQL_LSN_VALIDATION_FAILURE
    assert "230" in broken.message
    assert "200" in broken.message
    assert check_log_continuity(None, _log(200, 250)).code == ErrorCode.PARENT_FULL_BACKUP_MISSING
    assert check_log_continuity(250, _log(250, 250)).ok  # an idle database's empty log


def test_a_log_spanning_a_fork_breaks_our_chain() -> None:
    spanning = replace(
        _log(180, 240),
        first_recovery_fork_guid="F1",
        last_recovery_fork_guid="F2",
        fork_point_lsn=180,
    )
    check = check_log_continuity(200, spanning)  # LSNs alone would look continuous
    assert not check.ok
    assert check.code == ErrorCode.SQL_LSN_VALIDATION_FAILURE
    assert "restored in place" in check.message


def test_differential_base_moved() -> None:
    diff = replace(_log(300, 310), backup_type=BackupType.DIFFERENTIAL, differential_base_lsn=100)
    assert check_differential_base(100, diff).ok
    moved = check_differential_base(90, diff)
    assert not moved.ok
    assert moved.code == ErrorCode.SQL_LSN_VALIDATION_FAILURE
