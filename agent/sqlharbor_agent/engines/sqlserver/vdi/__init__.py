"""VDI for the SQL Server plugin: the ABI (``abi``), the Linux and Windows back ends, and
the command loop (``loop``) the engine drives for every backup and restore."""

from __future__ import annotations

import sys

from .abi import Backend


def default_backend(linux_library: str, instance: str | None = None) -> Backend:
    """The back end for this platform: COM on Windows, ``libsqlvdi.so`` elsewhere."""
    if sys.platform == "win32":
        from .windows import WindowsVdi

        return WindowsVdi(instance)
    from .linux import LinuxVdi

    return LinuxVdi(linux_library)
