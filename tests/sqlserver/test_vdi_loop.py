"""The VDI command loop against the stand-in libsqlvdi.so, at full protocol depth.

Backups must arrive byte-for-byte in the sinks, restores byte-for-byte in the stand-in;
every failure must end with an abort and a clear error within a bound.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence

import pytest
from sqlharbor_agent.engines.sqlserver.connection import execute_drained
from sqlharbor_agent.engines.sqlserver.settings import VdiTimeouts
from sqlharbor_agent.engines.sqlserver.tsql import (
    StreamGeometry,
    backup_statement,
    restore_statement,
)
from sqlharbor_agent.engines.sqlserver.vdi.linux import LinuxVdi
from sqlharbor_agent.engines.sqlserver.vdi.loop import VdiError, VdiSession

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import EngineError, ErrorCode, SqlHarborError, TemporaryError

from .fakes import FakeServer, sql_error
from .standin import Misbehave, StandinStatements, StandinVdi

MTS = 65536
GEOMETRY = StreamGeometry(max_transfer_size=MTS, buffer_count=2, block_size=65536)
FAST = VdiTimeouts(configure_s=1.0, idle_s=1.0, finish_s=10.0, poll_s=0.05)
#: Every failure must be reported well within this (the stand-in's own bound is 3 s).
BOUND_S = 8.0


class Harness:
    def __init__(self, standin: StandinVdi) -> None:
        self.standin = standin
        self.statements = StandinStatements(standin)
        self.server = FakeServer(handlers=[self.statements])
        self.session = VdiSession(LinuxVdi(str(standin.path)), FAST)

    def runner(self, build: Callable[[Sequence[str]], str]) -> Callable[[Sequence[str]], None]:
        cursor = self.server.connect().cursor()
        return lambda names: execute_drained(cursor, build(names))

    def backup(self, data: Sequence[bytes], misbehave: Misbehave = Misbehave.NORMAL) -> list[bytes]:
        self.statements.expect(data, misbehave)
        sinks = [io.BytesIO() for _ in data]
        moved: list[int] = []
        self.session.backup(
            self.runner(lambda n: backup_statement("db", BackupType.FULL, n, GEOMETRY)),
            sinks,
            progress=moved.append,
        )
        assert sum(moved) == sum(len(d) for d in data)
        return [s.getvalue() for s in sinks]

    def restore(
        self,
        expected: Sequence[bytes],
        given: Sequence[bytes] | None = None,
        misbehave: Misbehave = Misbehave.NORMAL,
    ) -> None:
        self.statements.expect(expected, misbehave)
        sources = [io.BytesIO(d) for d in (given if given is not None else expected)]
        self.session.restore(
            self.runner(
                lambda n: restore_statement("db", BackupType.FULL, n, GEOMETRY, recovery=True)
            ),
            sources,
        )


@pytest.fixture
def harness(standin: StandinVdi) -> Harness:
    return Harness(standin)


SIZES = {"empty": 0, "one byte": 1, "one buffer": MTS, "many buffers": 7 * MTS + 12345}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_backup_arrives_byte_for_byte(harness: Harness, size: int) -> None:
    data = os.urandom(size)
    assert harness.backup([data]) == [data]
    result = harness.statements.results[0]
    assert result.status == 0
    assert result.bytes == size


def test_striped_backup_keeps_each_device_in_its_own_sink(harness: Harness) -> None:
    data = [os.urandom(3 * MTS + 1), os.urandom(MTS), b""]
    assert harness.backup(data) == data
    sql = harness.statements.statements[0]
    assert sql.count("VIRTUAL_DEVICE = N'") == 3


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_restore_arrives_byte_for_byte(harness: Harness, size: int) -> None:
    data = os.urandom(size)
    harness.restore([data])
    assert harness.statements.results[0].bytes == size


def test_striped_restore(harness: Harness) -> None:
    harness.restore([os.urandom(2 * MTS + 5), os.urandom(17)])


class TrickleSource:
    """Returns at most 1000 bytes per call: the loop must fill whole buffers anyway."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        view = memoryview(buffer)[:1000]
        return self._stream.readinto(view)


def test_restore_from_a_source_with_partial_reads(harness: Harness) -> None:
    data = os.urandom(3 * MTS + 7)
    harness.statements.expect([data])
    harness.session.restore(
        harness.runner(
            lambda n: restore_statement("db", BackupType.FULL, n, GEOMETRY, recovery=True)
        ),
        [TrickleSource(data)],
    )
    assert harness.statements.results[0].commands == 4


def test_restore_of_different_bytes_fails_with_the_server_error(harness: Harness) -> None:
    data = os.urandom(2 * MTS)
    tampered = data[:MTS] + bytes([data[MTS] ^ 1]) + data[MTS + 1 :]
    with pytest.raises(EngineError, match="differ at offset 65536"):
        harness.restore([data], [tampered])


