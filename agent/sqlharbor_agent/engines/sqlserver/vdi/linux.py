"""The Linux VDI back end: ``libsqlvdi.so``'s C++ classes called through ctypes.

Used by ``SqlServerEngine`` on Linux (``LinuxVdi(path).new_device_set()``).  SQL Server on
Linux ships no COM: ``/opt/mssql/lib/libsqlvdi.so`` exports two C++ classes,
``ClientVirtualDeviceSet`` and ``ClientVirtualDevice``, whose methods are *non-virtual*.

Why ctypes straight onto the mangled members, not a compiled C shim: a non-virtual member
function is an ordinary exported function whose first argument is ``this`` (Itanium C++
ABI on x86-64 SysV); every parameter here is an integer or a pointer and every result an
``int``, so there is no by-value struct, no exception and no vtable to get wrong.  A shim
would need a compiler and headers on every customer VM for no gain.  The one thing we must
do that ``new`` would do for us: allocate the object's memory and run its constructor.

Symbols assumed (g++ / Itanium mangling of the published ``vdi.h``; ``time_t`` and
``int64_t`` are ``long``, so ``l``; ``unsigned long`` is ``m``).  The test stand-in library
exports exactly these, and a test checks that they are what g++ emits for that header.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

from .abi import CommandPointer, Device, VDCCommand, VDConfig, hresult

SYMBOLS: dict[str, str] = {
    "set_ctor": "_ZN22ClientVirtualDeviceSetC1Ev",
    "set_dtor": "_ZN22ClientVirtualDeviceSetD1Ev",
    "create": "_ZN22ClientVirtualDeviceSet6CreateEPcP8VDConfig",
    "get_configuration": "_ZN22ClientVirtualDeviceSet16GetConfigurationElP8VDConfig",
    "open_device": "_ZN22ClientVirtualDeviceSet10OpenDeviceEPcPP19ClientVirtualDevice",
    "close": "_ZN22ClientVirtualDeviceSet5CloseEv",
    "signal_abort": "_ZN22ClientVirtualDeviceSet11SignalAbortEv",
    "get_command": "_ZN19ClientVirtualDevice10GetCommandElPP11VDC_Command",
    "complete_command": "_ZN19ClientVirtualDevice15CompleteCommandEP11VDC_Commandiml",
}

#: Bytes we allocate for a ``ClientVirtualDeviceSet``.  The published class holds one
#: pointer (8 bytes); 4 KiB leaves ample room should a build add members, at no real cost.
OBJECT_ALLOCATION = 4096

_P = ctypes.c_void_p
_SIGNATURES: dict[str, list[Any]] = {
    "set_ctor": [_P],
    "set_dtor": [_P],
    "create": [_P, ctypes.c_char_p, ctypes.POINTER(VDConfig)],
    "get_configuration": [_P, ctypes.c_long, ctypes.POINTER(VDConfig)],
    "open_device": [_P, ctypes.c_char_p, ctypes.POINTER(_P)],
    "close": [_P],
    "signal_abort": [_P],
    "get_command": [_P, ctypes.c_long, ctypes.POINTER(CommandPointer)],
    "complete_command": [_P, CommandPointer, ctypes.c_int, ctypes.c_ulong, ctypes.c_int64],
}


@dataclass(frozen=True)
class _Functions:
    table: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        return self.table[name]


def _bind(library: ctypes.CDLL) -> _Functions:
    table: dict[str, Any] = {}
    for key, symbol in SYMBOLS.items():
        fn = getattr(library, symbol)
        fn.argtypes = _SIGNATURES[key]
        fn.restype = None if key in ("set_ctor", "set_dtor") else ctypes.c_int
        table[key] = fn
    return _Functions(table)


class LinuxDevice:
    """A ``ClientVirtualDevice*`` handed out by ``OpenDevice`` (owned by the set)."""

    def __init__(self, functions: _Functions, pointer: int) -> None:
        self._fn = functions
        self._this = _P(pointer)

    def get_command(self, timeout_ms: int) -> tuple[int, ctypes._Pointer[VDCCommand] | None]:
        command = CommandPointer()
        result = hresult(self._fn.get_command(self._this, timeout_ms, ctypes.byref(command)))
        return result, (command if result == 0 and command else None)

    def complete_command(
        self,
        command: ctypes._Pointer[VDCCommand],
        completion_code: int,
        bytes_transferred: int,
        position: int,
    ) -> int:
        return hresult(
            self._fn.complete_command(
                self._this, command, completion_code, bytes_transferred, position
            )
        )


class LinuxDeviceSet:
    """A ``ClientVirtualDeviceSet`` living in memory we allocated, constructed in place."""

    def __init__(self, functions: _Functions) -> None:
        self._fn = functions
        self._memory = ctypes.create_string_buffer(OBJECT_ALLOCATION)
        self._this = _P(ctypes.addressof(self._memory))
        self._fn.set_ctor(self._this)
        self._alive = True

    def create(self, name: str, config: VDConfig) -> int:
        return hresult(self._fn.create(self._this, name.encode(), ctypes.byref(config)))

    def get_configuration(self, timeout_ms: int, config: VDConfig) -> int:
        return hresult(self._fn.get_configuration(self._this, timeout_ms, ctypes.byref(config)))

    def open_device(self, name: str) -> tuple[int, Device | None]:
        pointer = _P()
        result = hresult(self._fn.open_device(self._this, name.encode(), ctypes.byref(pointer)))
        if result != 0 or not pointer.value:
            return result, None
        return result, LinuxDevice(self._fn, pointer.value)

    def signal_abort(self) -> int:
        return hresult(self._fn.signal_abort(self._this))

    def close(self) -> int:
        return hresult(self._fn.close(self._this))

    def release(self) -> None:
        if self._alive:
            self._alive = False
            self._fn.set_dtor(self._this)


class LinuxVdi:
    """Loads ``libsqlvdi.so`` once; makes device sets.  The agent must run as ``mssql``
    or in its group, or SQL Server cannot open the shared memory we create."""

    def __init__(self, library_path: str) -> None:
        self.library_path = library_path
        self._fn = _bind(ctypes.CDLL(library_path))

    def new_device_set(self) -> LinuxDeviceSet:
        return LinuxDeviceSet(self._fn)
