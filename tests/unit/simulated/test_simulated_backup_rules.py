"""The simulated engine's backup rules (DESIGN.md section 4) and controls."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import zstandard
from sqlharbor_agent.engines.base import Engine
from sqlharbor_agent.engines.simulated import (
    Operation,
    SimulatedEngine,
    Workload,
    open_simulated_engine,
    seed_databases,
)
from sqlharbor_agent.engines.simulated.payload import page_payload

from sqlharbor.domain import chain
from sqlharbor.domain.backupset import BackupRequest, BackupType, DatabaseState, RecoveryModel
from sqlharbor.errors import EngineError, ErrorCode
from tests.builders.simulated import FakeClock, MemoryVault


def _work(engine: SimulatedEngine, clock: FakeClock, n: int = 20, db: str = "sales") -> None:
    workload = Workload(engine, [db], seed=n, row_size=256)
    for _ in range(n):
        assert workload.step() is not None
        clock.tick(0.5)


def test_is_an_engine(engine: SimulatedEngine) -> None:
    assert isinstance(engine.version(), str)
    as_protocol: Engine = engine
    assert as_protocol.instance_name == "VM1\\SQL01"
    assert "SQL Server" not in engine.version().split("(")[0]


def test_missing_database_is_refused(engine: SimulatedEngine, vault: MemoryVault) -> None:
    with pytest.raises(EngineError) as err:
        vault.backup(engine, "nope", BackupType.FULL)
    assert err.value.code == ErrorCode.SQL_PO_DOES_NOT_EXIST


def test_log_before_any_full_is_refused(engine: SimulatedEngine, vault: MemoryVault) -> None:
    with pytest.raises(EngineError) as err:
        vault.backup(engine, "sales", BackupType.LOG)
    assert err.value.code == ErrorCode.PARENT_FULL_BACKUP_MISSING
    with pytest.raises(EngineError) as err:
        vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    assert err.value.code == ErrorCode.PARENT_FULL_BACKUP_MISSING


def test_log_chain_continues_across_fulls(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    full1 = vault.backup(engine, "sales", BackupType.FULL)
    assert full1.begins_log_chain
    _work(engine, clock)
    log1 = vault.backup(engine, "sales", BackupType.LOG)
    assert chain.log_follows_base(log1, full1)
    _work(engine, clock)
    full2 = vault.backup(engine, "sales", BackupType.FULL)
    assert not full2.begins_log_chain
    assert full2.database_backup_lsn == full1.checkpoint_lsn
    _work(engine, clock)
    log2 = vault.backup(engine, "sales", BackupType.LOG)
    assert chain.log_follows_log(log1, log2)
    assert chain.log_follows_base(log2, full2)
    diff = vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    assert chain.is_differential_of(diff, full2)
    assert not chain.is_differential_of(diff, full1)
    assert chain.find_gaps(engine.history("sales")) == []


def test_simple_recovery_refuses_logs_and_breaks_the_chain(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    full = vault.backup(engine, "sales", BackupType.FULL)
    _work(engine, clock)
    engine.set_recovery_model("sales", RecoveryModel.SIMPLE)
    with pytest.raises(EngineError) as err:
        vault.backup(engine, "sales", BackupType.LOG)
    assert err.value.code == ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE
    assert "SIMPLE" in err.value.message
    engine.set_recovery_model("sales", RecoveryModel.FULL)
    with pytest.raises(EngineError) as err:
        vault.backup(engine, "sales", BackupType.LOG)
    assert err.value.code == ErrorCode.PARENT_FULL_BACKUP_MISSING
    # a differential restarts the chain
    diff = vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    assert diff.begins_log_chain
    assert chain.is_differential_of(diff, full)
    _work(engine, clock)
    log = vault.backup(engine, "sales", BackupType.LOG)
    assert chain.log_follows_base(log, diff)
    assert not chain.log_follows_base(log, full)


def test_copy_only_semantics(engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault) -> None:
    full = vault.backup(engine, "sales", BackupType.FULL)
    _work(engine, clock)
    copy_full = vault.backup(engine, "sales", BackupType.FULL, copy_only=True)
    assert not copy_full.is_differential_base
    diff = vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    assert diff.differential_base_lsn == full.checkpoint_lsn
    _work(engine, clock)
    copy_log = vault.backup(engine, "sales", BackupType.LOG, copy_only=True)
    _work(engine, clock)
    log = vault.backup(engine, "sales", BackupType.LOG)
    assert copy_log.first_lsn == log.first_lsn  # the copy-only log did not truncate
    assert chain.log_follows_base(log, full)
    assert chain.find_gaps(engine.history("sales")) == []


def test_out_of_band_log_leaves_a_gap(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    vault.backup(engine, "sales", BackupType.FULL)
    _work(engine, clock)
    ours1 = vault.backup(engine, "sales", BackupType.LOG)
    _work(engine, clock)
    theirs = engine.out_of_band_backup("sales", BackupType.LOG)
    _work(engine, clock)
    ours2 = vault.backup(engine, "sales", BackupType.LOG)
    history = engine.history("sales")
    assert theirs in history
    assert len(history) == 4
    assert not chain.log_follows_log(ours1, ours2)
    gaps = chain.find_gaps([p.record for p in vault.points])
    assert len(gaps) == 1
    assert gaps[0].missing_lsns == (ours1.last_lsn, ours2.first_lsn)
    assert chain.find_gaps(history) == []  # the other tool's log closes it in msdb


def test_out_of_band_full_moves_the_differential_base(
    engine: SimulatedEngine, clock: FakeClock, vault: MemoryVault
) -> None:
    ours = vault.backup(engine, "sales", BackupType.FULL)
    theirs = engine.out_of_band_backup("sales", BackupType.FULL)
    diff = vault.backup(engine, "sales", BackupType.DIFFERENTIAL)
    assert chain.is_differential_of(diff, theirs)
    assert not chain.is_differential_of(diff, ours)
    assert chain.differential_base(diff, [p.record for p in vault.points]) is None


def test_master_takes_fulls_only(engine: SimulatedEngine, vault: MemoryVault) -> None:
    seed_databases(engine)
    vault.backup(engine, "master", BackupType.FULL)
    for kind in (BackupType.DIFFERENTIAL, BackupType.LOG):
        with pytest.raises(EngineError) as err:
            vault.backup(engine, "master", kind)
        assert err.value.code == ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE


def test_permission_check_names_the_fix(engine: SimulatedEngine, vault: MemoryVault) -> None:
    assert engine.check_permissions().ok
    engine.set_sysadmin(False)
    check = engine.check_permissions()
    assert not check.ok
    assert check.code == ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP
    assert (
        check.remediation_tsql
        == "ALTER SERVER ROLE [sysadmin] ADD MEMBER [NT SERVICE\\SQLHarborAgent];"
    )
    with pytest.raises(EngineError) as err:
        vault.backup(engine, "sales", BackupType.FULL)
    assert err.value.code == ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP


def test_discover_and_seed_are_idempotent(engine: SimulatedEngine, clock: FakeClock) -> None:
    seed_databases(engine)
    _work(engine, clock)
    before = {d.name: d for d in engine.discover()}
    seed_databases(engine)
    after = {d.name: d for d in engine.discover()}
    assert before == after
    assert set(after) == {"master", "sales", "inventory", "reporting"}
    assert after["master"].is_system
    assert after["reporting"].recovery_model is RecoveryModel.SIMPLE
    assert after["sales"].size_bytes > 0


def test_state_survives_reopening(tmp_path: Path, clock: FakeClock) -> None:
    first = open_simulated_engine(tmp_path, "VM1\\SQL01")
    first.create_database("db1")
    first.commit("db1", [Operation(1, b"one"), Operation(2, b"two")])
    first.backup(BackupRequest("db1", BackupType.FULL), io.BytesIO())
    first.close()
    second = open_simulated_engine(tmp_path, "VM1\\SQL01")
    try:
        assert second.rows("db1") == {1: b"one", 2: b"two"}
        assert len(second.history("db1")) == 1
        assert second.database("db1").state is DatabaseState.ONLINE
    finally:
        second.close()


def test_stream_goes_out_in_pieces_with_progress(tmp_path: Path, clock: FakeClock) -> None:
    engine = SimulatedEngine(tmp_path, "big", clock=clock)
    engine.create_database("db")
    for key in range(40):
        engine.commit("db", [Operation(key, bytes(64 * 1024))])

    class Recorder:
        def __init__(self) -> None:
            self.sizes: list[int] = []

        def write(self, data: bytes | memoryview, /) -> int:
            self.sizes.append(len(data))
            return len(data)

    sink = Recorder()
    progress: list[int] = []
    record = engine.backup(BackupRequest("db", BackupType.FULL), sink, progress.append)
    engine.close()
    assert len(sink.sizes) >= 3
    assert all(size == 1 << 20 for size in sink.sizes[:-1])
    assert sum(progress) == sum(sink.sizes) == record.size_bytes


def test_payloads_compress_about_two_to_one() -> None:
    import random

    rng = random.Random(7)
    data = b"".join(page_payload(rng, key, 8192) for key in range(64))
    ratio = len(data) / len(zstandard.ZstdCompressor(level=1).compress(data))
    assert 1.6 < ratio < 2.6, ratio
