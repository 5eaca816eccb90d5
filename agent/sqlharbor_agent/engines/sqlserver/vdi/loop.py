"""The VDI command loop: one protocol run over either back end, for backups and restores.

Called by ``SqlServerEngine.backup`` / ``restore`` as ``VdiSession(backend, timeouts)
.backup(run_tsql, sinks)`` / ``.restore(run_tsql, sources)``.  The sequence:

1. create the device set under a fresh GUID name (one device per sink / source);
2. run the T-SQL (``run_tsql(device_names)``) on its own thread;
3. ``GetConfiguration`` with a short timeout, in a loop that watches the T-SQL thread
   and a deadline;
4. open the devices, one command thread each: Write → sink, Read → filled from the
   source (0 bytes → end of file, 38), Flush / ClearError → success, anything else →
   50 (not supported); the close code ends a device;
5. on any error: ``SignalAbort``, then ``Close``; otherwise ``Close``.

The outcome is the T-SQL thread's: a backup whose stream reached its end but whose
statement failed has failed.  A local failure (the sink or source raised) is reported as
itself, since it is the cause of the abort.  Every wait is bounded by ``VdiTimeouts``.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlharbor.errors import EngineError, ErrorCode, TemporaryError

from ...base import ProgressCallback, Sink, Source
from ..connection import map_sql_error
from ..settings import VdiTimeouts
from .abi import (
    FEATURES_LIKE_PIPE,
    Backend,
    Command,
    Completion,
    Device,
    DeviceSet,
    VDCCommand,
    VDConfig,
    VdError,
    describe,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class VdiError(EngineError):
    """The VDI protocol failed (the server aborted, timed out, or refused the device).

    It stays here, on the shared tree, because only this plugin raises and handles it:
    the core does not know VDI exists."""

    code = ErrorCode.SQL_SERVER_VIRTUAL_DEVICE_ERROR


class ServerAborted(VdiError):
    """SQL Server aborted the stream; the T-SQL error says why."""


@dataclass
class _TsqlThread(Generic[T]):
    run: Callable[[], T]
    result: T | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._main, name="sqlharbor-vdi-tsql", daemon=True).start()

    def _main(self) -> None:
        try:
            self.result = self.run()
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
        finally:
            self.done.set()


class _Progress:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()

    def __call__(self, amount: int) -> None:
        if self._callback is not None and amount:
            with self._lock:
                self._callback(amount)


def _buffer(command: VDCCommand) -> memoryview:
    """The command's buffer as a writable memoryview (no copy)."""
    if command.size <= 0:
        return memoryview(b"")
    array = (ctypes.c_ubyte * command.size).from_address(command.buffer or 0)
    return memoryview(array).cast("B")


def _write_all(sink: Sink, view: memoryview) -> None:
    """Hand ``view`` to the sink, looping over partial writes, without copying.

    Each view handed out is released right after ``write`` returns, so a sink that kept
    one (instead of copying) fails loudly instead of reading a reused buffer.
    """
    offset = 0
    while offset < len(view):
        with view[offset:] as part:
            written = sink.write(part)
        if not written or written < 0:
            raise EngineError("the backup sink accepted no bytes", code=ErrorCode.SINK_FAILURE)
        offset += written


def _fill(source: Source, view: memoryview) -> int:
    """Fill ``view`` from the source until full or the source ends; the byte count."""
    total = 0
    while total < len(view):
        with view[total:] as part:
            got = source.readinto(part)
        if not got:
            break
        total += got
    return total


Handler = Callable[[VDCCommand, memoryview], tuple[int, int]]


def _sink_handler(sink: Sink, progress: _Progress) -> Handler:
    def handle(command: VDCCommand, view: memoryview) -> tuple[int, int]:
        if command.commandCode != Command.WRITE:
            return Completion.NOT_SUPPORTED, 0
        _write_all(sink, view)
        progress(len(view))
        return Completion.SUCCESS, len(view)

    return handle


