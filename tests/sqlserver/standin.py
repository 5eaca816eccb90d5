"""Build and drive the stand-in ``libsqlvdi.so`` (``standin_vdi.cpp``) from tests.

``build_standin(dir)`` compiles it with g++; ``StandinVdi`` wraps its server side; and
``StandinStatements`` is a ``FakeServer`` handler that, when the code under test executes
``BACKUP ... TO VIRTUAL_DEVICE`` / ``RESTORE ... FROM VIRTUAL_DEVICE``, plays SQL Server
through the stand-in on that (the statement's) thread and raises a SQL error on failure.
"""

from __future__ import annotations

import ctypes
import enum
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fakes import sql_error

SOURCE = Path(__file__).with_name("standin_vdi.cpp")


def build_standin(directory: Path) -> Path | None:
    """Compile the stand-in; None when no C++ compiler is installed."""
    compiler = shutil.which("g++")
    if compiler is None:
        return None
    target = directory / "libsqlvdi.so"
    subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-shared",
            "-fPIC",
            "-O1",
            "-pthread",
            "-Wall",
            "-Werror",
            str(SOURCE),
            "-o",
            str(target),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return target


class Mode(enum.IntEnum):
    BACKUP = 1
    RESTORE = 2


class Misbehave(enum.IntEnum):
    NORMAL = 0
    NEVER_CONFIGURE = 1
    ABORT_MID_STREAM = 2
    UNSUPPORTED = 3
    STALL = 4
    FAIL_AT_END = 5


class StandinResult(ctypes.Structure):
    _fields_ = [
        ("status", ctypes.c_int32),
        ("unsupported_seen", ctypes.c_int32),
        ("bytes", ctypes.c_int64),
        ("commands", ctypes.c_int32),
        ("message", ctypes.c_char * 256),
    ]


class StandinVdi:
    """The stand-in's server-side entry points."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lib = ctypes.CDLL(str(path))
        self._lib.standin_serve.restype = None
        self._lib.standin_serve.argtypes = [
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.c_uint32,
            ctypes.c_uint32,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(StandinResult),
        ]
        self._lib.standin_open_sets.restype = ctypes.c_int

    def serve(
        self,
        device_names: Sequence[str],
        mode: Mode,
        data: Sequence[bytes],
        max_transfer_size: int,
        buffer_count: int,
        block_size: int,
        misbehave: Misbehave,
        timeout_ms: int,
    ) -> StandinResult:
        count = len(device_names)
        buffers = (ctypes.c_char_p * count)(*data)
        lengths = (ctypes.c_size_t * count)(*(len(d) for d in data))
        result = StandinResult()
        self._lib.standin_serve(
            "\n".join(device_names).encode(),
            mode,
            buffers,
            lengths,
            max_transfer_size,
            buffer_count,
            block_size,
            misbehave,
            timeout_ms,
            ctypes.byref(result),
        )
        return result

    def open_sets(self) -> int:
        return int(self._lib.standin_open_sets())


_DEVICE = re.compile(r"VIRTUAL_DEVICE = N'((?:[^']|'')*)'")


def _option(sql: str, name: str) -> int:
    match = re.search(rf"\b{name} = (\d+)", sql)
    assert match, f"{name} missing from {sql!r}"
    return int(match.group(1))


@dataclass
class StandinStatements:
    """Plays SQL Server's side of each VDI statement, from a queue of scenarios."""

    vdi: StandinVdi
    timeout_ms: int = 3000
    scenarios: list[tuple[Sequence[bytes], Misbehave]] = field(default_factory=list)
    results: list[StandinResult] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)

    def expect(self, data: Sequence[bytes], misbehave: Misbehave = Misbehave.NORMAL) -> None:
        self.scenarios.append((data, misbehave))

    def __call__(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]] | None:
        if not sql.startswith(("BACKUP ", "RESTORE ")) or "VIRTUAL_DEVICE" not in sql:
            return None
        self.statements.append(sql)
        data, misbehave = self.scenarios.pop(0)
        names = [n.replace("''", "'") for n in _DEVICE.findall(sql)]
        result = self.vdi.serve(
            names,
            Mode.BACKUP if sql.startswith("BACKUP") else Mode.RESTORE,
            data,
            _option(sql, "MAXTRANSFERSIZE"),
            _option(sql, "BUFFERCOUNT"),
            _option(sql, "BLOCKSIZE"),
            misbehave,
            self.timeout_ms,
        )
        self.results.append(result)
        if result.status:
            raise sql_error(result.status, result.message.decode())
        return []
