"""The Windows VDI back end: the ``SQLVDI`` COM object called through its vtable.

Used by ``SqlServerEngine`` on Windows (``WindowsVdi(instance).new_device_set()``).
Importable everywhere; only ``WindowsVdi()`` touches ``ole32``.  No COM library (comtypes,
pywin32) is needed: ``CoCreateInstance`` hands back an interface pointer whose first word
is the vtable, and each method is a ``stdcall`` function taking ``this`` first.  Slots:
IUnknown's three, then the order in ``vdi.h`` (see ``SET_SLOTS`` / ``DEVICE_SLOTS``).
"""

from __future__ import annotations

import ctypes
import uuid
from typing import Any

from .abi import CommandPointer, Device, VDCCommand, VDConfig, hresult

CLSID_MSSQL_CLIENT_VIRTUAL_DEVICE_SET = uuid.UUID("40700425-0080-11d2-851f-00c04fc21759")
IID_ICLIENT_VIRTUAL_DEVICE_SET2 = uuid.UUID("d0e6eb07-7a62-11d2-8573-00c04fc21759")
IID_ICLIENT_VIRTUAL_DEVICE = uuid.UUID("40700424-0080-11d2-851f-00c04fc21759")

SET_SLOTS: dict[str, int] = {
    "QueryInterface": 0,
    "AddRef": 1,
    "Release": 2,
    "Create": 3,
    "GetConfiguration": 4,
    "OpenDevice": 5,
    "Close": 6,
    "SignalAbort": 7,
    "OpenInSecondary": 8,
    "GetBufferHandle": 9,
    "MapBufferHandle": 10,
    "CreateEx": 11,
    "OpenInSecondaryEx": 12,
}
DEVICE_SLOTS: dict[str, int] = {
    "QueryInterface": 0,
    "AddRef": 1,
    "Release": 2,
    "GetCommand": 3,
    "CompleteCommand": 4,
}

COINIT_MULTITHREADED = 0x0
CLSCTX_INPROC_SERVER = 0x1
RPC_E_CHANGED_MODE = 0x80010106
S_FALSE = 1

#: ``stdcall`` on Windows; on x86-64 it is the same convention as cdecl, which lets the
#: unit tests exercise the vtable calls on Linux with CFUNCTYPE.
_FUNCTYPE: Any = getattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE)
_P = ctypes.c_void_p
_DWORD = ctypes.c_uint32
_HRESULT = ctypes.c_long


class GUID(ctypes.Structure):
    _fields_ = [
        ("Data1", ctypes.c_uint32),
        ("Data2", ctypes.c_uint16),
        ("Data3", ctypes.c_uint16),
        ("Data4", ctypes.c_ubyte * 8),
    ]

    @classmethod
    def from_uuid(cls, value: uuid.UUID) -> GUID:
        return cls.from_buffer_copy(value.bytes_le)


SET_PROTOTYPES: dict[str, Any] = {
    "Release": _FUNCTYPE(ctypes.c_ulong, _P),
    "CreateEx": _FUNCTYPE(
        _HRESULT, _P, ctypes.c_wchar_p, ctypes.c_wchar_p, ctypes.POINTER(VDConfig)
    ),
    "GetConfiguration": _FUNCTYPE(_HRESULT, _P, _DWORD, ctypes.POINTER(VDConfig)),
    "OpenDevice": _FUNCTYPE(_HRESULT, _P, ctypes.c_wchar_p, ctypes.POINTER(_P)),
    "Close": _FUNCTYPE(_HRESULT, _P),
    "SignalAbort": _FUNCTYPE(_HRESULT, _P),
}
DEVICE_PROTOTYPES: dict[str, Any] = {
    "GetCommand": _FUNCTYPE(_HRESULT, _P, _DWORD, ctypes.POINTER(CommandPointer)),
    "CompleteCommand": _FUNCTYPE(_HRESULT, _P, CommandPointer, _DWORD, _DWORD, ctypes.c_uint64),
}