def _source_handler(source: Source, progress: _Progress) -> Handler:
    def handle(command: VDCCommand, view: memoryview) -> tuple[int, int]:
        if command.commandCode != Command.READ:
            return Completion.NOT_SUPPORTED, 0
        count = _fill(source, view)
        progress(count)
        return (Completion.SUCCESS, count) if count else (Completion.HANDLE_EOF, 0)

    return handle


@dataclass
class _Worker:
    """The command loop of one device, on its own thread."""

    device: Device
    handler: Handler
    tsql_done: threading.Event
    stop: threading.Event
    timeouts: VdiTimeouts
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def start(self, index: int) -> None:
        threading.Thread(target=self._main, name=f"sqlharbor-vdi-{index}", daemon=True).start()

    def _main(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self.error = exc
            self.stop.set()
        finally:
            self.finished.set()

    def _loop(self) -> None:
        poll_ms = max(1, int(self.timeouts.poll_s * 1000))
        last_activity = time.monotonic()
        grace_used = False
        while not self.stop.is_set():
            result, command = self.device.get_command(poll_ms)
            if result == 0 and command is not None:
                self._serve(command)
                last_activity = time.monotonic()
            elif result == VdError.CLOSE:
                return
            elif result == VdError.TIMEOUT:
                if self.tsql_done.is_set():
                    if grace_used:  # one more wait for a close racing the statement's end
                        raise VdiError("the statement ended but the device was never closed")
                    grace_used = True
                elif time.monotonic() - last_activity > self.timeouts.idle_s:
                    raise VdiError(
                        f"no VDI command for {self.timeouts.idle_s:g} s",
                        code=ErrorCode.SQL_SERVER_VIRTUAL_DEVICE_ERROR,
                    )
            elif result == VdError.ABORT:
                raise ServerAborted("SQL Server aborted the virtual device stream")
            else:
                raise VdiError(f"GetCommand failed: {describe(result)}")

    def _serve(self, pointer: ctypes._Pointer[VDCCommand]) -> None:
        command = pointer.contents
        code = command.commandCode
        if code in (Command.FLUSH, Command.CLEAR_ERROR):
            self._complete(pointer, Completion.SUCCESS, 0)
            return
        if code not in (Command.READ, Command.WRITE):
            log.info("VDI command %d not supported; completing with 50", code)
            self._complete(pointer, Completion.NOT_SUPPORTED, 0)
            return
        view = _buffer(command)
        try:
            completion, count = self.handler(command, view)
        except BaseException:
            self._complete(pointer, Completion.OPERATION_ABORTED, 0)
            raise
        finally:
            view.release()  # the buffer is SQL Server's again once completed
        self._complete(pointer, completion, count)

    def _complete(self, pointer: ctypes._Pointer[VDCCommand], code: int, count: int) -> None:
        result = self.device.complete_command(pointer, code, count, 0)
        if result != 0:
            raise VdiError(f"CompleteCommand failed: {describe(result)}")


class VdiSession:
    """Runs one BACKUP or RESTORE through virtual devices."""

    def __init__(
        self,
        backend: Backend,
        timeouts: VdiTimeouts,
        *,
        name_factory: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._backend = backend
        self._timeouts = timeouts
        self._new_name = name_factory

    def backup(
        self,
        run_tsql: Callable[[Sequence[str]], T],
        sinks: Sequence[Sink],
        progress: ProgressCallback | None = None,
        cancel: Callable[[], None] | None = None,
    ) -> T:
        """Stream one BACKUP into ``sinks`` (one per device, in device order).

        Sinks get a memoryview over SQL Server's buffer, valid only during ``write``.
        ``cancel`` is called if the statement outlives ``finish_s`` after the stream.
        """
        counter = _Progress(progress)
        return self._run(run_tsql, [_sink_handler(s, counter) for s in sinks], cancel)

    def restore(
        self,
        run_tsql: Callable[[Sequence[str]], T],
        sources: Sequence[Source],
        progress: ProgressCallback | None = None,
        cancel: Callable[[], None] | None = None,
    ) -> T:
        """Feed one RESTORE from ``sources`` (one per device, in device order)."""
        counter = _Progress(progress)
        return self._run(run_tsql, [_source_handler(s, counter) for s in sources], cancel)

    def _run(
        self,
        run_tsql: Callable[[Sequence[str]], T],
        handlers: Sequence[Handler],
        cancel: Callable[[], None] | None,
    ) -> T:
        if not handlers:
            raise ValueError("a VDI session needs at least one device")
        set_name = self._new_name()
        names = [set_name] + [f"{set_name}_{i}" for i in range(1, len(handlers))]
        vds = self._backend.new_device_set()
        try:
            return self._drive(vds, names, run_tsql, handlers, cancel)
        finally:
            vds.release()

    def _drive(
        self,
        vds: DeviceSet,
        names: list[str],
        run_tsql: Callable[[Sequence[str]], T],
        handlers: Sequence[Handler],
        cancel: Callable[[], None] | None,
    ) -> T:
        config = VDConfig(deviceCount=len(handlers), features=FEATURES_LIKE_PIPE)
        result = vds.create(names[0], config)
        if result != 0:
            raise VdiError(f"creating the virtual device set failed: {describe(result)}")
        tsql: _TsqlThread[T] = _TsqlThread(lambda: run_tsql(names))
        tsql.start()
        local_error: BaseException | None = None
        stop = threading.Event()
        workers: list[_Worker] = []
        try:
            self._await_configuration(vds, config, tsql)
            for index, (name, handler) in enumerate(zip(names, handlers, strict=True)):
                worker = _Worker(self._open(vds, name), handler, tsql.done, stop, self._timeouts)
                workers.append(worker)
                worker.start(index)
            for worker in workers:
                self._await_worker(worker)
            local_error = next((w.error for w in workers if w.error is not None), None)
        except BaseException as exc:
            local_error = exc
        if local_error is not None:
            stop.set()
            vds.signal_abort()
        for worker in workers:
            worker.finished.wait(self._timeouts.poll_s * 4 + 1)
        vds.close()
        return self._outcome(tsql, local_error, cancel)

    def _open(self, vds: DeviceSet, name: str) -> Device:
        result, device = vds.open_device(name)
        if result != 0 or device is None:
            raise VdiError(f"opening virtual device failed: {describe(result)}")
        return device

    def _await_configuration(self, vds: DeviceSet, config: VDConfig, tsql: _TsqlThread[T]) -> None:
        deadline = time.monotonic() + self._timeouts.configure_s
        poll_ms = max(1, int(self._timeouts.poll_s * 1000))
        while True:
            result = vds.get_configuration(poll_ms, config)
            if result == 0:
                return
            if result != VdError.TIMEOUT:
                raise VdiError(f"GetConfiguration failed: {describe(result)}")
            if tsql.done.is_set():
                raise ServerAborted("the statement ended before SQL Server opened the device")
            if time.monotonic() > deadline:
                raise VdiError(
                    f"SQL Server did not open the virtual device within "
                    f"{self._timeouts.configure_s:g} s"
                )

    def _await_worker(self, worker: _Worker) -> None:
        """Bounded: a worker ends by itself within ``idle_s`` of its last command."""
        while not worker.finished.wait(self._timeouts.poll_s):
            if worker.stop.is_set():
                return

    def _outcome(
        self,
        tsql: _TsqlThread[T],
        local_error: BaseException | None,
        cancel: Callable[[], None] | None,
    ) -> T:
        if not tsql.done.wait(self._timeouts.finish_s):
            if cancel is not None:
                cancel()
            raise TemporaryError(
                f"the BACKUP/RESTORE statement did not finish within "
                f"{self._timeouts.finish_s:g} s after the stream ended",
                code=ErrorCode.SQL_SERVER_STATEMENT_TIMEOUT,
                remediation="Check the SQL Server error log and blocking sessions.",
            )
        if local_error is not None and not isinstance(local_error, ServerAborted):
            raise local_error
        if tsql.error is not None:
            raise map_sql_error(tsql.error) from None
        if local_error is not None:
            raise local_error
        return tsql.result  # type: ignore[return-value]
