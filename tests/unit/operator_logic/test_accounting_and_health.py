"""Folding job results into status, health and Ready, batching into jobs."""

from __future__ import annotations

from datetime import timedelta

from sqlharbor_operator.accounting import apply_failure, apply_success, refresh_rpo
from sqlharbor_operator.dispatch import MAX_DATABASES_PER_JOB, DueBackup, batches, job_body
from sqlharbor_operator.health import assess

from sqlharbor.api import ChainHealth, Health, JobReason, contract
from sqlharbor.domain.backupset import BackupType, RecoveryModel
from sqlharbor.errors import ErrorCode
from tests.builders.operator import T0, empty, failure, result


def _chain(n: int) -> object:
    status = apply_success(empty(), result(BackupType.FULL, T0, first=10, last=100), "j0", False)
    for i in range(n):
        status = apply_success(
            status,
            result(
                BackupType.LOG,
                T0 + timedelta(minutes=i + 1),
                first=100 + i * 10,
                last=110 + i * 10,
                rp=f"l{i}",
            ),
            f"j{i + 1}",
            False,
        )
    return status


def test_window_and_chain_advance_with_each_log() -> None:
    status = _chain(3)
    assert status.recovery_window.earliest == T0
    assert status.recovery_window.latest == T0 + timedelta(minutes=3)
    assert status.chain.last_lsn == "130"
    assert status.recovery_points == 4
    assert status.log_chain is ChainHealth.HEALTHY


def test_applying_the_same_result_twice_changes_nothing() -> None:
    status = _chain(1)
    again = apply_success(
        status,
        result(BackupType.LOG, T0 + timedelta(minutes=1), first=100, last=110, rp="l0"),
        "j1",
        False,
    )
    assert again == status
    failed = apply_failure(status, failure("X"), T0 + timedelta(minutes=5))
    assert apply_failure(failed, failure("X"), T0 + timedelta(minutes=5)) == failed


def test_copy_only_full_is_counted_but_moves_neither_base_nor_window() -> None:
    status = _chain(1)
    after = apply_success(
        status,
        result(BackupType.FULL, T0 + timedelta(minutes=9), checkpoint=999, rp="c"),
        "jc",
        True,
    )
    assert after.chain == status.chain
    assert after.last_full == status.last_full
    assert after.recovery_window == status.recovery_window
    assert after.recovery_points == status.recovery_points + 1


def test_ready_is_never_true_while_backups_fail() -> None:
    status = apply_failure(
        _chain(2),
        failure(ErrorCode.OPENING_SQL_CONNECTION, "no route"),
        T0 + timedelta(minutes=3),
    )
    verdict = assess(
        status,
        now=T0 + timedelta(minutes=3),
        suspended=False,
        problem=None,
        log_interval=timedelta(minutes=1),
        recovery_model=RecoveryModel.FULL,
    )
    assert verdict.health is Health.UNHEALTHY
    assert not verdict.ready
    assert "no route" in verdict.message


def test_overdue_logs_make_it_unhealthy_and_fresh_ones_healthy() -> None:
    status = _chain(2)
    fresh = assess(
        status,
        now=T0 + timedelta(minutes=3),
        suspended=False,
        problem=None,
        log_interval=timedelta(minutes=1),
        recovery_model=RecoveryModel.FULL,
    )
    assert fresh.ready
    stale = assess(
        status,
        now=T0 + timedelta(minutes=10),
        suspended=False,
        problem=None,
        log_interval=timedelta(minutes=1),
        recovery_model=RecoveryModel.FULL,
    )
    assert stale.health is Health.UNHEALTHY
    assert stale.reason == "LogBackupOverdue"


def test_problems_and_suspension_win() -> None:
    status = _chain(1)
    kwargs = {"now": T0, "log_interval": None, "recovery_model": RecoveryModel.FULL}
    assert assess(status, suspended=True, problem=None, **kwargs).health is Health.SUSPENDED
    v = assess(
        status,
        suspended=False,
        problem=(ErrorCode.VAULT_NOT_FOUND, "BackupVault x is gone"),
        **kwargs,
    )
    assert (v.health, v.reason) == (Health.UNHEALTHY, ErrorCode.VAULT_NOT_FOUND)


