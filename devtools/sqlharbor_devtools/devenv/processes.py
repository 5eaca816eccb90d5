"""Start the control plane's components as detached processes, and stop them again.

Called by :mod:`sqlharbor_devtools.devenv.controlplane`.  A process is identified by its pid *and*
its start time (from ``/proc`` where there is one), so a recycled pid is never signalled.
Processes started by this Python process are kept in a registry until they are stopped, so
they are reaped properly and never garbage-collected while still running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlharbor_devtools.devenv.errors import DevEnvError
from sqlharbor_devtools.devenv.waiting import wait_for

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcessRecord:
    """One component process: its name, pid, start time (clock ticks; None off Linux), log."""

    name: str
    pid: int
    start_ticks: int | None
    log: Path


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    return raw[raw.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> ProcessRecord:
    """Start ``argv`` in its own session with output appended to ``log``; do not wait."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        except OSError as exc:
            raise DevEnvError(f"could not start {name} ({argv[0]}): {exc.strerror}") from exc
    _CHILDREN[proc.pid] = proc
    return ProcessRecord(name=name, pid=proc.pid, start_ticks=_start_ticks(proc.pid), log=log)


def is_alive(record: ProcessRecord) -> bool:
    """True while the recorded process (same pid, same start time) runs and is not a zombie."""
    child = _CHILDREN.get(record.pid)
    if child is not None:
        return child.poll() is None
    fields = _proc_stat(record.pid)
    if fields is None:
        if Path("/proc/self/stat").exists():
            return False
        try:
            os.kill(record.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields[0] in ("Z", "X"):
        return False
    return record.start_ticks is None or int(fields[19]) == record.start_ticks


def exit_reason(record: ProcessRecord) -> str | None:
    """``None`` while the process runs, else a short description for error messages."""
    if is_alive(record):
        return None
    child = _CHILDREN.get(record.pid)
    code = child.returncode if child is not None else None
    return f"{record.name} exited (code {code}); see {record.log}"


def stop(records: Sequence[ProcessRecord], *, timeout: float = 30.0) -> None:
    """Stop the processes in reverse start order (the API server before etcd), each with
    SIGTERM and, if it has not exited within ``timeout`` seconds, SIGKILL; wait for each."""
    for record in reversed(records):
        _stop_one(record, timeout)
        child = _CHILDREN.pop(record.pid, None)
        if child is not None:
            child.wait()


def _stop_one(record: ProcessRecord, timeout: float) -> None:
    _signal(record, signal.SIGTERM)
    try:
        wait_for(lambda: not is_alive(record), timeout=timeout, what=f"{record.name} to exit")
    except DevEnvError:
        _signal(record, signal.SIGKILL)
        wait_for(lambda: not is_alive(record), timeout=10, what=f"{record.name} to die")


def _signal(record: ProcessRecord, sig: signal.Signals) -> None:
    if is_alive(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, sig)
