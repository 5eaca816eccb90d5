"""The VDI ABI: struct layouts, symbols, result masking, and both back ends' calls.

The Linux binding is called against the stand-in library (built from declarations with
the SDK's class and member signatures, so g++ emits the same mangled names).  The Windows
binding is exercised on Linux through a COM-shaped object built here: a pointer to a
vtable of callbacks, which checks every slot index and argument.
"""

from __future__ import annotations

import ctypes
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlharbor_agent.engines.sqlserver.vdi.abi import (
    VDCCommand,
    VDConfig,
    VdError,
    describe,
    hresult,
)
from sqlharbor_agent.engines.sqlserver.vdi.linux import SYMBOLS, LinuxVdi
from sqlharbor_agent.engines.sqlserver.vdi.windows import (
    CLSID_MSSQL_CLIENT_VIRTUAL_DEVICE_SET,
    DEVICE_PROTOTYPES,
    DEVICE_SLOTS,
    GUID,
    IID_ICLIENT_VIRTUAL_DEVICE_SET2,
    SET_PROTOTYPES,
    SET_SLOTS,
    WindowsDevice,
    WindowsDeviceSet,
)

from .standin import StandinVdi


def test_vdconfig_is_eleven_packed_uint32() -> None:
    assert ctypes.sizeof(VDConfig) == 44
    names = [f[0] for f in VDConfig._fields_]
    assert names == [
        "deviceCount", "features", "prefixZoneSize", "alignment", "softFileMarkBlockSize",
        "EOMWarningSize", "serverTimeOut", "blockSize", "maxIODepth", "maxTransferSize",
        "bufferAreaSize",
    ]  # fmt: skip
    for index, name in enumerate(names):
        assert getattr(VDConfig, name).offset == 4 * index


def test_command_block_layout() -> None:
    assert ctypes.sizeof(VDCCommand) == 24
    assert VDCCommand.commandCode.offset == 0
    assert VDCCommand.size.offset == 4
    assert VDCCommand.position.offset == 8
    assert VDCCommand.buffer.offset == 16


def test_results_are_masked_to_unsigned_32_bits() -> None:
    signed_timeout = -2139684861
    assert hresult(signed_timeout) == VdError.TIMEOUT == 0x80770003
    assert hresult(0x8077000E) == VdError.CLOSE
    assert describe(signed_timeout) == "VD_E_TIMEOUT (0x80770003)"
    assert describe(0x1234) == "0x00001234"


def test_the_stand_in_exports_exactly_the_symbols_the_binding_assumes(
    standin_library: Path,
) -> None:
    library = ctypes.CDLL(str(standin_library))
    for symbol in SYMBOLS.values():
        assert hasattr(library, symbol), symbol


def test_linux_calls_with_this_first_and_masks_errors(standin: StandinVdi) -> None:
    vdi = LinuxVdi(str(standin.path))
    vds = vdi.new_device_set()
    config = VDConfig(deviceCount=1)
    assert vds.get_configuration(1, config) == VdError.NOTOPEN
    name = str(uuid.uuid4())
    assert vds.create(name, config) == 0
    assert standin.open_sets() == 1
    assert vds.get_configuration(5, config) == VdError.TIMEOUT
    assert vds.open_device(name) == (VdError.NOTOPEN, None)
    assert vds.signal_abort() == 0
    assert vds.get_configuration(5, config) == VdError.ABORT
    assert vds.close() == 0
    assert vds.close() == VdError.NOTOPEN
    vds.release()
    vds.release()  # idempotent


def test_linux_refuses_a_duplicate_set_name(standin: StandinVdi) -> None:
    vdi = LinuxVdi(str(standin.path))
    first, second = vdi.new_device_set(), vdi.new_device_set()
    assert first.create("same", VDConfig(deviceCount=1)) == 0
    assert second.create("same", VDConfig(deviceCount=1)) == VdError.INVALID
    assert first.create("other", VDConfig(deviceCount=1)) == VdError.INVALID
    first.close()
    first.release()
    second.release()


def test_guids_use_the_com_memory_layout() -> None:
    guid = GUID.from_uuid(CLSID_MSSQL_CLIENT_VIRTUAL_DEVICE_SET)
    assert (guid.Data1, guid.Data2, guid.Data3) == (0x40700425, 0x0080, 0x11D2)
    assert bytes(guid.Data4) == bytes.fromhex("851f00c04fc21759")
    assert uuid.UUID("d0e6eb07-7a62-11d2-8573-00c04fc21759") == IID_ICLIENT_VIRTUAL_DEVICE_SET2