def test_short_read_fails(harness: Harness) -> None:
    data = os.urandom(2 * MTS)
    with pytest.raises(EngineError, match="short read"):
        harness.restore([data], [data[:-1]])


def timed(action: Callable[[], object]) -> tuple[BaseException, float]:
    start = time.monotonic()
    with pytest.raises(SqlHarborError) as info:
        action()
    elapsed = time.monotonic() - start
    assert elapsed < BOUND_S, f"took {elapsed:.1f} s"
    return info.value, elapsed


def test_server_that_never_configures_times_out_and_aborts(harness: Harness) -> None:
    error, _ = timed(lambda: harness.backup([b"x"], Misbehave.NEVER_CONFIGURE))
    assert isinstance(error, VdiError)
    assert "did not open the virtual device" in str(error)
    assert harness.statements.results[0].status == 3013


def test_server_abort_mid_stream_reports_the_statement_error(harness: Harness) -> None:
    error, _ = timed(lambda: harness.backup([os.urandom(3 * MTS)], Misbehave.ABORT_MID_STREAM))
    assert "server aborted mid-stream" in str(error)
    assert error.code == ErrorCode.SQL_SERVER_ERROR  # type: ignore[attr-defined]


def test_restore_abort_mid_stream(harness: Harness) -> None:
    data = os.urandom(3 * MTS)
    error, _ = timed(lambda: harness.restore([data], misbehave=Misbehave.ABORT_MID_STREAM))
    assert "server aborted mid-stream" in str(error)


def test_unsupported_command_is_completed_with_50_and_the_backup_goes_on(
    harness: Harness,
) -> None:
    data = os.urandom(MTS + 1)
    assert harness.backup([data], Misbehave.UNSUPPORTED) == [data]
    assert harness.statements.results[0].unsupported_seen == 1


def test_stalled_server_hits_the_idle_bound_and_is_aborted(harness: Harness) -> None:
    error, _ = timed(lambda: harness.backup([b"abc"], Misbehave.STALL))
    assert isinstance(error, VdiError)
    assert "no VDI command for 1 s" in str(error)
    assert harness.statements.results[0].message == b"aborted while stalled"


def test_statement_failure_after_a_complete_stream_fails_the_backup(harness: Harness) -> None:
    data = os.urandom(MTS)
    sink = io.BytesIO()
    harness.statements.expect([data], Misbehave.FAIL_AT_END)
    with pytest.raises(EngineError, match="backup history"):
        harness.session.backup(
            harness.runner(lambda n: backup_statement("db", BackupType.LOG, n, GEOMETRY)),
            [sink],
        )
    assert sink.getvalue() == data  # the stream was complete; the T-SQL result decided


class FailingSink:
    def __init__(self, after: int) -> None:
        self.after = after

    def write(self, data: bytes | memoryview) -> int:
        self.after -= 1
        if self.after < 0:
            raise TemporaryError("vault upload failed", code=ErrorCode.VAULT_UNAVAILABLE)
        return len(data)


def test_sink_failure_aborts_and_is_reported_as_itself(harness: Harness) -> None:
    harness.statements.expect([os.urandom(4 * MTS)])
    error, _ = timed(
        lambda: harness.session.backup(
            harness.runner(lambda n: backup_statement("db", BackupType.FULL, n, GEOMETRY)),
            [FailingSink(after=1)],
        )
    )
    assert error.code == ErrorCode.VAULT_UNAVAILABLE  # type: ignore[attr-defined]
    assert harness.statements.results[0].status == 3013
    assert b"995" in harness.statements.results[0].message


def test_statement_error_before_configuration_is_reported_quickly(harness: Harness) -> None:
    server = FakeServer()

    def refuse(params: tuple[object, ...]) -> list[dict[str, object]]:
        raise sql_error(262, "BACKUP DATABASE permission denied in database 'db'.")

    server.on("BACKUP", refuse)
    cursor = server.connect().cursor()
    error, elapsed = timed(
        lambda: harness.session.backup(
            lambda n: execute_drained(cursor, backup_statement("db", BackupType.FULL, n, GEOMETRY)),
            [io.BytesIO()],
        )
    )
    assert error.code == ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP  # type: ignore[attr-defined]
    assert elapsed < FAST.configure_s


def test_sink_receives_views_without_copies_that_expire(harness: Harness) -> None:
    kept: list[memoryview] = []

    class KeepingSink:
        def write(self, data: bytes | memoryview) -> int:
            assert isinstance(data, memoryview)
            kept.append(data)
            return len(data)

    harness.statements.expect([os.urandom(10)])
    harness.session.backup(
        harness.runner(lambda n: backup_statement("db", BackupType.FULL, n, GEOMETRY)),
        [KeepingSink()],
    )
    with pytest.raises(ValueError, match="released"):
        bytes(kept[0])