def test_rpo_is_the_age_of_the_latest_restorable_second() -> None:
    status = refresh_rpo(_chain(1), T0 + timedelta(minutes=1, seconds=42))
    assert status.rpo_seconds == 42
    assert status.rpo == "42s"


def _due(i: int, kind: BackupType = BackupType.LOG, instance: str = "i1") -> DueBackup:
    return DueBackup(
        "ns",
        f"pd{i}",
        f"db{i}",
        instance,
        "v",
        kind,
        JobReason.SCHEDULED,
        None,
        str(100 + i),
        None,
        3,
    )


def test_logs_of_many_databases_share_jobs_of_at_most_fifty() -> None:
    items = (
        [_due(i) for i in range(120)] + [_due(999, BackupType.FULL)] + [_due(1000, instance="i2")]
    )
    groups = list(batches(items))
    assert sorted(len(g) for g in groups) == [1, 1, 20, 50, 50]
    assert all(len(g) <= MAX_DATABASES_PER_JOB for g in groups)
    body = job_body(groups[0])
    assert body["spec"]["type"] == "Log"
    assert body["metadata"]["labels"][contract.LABEL_INSTANCE] == "i1"
    assert body["spec"]["databases"][0]["expectedLastLsn"] == "100"


def _instance(
    databases: list[str], *, exclude: list[str] | None = None, enabled: bool = True
) -> object:
    from sqlharbor.api import SqlInstance

    return SqlInstance.model_validate(
        {
            "kind": "SqlInstance",
            "metadata": {"name": "sql1", "namespace": "ns"},
            "spec": {
                "host": "vm1",
                "autoProtection": {
                    "enabled": enabled,
                    "policyRef": {"name": "std"},
                    "exclude": exclude or [],
                },
            },
            "status": {
                "databases": [
                    {
                        "name": n,
                        "databaseGuid": f"00000000-0000-0000-0000-{i:012d}",
                        "recoveryModel": "FULL",
                        "state": "ONLINE",
                    }
                    for i, n in enumerate(databases)
                ]
            },
        }
    )


def test_auto_protection_creates_what_is_missing_and_respects_exclusions() -> None:
    from sqlharbor_operator.autoprotect import resource_name, to_create

    from sqlharbor.api import ProtectedDatabase

    instance = _instance(
        ["master", "tempdb", "model", "Sales", "scratch_1", "Ops 'HQ'"], exclude=["scratch_*"]
    )
    already = ProtectedDatabase.model_validate(
        {
            "kind": "ProtectedDatabase",
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": {
                "instanceRef": {"name": "sql1"},
                "databaseName": "master",
                "policyRef": {"name": "other"},
            },
        }
    )
    bodies = to_create(instance, [already])
    names = sorted(b["spec"]["databaseName"] for b in bodies)
    assert names == ["Ops 'HQ'", "Sales"]
    meta = next(b["metadata"] for b in bodies if b["spec"]["databaseName"] == "Ops 'HQ'")
    assert meta["name"] == resource_name("sql1", "Ops 'HQ'")
    assert meta["name"].startswith("sql1-ops-hq-")
    assert meta["labels"][contract.LABEL_AUTO_PROTECTED] == "true"
    assert to_create(_instance(["Sales"], enabled=False), []) == []


def test_status_patches_clear_fields_that_became_none() -> None:
    from sqlharbor_operator.status_writes import with_nulls

    broken = apply_failure(
        _chain(1), failure(ErrorCode.SQL_LSN_VALIDATION_FAILURE), T0 + timedelta(minutes=2)
    )
    healed = apply_success(
        broken, result(BackupType.FULL, T0 + timedelta(minutes=3), rp="f"), "j", False
    )
    wire = healed.model_dump(mode="json", by_alias=True, exclude_none=True)
    body = with_nulls(healed.model_dump(mode="json", by_alias=True), wire)
    assert body["chain"]["fullRequired"] is None, "a merge patch must remove it on the server"
    assert body["lastError"] is None
    assert body["chain"]["baseCheckpointLsn"] == wire["chain"]["baseCheckpointLsn"]
