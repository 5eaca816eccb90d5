"""The simulated msdb: server name, media, server-local times (returned as UTC), other
tools' backups with and without COPY_ONLY, and instance files of the older layout."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlharbor_agent.engines.simulated import Operation, SimulatedEngine

from sqlharbor.domain import chain
from sqlharbor.domain.backupset import BackupType, MediaKind
from tests.builders.simulated import FakeClock, MemoryVault, work


def test_records_name_the_server_and_the_media(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    ours = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 5)
    theirs = engine.out_of_band_backup("sales", BackupType.LOG)
    striped = engine.out_of_band_backup("sales", BackupType.FULL, copy_only=True, stripes=4)
    assert engine.history("sales") == [ours, theirs, striped]
    for record in (ours, theirs, striped):
        assert record.server_name == "VM1\\SQL01"
        assert record.media is not None
        assert record.media.position == 1
    assert ours.media is not None
    assert theirs.media is not None
    assert striped.media is not None
    (device,) = ours.media.files
    assert device.kind is MediaKind.VIRTUAL_DEVICE
    assert str(uuid.UUID(device.name)) == device.name
    (file,) = theirs.media.files
    assert file.kind is MediaKind.DISK
    assert file.name.startswith("D:\\Backup\\sales\\")
    assert file.name.endswith(".trn")
    assert striped.media.stripes == 4
    assert [f.family for f in striped.media.files] == [1, 2, 3, 4]
    assert all(f.kind is MediaKind.DISK and f.name.endswith(".bak") for f in striped.media.files)
    assert len({r.media.media_set_id for r in (ours, theirs, striped) if r.media}) == 3
    # every backup set, ours or another tool's, has its own uuid
    uuids = [r.backup_set_uuid for r in (ours, theirs, striped)]
    assert all(uuids)
    assert len(set(uuids)) == 3


@pytest.mark.parametrize("time_zone", [4, -20, 0])
def test_a_non_utc_server_keeps_local_times_and_returns_utc(
    tmp_path: Path, clock: FakeClock, time_zone: int
) -> None:
    engine = SimulatedEngine(tmp_path, "VM1\\SQL01", clock=clock, time_zone=time_zone)
    try:
        engine.create_database("sales")
        started = clock.now
        work(engine, clock, 5)
        full = MemoryVault().backup(engine, "sales", BackupType.FULL)
        (record,) = engine.history("sales")
        assert record == full
        assert record.start == started + timedelta(seconds=5)
        assert record.start.utcoffset() == timedelta(0)
        # msdb's view: the server's wall clock and its offset in 15-minute units
        with sqlite3.connect(engine.path) as con:
            local_us, zone = con.execute(
                "SELECT start_local_us, time_zone FROM backupset"
            ).fetchone()
        local = datetime(1970, 1, 1) + timedelta(microseconds=local_us)
        assert zone == time_zone
        assert local == (record.start + timedelta(minutes=15 * time_zone)).replace(tzinfo=None)
        # ``since`` is UTC, compared exactly
        assert engine.history("sales", since=record.finish) == [record]
        assert engine.history("sales", since=record.finish + timedelta(microseconds=1)) == []
    finally:
        engine.close()


def test_the_offset_can_change_between_backups(tmp_path: Path, clock: FakeClock) -> None:
    """Each row keeps the offset it was written with (a daylight saving change, a move)."""
    first = SimulatedEngine(tmp_path, "I", clock=clock, time_zone=4)
    first.create_database("db")
    one = MemoryVault().backup(first, "db", BackupType.FULL)
    first.close()
    clock.tick(60)
    second = SimulatedEngine(tmp_path, "I", clock=clock, time_zone=8)
    try:
        two = MemoryVault().backup(second, "db", BackupType.FULL)
        assert second.history("db") == [one, two]
        assert two.finish - one.finish < timedelta(minutes=2)
    finally:
        second.close()


def test_time_zone_outside_msdb_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="15-minute units"):
        SimulatedEngine(tmp_path, "I", time_zone=127)


def test_other_tools_copy_only_full_leaves_the_differential_base(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    ours = vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 5)
    theirs = engine.out_of_band_backup("sales", BackupType.FULL, copy_only=True)
    assert theirs.is_copy_only
    assert theirs in engine.history("sales")
    diff = vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    assert chain.is_differential_of(diff, ours)
    assert diff.differential_base_guid == ours.backup_set_uuid != theirs.backup_set_uuid
    assert ours.differential_base_guid == theirs.differential_base_guid == ""  # fulls
    assert diff.differential_base_lsn == ours.checkpoint_lsn != theirs.checkpoint_lsn
    work(engine, clock, 5)
    log = vault.backup(engine, "sales", BackupType.LOG)
    assert chain.log_follows_base(log, ours)


def test_other_tools_copy_only_log_does_not_truncate(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 5)
    ours1 = vault.backup(engine, "sales", BackupType.LOG)
    work(engine, clock, 5)
    theirs = engine.out_of_band_backup("sales", BackupType.LOG, copy_only=True)
    assert theirs.is_copy_only
    assert theirs.first_lsn == ours1.last_lsn
    work(engine, clock, 5)
    ours2 = vault.backup(engine, "sales", BackupType.LOG)
    assert chain.log_follows_log(ours1, ours2)
    assert ours2.first_lsn == theirs.first_lsn
    assert theirs in engine.history("sales")
    assert chain.find_gaps([p.record for p in vault.points]) == []
    assert chain.find_gaps(engine.history("sales")) == []


def test_other_tools_full_and_log_move_the_base_and_truncate(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    vault.backup(engine, "sales", BackupType.FULL)
    work(engine, clock, 5)
    ours1 = vault.backup(engine, "sales", BackupType.LOG)
    their_full = engine.out_of_band_backup("sales", BackupType.FULL)
    work(engine, clock, 5)
    their_log = engine.out_of_band_backup("sales", BackupType.LOG)
    work(engine, clock, 5)
    ours2 = vault.backup(engine, "sales", BackupType.LOG)
    diff = vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    assert not their_full.is_copy_only
    assert not their_log.is_copy_only
    assert diff.differential_base_lsn == their_full.checkpoint_lsn
    assert diff.differential_base_guid == their_full.backup_set_uuid
    assert engine.history("sales")[-1].differential_base_guid == their_full.backup_set_uuid
    assert their_log.first_lsn == ours1.last_lsn
    assert ours2.first_lsn == their_log.last_lsn != ours1.last_lsn
    assert len(chain.find_gaps([p.record for p in vault.points])) == 1


_V0_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE databases (
    name TEXT PRIMARY KEY COLLATE NOCASE, guid TEXT NOT NULL UNIQUE,
    recovery_model TEXT NOT NULL, state TEXT NOT NULL, read_only INTEGER NOT NULL DEFAULT 0,
    is_system INTEGER NOT NULL DEFAULT 0, next_lsn INTEGER NOT NULL,
    last_event_us INTEGER NOT NULL, diff_base_lsn INTEGER, full_checkpoint_lsn INTEGER,
    last_log_backup_lsn INTEGER);
CREATE TABLE rows (guid TEXT NOT NULL, k INTEGER NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (guid, k)) WITHOUT ROWID;
CREATE TABLE journal (guid TEXT NOT NULL, lsn INTEGER NOT NULL, seq INTEGER NOT NULL,
    commit_us INTEGER NOT NULL, op INTEGER NOT NULL, k INTEGER NOT NULL, payload BLOB,
    PRIMARY KEY (guid, lsn, seq)) WITHOUT ROWID;
CREATE INDEX journal_by_time ON journal (guid, commit_us);
CREATE TABLE backupset (id INTEGER PRIMARY KEY AUTOINCREMENT,
    backup_set_id TEXT NOT NULL UNIQUE, database_name TEXT NOT NULL COLLATE NOCASE,
    database_guid TEXT NOT NULL, backup_type TEXT NOT NULL, is_copy_only INTEGER NOT NULL,
    first_lsn INTEGER NOT NULL, last_lsn INTEGER NOT NULL, checkpoint_lsn INTEGER NOT NULL,
    database_backup_lsn INTEGER NOT NULL, differential_base_lsn INTEGER,
    start_us INTEGER NOT NULL, finish_us INTEGER NOT NULL, recovery_model TEXT NOT NULL,
    begins_log_chain INTEGER NOT NULL, size_bytes INTEGER NOT NULL,
    out_of_band INTEGER NOT NULL);
CREATE INDEX backupset_by_name ON backupset (database_name, finish_us);
INSERT INTO databases VALUES ('db', 'G1', 'FULL', 'ONLINE', 0, 0, 12, 1709294400000010,
    10, 10, 10);
INSERT INTO rows VALUES ('G1', 1, x'6f6e65');
INSERT INTO journal VALUES ('G1', 11, 0, 1709294400000005, 1, 1, x'6f6e65');
INSERT INTO backupset VALUES (1, 'b1', 'db', 'G1', 'Full', 0, 10, 12, 10, 0, NULL,
    1709294400000006, 1709294400000010, 'FULL', 1, 100, 0);
"""