def vtable_method(interface: int, slot: int, prototype: Any) -> Any:
    """The function in ``slot`` of the vtable of the COM object at ``interface``."""
    vtable = ctypes.cast(_P(interface), ctypes.POINTER(ctypes.POINTER(_P)))[0]
    return prototype(vtable[slot])


class _ComObject:
    def __init__(self, pointer: int, slots: dict[str, int], prototypes: dict[str, Any]) -> None:
        self.pointer = pointer
        self._methods = {
            name: vtable_method(pointer, slots[name], proto) for name, proto in prototypes.items()
        }

    def call(self, name: str, *args: Any) -> int:
        return hresult(self._methods[name](_P(self.pointer), *args))


class WindowsDevice:
    def __init__(self, pointer: int) -> None:
        self._com = _ComObject(pointer, DEVICE_SLOTS, DEVICE_PROTOTYPES)

    def get_command(self, timeout_ms: int) -> tuple[int, ctypes._Pointer[VDCCommand] | None]:
        command = CommandPointer()
        result = self._com.call("GetCommand", timeout_ms, ctypes.byref(command))
        return result, (command if result == 0 and command else None)

    def complete_command(
        self,
        command: ctypes._Pointer[VDCCommand],
        completion_code: int,
        bytes_transferred: int,
        position: int,
    ) -> int:
        return self._com.call(
            "CompleteCommand", command, completion_code, bytes_transferred, position
        )


class WindowsDeviceSet:
    """``IClientVirtualDeviceSet2``; ``instance`` None is the default instance."""

    def __init__(self, pointer: int, instance: str | None) -> None:
        self._com = _ComObject(pointer, SET_SLOTS, SET_PROTOTYPES)
        self._instance = instance
        self._alive = True

    def create(self, name: str, config: VDConfig) -> int:
        return self._com.call("CreateEx", self._instance, name, ctypes.byref(config))

    def get_configuration(self, timeout_ms: int, config: VDConfig) -> int:
        return self._com.call("GetConfiguration", timeout_ms, ctypes.byref(config))

    def open_device(self, name: str) -> tuple[int, Device | None]:
        pointer = _P()
        result = self._com.call("OpenDevice", name, ctypes.byref(pointer))
        if result != 0 or not pointer.value:
            return result, None
        return result, WindowsDevice(pointer.value)

    def signal_abort(self) -> int:
        return self._com.call("SignalAbort")

    def close(self) -> int:
        return self._com.call("Close")

    def release(self) -> None:
        if self._alive:
            self._alive = False
            self._com.call("Release")


class WindowsVdi:
    """Creates device sets through COM (apartment: multithreaded, per calling thread)."""

    def __init__(self, instance: str | None = None) -> None:
        self.instance = instance
        windll: Any = getattr(ctypes, "oledll", None)
        if windll is None:
            raise OSError("the Windows VDI back end needs Windows (ole32)")
        self._ole32 = ctypes.windll.ole32  # type: ignore[attr-defined,unused-ignore]

    def new_device_set(self) -> WindowsDeviceSet:
        result = hresult(self._ole32.CoInitializeEx(None, COINIT_MULTITHREADED))
        if result not in (0, S_FALSE, RPC_E_CHANGED_MODE):
            raise OSError(f"CoInitializeEx failed: 0x{result:08X}")
        pointer = _P()
        result = hresult(
            self._ole32.CoCreateInstance(
                ctypes.byref(GUID.from_uuid(CLSID_MSSQL_CLIENT_VIRTUAL_DEVICE_SET)),
                None,
                CLSCTX_INPROC_SERVER,
                ctypes.byref(GUID.from_uuid(IID_ICLIENT_VIRTUAL_DEVICE_SET2)),
                ctypes.byref(pointer),
            )
        )
        if result != 0 or not pointer.value:
            raise OSError(f"CoCreateInstance(SQLVDI) failed: 0x{result:08X}; is SQLVDI registered?")
        return WindowsDeviceSet(pointer.value, self.instance)