def test_vtable_slots_follow_iunknown_then_vdi_h_order() -> None:
    assert list(SET_SLOTS) == [
        "QueryInterface", "AddRef", "Release", "Create", "GetConfiguration", "OpenDevice",
        "Close", "SignalAbort", "OpenInSecondary", "GetBufferHandle", "MapBufferHandle",
        "CreateEx", "OpenInSecondaryEx",
    ]  # fmt: skip
    assert list(SET_SLOTS.values()) == list(range(13))
    assert DEVICE_SLOTS["GetCommand"] == 3
    assert DEVICE_SLOTS["CompleteCommand"] == 4


class FakeCom:
    """A COM-shaped object: first word points at a vtable of recording callbacks."""

    def __init__(self, slots: dict[str, int], prototypes: dict[str, Any], impl: Any) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._keep: list[Any] = []
        size = max(slots.values()) + 1
        self.vtable = (ctypes.c_void_p * size)()
        for name, slot in slots.items():
            if name not in prototypes:
                continue

            def method(*args: Any, _name: str = name) -> int:
                self.calls.append((_name, args))
                return int(getattr(impl, _name)(*args))

            callback = prototypes[name](method)
            self._keep.append(callback)
            self.vtable[slot] = ctypes.cast(callback, ctypes.c_void_p)
        self.object = (ctypes.c_void_p * 1)(ctypes.cast(self.vtable, ctypes.c_void_p))
        self.address = ctypes.addressof(self.object)


def test_windows_set_calls_go_through_the_right_slots() -> None:
    device_com: list[FakeCom] = []

    class SetImpl:
        def CreateEx(self, this: int, instance: str | None, name: str, cfg: Any) -> int:
            assert cfg.contents.deviceCount == 2
            return 0

        def GetConfiguration(self, this: int, timeout: int, cfg: Any) -> int:
            cfg.contents.maxTransferSize = 1048576
            return -2139684861 if timeout == 1 else 0  # VD_E_TIMEOUT as a signed HRESULT

        def OpenDevice(self, this: int, name: str, out: Any) -> int:
            out[0] = device_com[0].address
            return 0

        def Close(self, this: int) -> int:
            return 0

        def SignalAbort(self, this: int) -> int:
            return 0

        def Release(self, this: int) -> int:
            return 0

    com = FakeCom(SET_SLOTS, SET_PROTOTYPES, SetImpl())
    command = VDCCommand(commandCode=2, size=10, position=0, buffer=None)

    class DeviceImpl:
        def GetCommand(self, this: int, timeout: int, out: Any) -> int:
            out[0] = ctypes.pointer(command)
            return 0

        def CompleteCommand(self, this: int, cmd: Any, code: int, count: int, pos: int) -> int:
            assert ctypes.addressof(cmd.contents) == ctypes.addressof(command)
            return 0

    device_com.append(FakeCom(DEVICE_SLOTS, DEVICE_PROTOTYPES, DeviceImpl()))
    vds = WindowsDeviceSet(com.address, "SQL2019")
    config = VDConfig(deviceCount=2)
    assert vds.create("set-name", config) == 0
    assert vds.get_configuration(1, config) == VdError.TIMEOUT
    assert vds.get_configuration(1000, config) == 0
    assert config.maxTransferSize == 1048576
    result, device = vds.open_device("set-name")
    assert result == 0
    assert isinstance(device, WindowsDevice)
    got, pointer = device.get_command(500)
    assert got == 0
    assert pointer is not None
    assert pointer.contents.size == 10
    assert device.complete_command(pointer, 0, 10, 0) == 0
    assert vds.signal_abort() == 0
    assert vds.close() == 0
    vds.release()
    names = [c[0] for c in com.calls]
    assert names == [
        "CreateEx", "GetConfiguration", "GetConfiguration", "OpenDevice", "SignalAbort",
        "Close", "Release",
    ]  # fmt: skip
    assert all(c[1][0] == com.address for c in com.calls)  # `this` first
    assert com.calls[0][1][1:3] == ("SQL2019", "set-name")
    assert [c[0] for c in device_com[0].calls] == ["GetCommand", "CompleteCommand"]
    assert device_com[0].calls[1][1][2:] == (0, 10, 0)


def test_windows_back_end_refuses_to_start_off_windows() -> None:
    from sqlharbor_agent.engines.sqlserver.vdi.windows import WindowsVdi

    with pytest.raises(OSError, match="Windows"):
        WindowsVdi()