def test_an_instance_file_of_the_older_layout_is_migrated(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "I.sqlite3"
    with sqlite3.connect(path) as con:
        con.executescript(_V0_SCHEMA)
    con.close()
    engine = SimulatedEngine(tmp_path, "I", clock=clock, time_zone=4)
    try:
        (record,) = engine.history("db")
        assert record.finish == datetime(2024, 3, 1, 12, 0, 0, 10, tzinfo=UTC)
        assert record.last_lsn == 12
        info = engine.database("db")
        assert info.recovery_fork_guid
        assert engine.rows_as_of("db", lsn=11) == {1: b"one"}
        commit = engine.commit("db", [Operation(2, b"two")])
        assert commit.lsn == 12
        assert engine.rows_as_of("db", time=commit.commit_time) == {1: b"one", 2: b"two"}
        log = MemoryVault().backup(engine, "db", BackupType.LOG)
        assert log.first_lsn == 10
        assert log.first_recovery_fork_guid == info.recovery_fork_guid
        assert engine.history("db")[-1] == log
    finally:
        engine.close()


def test_an_instance_file_of_version_2_keeps_opening(tmp_path: Path, clock: FakeClock) -> None:
    """Version 2 kept no ``differential_base_guid`` in history: its differentials read it
    as unknown (paired by LSN), the ones taken after the upgrade name their full."""
    engine = SimulatedEngine(tmp_path, "I", clock=clock)
    engine.create_database("db")
    vault = MemoryVault()
    full = vault.backup(engine, "db", BackupType.FULL)
    engine.commit("db", [Operation(1, b"one")])
    old_diff = vault.backup(engine, "db", BackupType.DIFFERENTIAL)
    engine.close()
    with sqlite3.connect(engine.path) as con:
        con.execute("ALTER TABLE backupset DROP COLUMN differential_base_guid")
        con.execute("PRAGMA user_version = 2")
    con.close()
    engine = SimulatedEngine(tmp_path, "I", clock=clock)
    try:
        history = engine.history("db")
        assert [r.backup_set_uuid for r in history] == [
            full.backup_set_uuid,
            old_diff.backup_set_uuid,
        ]
        assert history[1].differential_base_guid == ""
        assert chain.differential_base(history[1], history) == history[0]
        engine.commit("db", [Operation(2, b"two")])
        new_diff = vault.backup(engine, "db", BackupType.DIFFERENTIAL)
        assert new_diff.differential_base_guid == full.backup_set_uuid
        assert engine.history("db")[-1] == new_diff
        with sqlite3.connect(engine.path) as con:
            (version,) = con.execute("PRAGMA user_version").fetchone()
        con.close()
        assert version == 3
    finally:
        engine.close()


def test_the_agent_configuration_sets_the_offset(tmp_path: Path) -> None:
    from pydantic import ValidationError
    from sqlharbor_agent.config import InstanceConfig
    from sqlharbor_agent.engines.factory import open_engine

    config = InstanceConfig.model_validate(
        {"name": "i", "engine": "simulated", "simulated": {"rootDir": tmp_path, "timeZone": 4}}
    )
    engine = open_engine(config, "VM1\\SQL01")
    try:
        assert isinstance(engine, SimulatedEngine)
        assert engine.time_zone == 4
    finally:
        engine.close()
    with pytest.raises(ValidationError):
        InstanceConfig.model_validate(
            {"name": "i", "engine": "simulated", "simulated": {"rootDir": tmp_path, "timeZone": 60}}
        )
