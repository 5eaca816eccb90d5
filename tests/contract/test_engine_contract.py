"""The Engine Protocol's contract for every engine: backups, chain, history, restore, rights."""

from __future__ import annotations

import io
from datetime import UTC

import pytest
from sqlharbor_agent.engines.base import RestoreOptions, RestoreStep, StopAt

from sqlharbor.domain.backupset import (
    BackupRecord,
    BackupRequest,
    BackupType,
    DatabaseState,
    RecoveryModel,
)
from sqlharbor.errors import EngineError, ErrorCode

from .harness import EngineHarness, tick, wait_until_after


def take(
    harness: EngineHarness, name: str, kind: BackupType, copy_only: bool = False
) -> tuple[BackupRecord, bytes]:
    sink = io.BytesIO()
    moved: list[int] = []
    record = harness.engine.backup(BackupRequest(name, kind, copy_only), sink, moved.append)
    data = sink.getvalue()
    assert sum(moved) == len(data)
    assert record.backup_type is kind
    assert record.database_name == name
    assert record.is_copy_only is copy_only
    assert record.start.tzinfo is not None
    assert record.finish >= record.start
    assert data
    return record, data


def test_permission_check_passes_for_a_sysadmin(harness: EngineHarness) -> None:
    check = harness.engine.check_permissions()
    assert check.ok
    assert check.login


def test_permission_check_names_the_fix(harness: EngineHarness) -> None:
    if not harness.can_revoke_sysadmin:
        pytest.skip("revoking sysadmin from the test login on a real server would lock it out")
    harness.revoke_sysadmin()
    check = harness.engine.check_permissions()
    assert not check.ok
    assert check.code == ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP
    assert check.remediation_tsql is not None
    assert check.remediation_tsql.startswith("ALTER SERVER ROLE [sysadmin] ADD MEMBER [")


def test_discovery_lists_a_new_database(harness: EngineHarness) -> None:
    name = harness.new_database_name()
    harness.create_database(name)
    found = {d.name: d for d in harness.engine.discover()}
    assert name in found
    db = found[name]
    assert db.recovery_model is RecoveryModel.FULL
    assert db.state is DatabaseState.ONLINE
    assert db.database_guid


def test_full_differential_and_log_chain(harness: EngineHarness) -> None:
    name = harness.new_database_name()
    harness.create_database(name)
    harness.write_rows(name, {1: b"a"})
    full, _ = take(harness, name, BackupType.FULL)
    harness.write_rows(name, {2: b"b"})
    diff, _ = take(harness, name, BackupType.DIFFERENTIAL)
    harness.write_rows(name, {3: b"c"})
    log1, _ = take(harness, name, BackupType.LOG)
    harness.write_rows(name, {4: b"d"})
    log2, _ = take(harness, name, BackupType.LOG)
    copy, _ = take(harness, name, BackupType.FULL, copy_only=True)

    assert diff.differential_base_lsn == full.checkpoint_lsn
    # msdb's backup_set_uuid / differential_base_guid: every set has its own, and the
    # differential names its full's
    sets = (full, diff, log1, log2, copy)
    assert len({r.backup_set_uuid for r in sets}) == len(sets)
    assert all(r.backup_set_uuid for r in sets)
    assert diff.differential_base_guid == full.backup_set_uuid
    assert log1.first_lsn <= full.last_lsn <= log1.last_lsn
    assert log2.first_lsn == log1.last_lsn
    assert log2.last_lsn > log2.first_lsn
    assert not copy.is_differential_base
    assert full.is_differential_base
    assert len({full.database_guid, diff.database_guid, log1.database_guid}) == 1


def test_history_lists_backups_oldest_first(harness: EngineHarness) -> None:
    name = harness.new_database_name()
    harness.create_database(name)
    full, _ = take(harness, name, BackupType.FULL)
    harness.write_rows(name, {1: b"x"})
    log, _ = take(harness, name, BackupType.LOG)
    history = harness.engine.history(name)
    ids = [r.backup_set_id for r in history]
    assert ids.index(full.backup_set_id) < ids.index(log.backup_set_id)
    assert [r.finish for r in history] == sorted(r.finish for r in history)
    assert all(r.finish.tzinfo is not None for r in history)
    later = harness.engine.history(name, since=log.finish)
    assert full.backup_set_id not in [r.backup_set_id for r in later]


def test_point_in_time_restore_of_a_small_database(harness: EngineHarness) -> None:
    name = harness.new_database_name()
    harness.create_database(name)
    harness.write_rows(name, {1: b"before"})
    full, full_data = take(harness, name, BackupType.FULL)
    harness.write_rows(name, {2: b"wanted"})
    after_wanted = harness.now()
    stop_at = after_wanted + tick()
    wait_until_after(harness, stop_at + tick())
    harness.write_rows(name, {3: b"too late", 1: b"changed"})
    log, log_data = take(harness, name, BackupType.LOG)

    def steps() -> list[RestoreStep]:
        return [
            RestoreStep(full, io.BytesIO(full_data)),
            RestoreStep(log, io.BytesIO(log_data)),
        ]

    pitr = name + "_pitr"
    harness.engine.restore(RestoreOptions(pitr), steps(), StopAt(time=stop_at.astimezone(UTC)))
    assert harness.read_rows(pitr) == {1: b"before", 2: b"wanted"}

    latest = name + "_latest"
    harness.engine.restore(RestoreOptions(latest), steps())
    assert harness.read_rows(latest) == {1: b"changed", 2: b"wanted", 3: b"too late"}


def test_restore_over_an_existing_database_needs_replace(harness: EngineHarness) -> None:
    name = harness.new_database_name()
    harness.create_database(name)
    full, data = take(harness, name, BackupType.FULL)
    with pytest.raises(EngineError) as info:
        harness.engine.restore(RestoreOptions(name), [RestoreStep(full, io.BytesIO(data))])
    assert info.value.code == ErrorCode.TARGET_EXISTS
