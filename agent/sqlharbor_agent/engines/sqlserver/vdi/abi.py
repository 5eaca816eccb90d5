"""VDI's binary interface: struct layouts, codes, and the back-end Protocols.

Used by the two back ends (``linux``: libsqlvdi.so's C++ classes; ``windows``: the COM
object) and by the command loop (``loop``), which only sees the Protocols below.  Both
platforms share the layouts: ``VDConfig`` is eleven 32-bit fields; a command block is
code (int32), size (int32), position (int64), buffer pointer.
"""

from __future__ import annotations

import ctypes
import enum
from typing import Protocol


class VDConfig(ctypes.Structure):
    """The virtual device set configuration (client sets the first seven fields)."""

    _fields_ = [
        ("deviceCount", ctypes.c_uint32),
        ("features", ctypes.c_uint32),
        ("prefixZoneSize", ctypes.c_uint32),
        ("alignment", ctypes.c_uint32),
        ("softFileMarkBlockSize", ctypes.c_uint32),
        ("EOMWarningSize", ctypes.c_uint32),
        ("serverTimeOut", ctypes.c_uint32),
        ("blockSize", ctypes.c_uint32),
        ("maxIODepth", ctypes.c_uint32),
        ("maxTransferSize", ctypes.c_uint32),
        ("bufferAreaSize", ctypes.c_uint32),
    ]


class VDCCommand(ctypes.Structure):
    """One command from SQL Server (``VDC_Command``)."""

    _fields_ = [
        ("commandCode", ctypes.c_int32),
        ("size", ctypes.c_int32),
        ("position", ctypes.c_int64),
        ("buffer", ctypes.c_void_p),
    ]


CommandPointer = ctypes.POINTER(VDCCommand)

#: Pipe-like devices: sequential, no positioning (``VDF_LikePipe``).
FEATURES_LIKE_PIPE = 0


class Command(enum.IntEnum):
    READ = 1
    WRITE = 2
    CLEAR_ERROR = 3
    FLUSH = 12


class Completion(enum.IntEnum):
    SUCCESS = 0
    HANDLE_EOF = 38
    NOT_SUPPORTED = 50
    DISK_FULL = 112
    OPERATION_ABORTED = 995


class VdError(enum.IntEnum):
    """VDI results (facility 0x77), already masked to unsigned 32 bits."""

    NOTOPEN = 0x80770002
    TIMEOUT = 0x80770003
    ABORT = 0x80770004
    SECURITY = 0x80770005
    INVALID = 0x80770006
    INSTANCE_NAME = 0x80770007
    NOTSUPPORTED = 0x80770009
    MEMORY = 0x8077000A
    UNEXPECTED = 0x8077000B
    PROTOCOL = 0x8077000C
    OPEN = 0x8077000D
    CLOSE = 0x8077000E
    BUSY = 0x8077000F


def hresult(value: int) -> int:
    """Mask a result to unsigned 32 bits (Linux returns them as signed ints)."""
    return value & 0xFFFFFFFF


def describe(code: int) -> str:
    """``VD_E_TIMEOUT (0x80770003)`` or the bare hex for unknown results."""
    code = hresult(code)
    try:
        return f"VD_E_{VdError(code).name} (0x{code:08X})"
    except ValueError:
        return f"0x{code:08X}"


class Device(Protocol):
    """One open virtual device (``ClientVirtualDevice`` / ``IClientVirtualDevice``)."""

    def get_command(self, timeout_ms: int) -> tuple[int, ctypes._Pointer[VDCCommand] | None]:
        """``(masked result, command)``; the command is set only when the result is 0."""
        ...

    def complete_command(
        self,
        command: ctypes._Pointer[VDCCommand],
        completion_code: int,
        bytes_transferred: int,
        position: int,
    ) -> int: ...


class DeviceSet(Protocol):
    """One virtual device set (``ClientVirtualDeviceSet`` / ``IClientVirtualDeviceSet2``).

    Every method returns the masked result; ``open_device`` returns it with the device.
    """

    def create(self, name: str, config: VDConfig) -> int: ...

    def get_configuration(self, timeout_ms: int, config: VDConfig) -> int: ...

    def open_device(self, name: str) -> tuple[int, Device | None]: ...

    def signal_abort(self) -> int: ...

    def close(self) -> int: ...

    def release(self) -> None:
        """Free the object (destructor / COM Release); safe to call once after close."""
        ...


class Backend(Protocol):
    """A platform's way to make device sets."""

    def new_device_set(self) -> DeviceSet: ...
