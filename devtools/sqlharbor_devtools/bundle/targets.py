"""The platforms the agent bundle is built for, as pex "complete platforms".

Called by :mod:`.wheels` (``pex3 download``) and :mod:`.pexfile` (``pex``).  A complete
platform is the PEP 508 marker environment and the PEP 425 tags of one target interpreter;
pex resolves each requirement against it exactly (abbreviated ``--platform`` strings go
through ``pip debug --platform``, which does not expand ``manylinux_2_28`` to the older
glibc tags).  The targets:

- Linux: CPython 3.11 to 3.14 on x86_64 with glibc 2.28 or newer (RHEL 8 has 2.28, SLES 15
  SP3+ and Ubuntu 20.04 2.31, RHEL 9 2.34, Ubuntu 22.04 2.35): only wheels tagged
  ``manylinux_2_28`` or older (``manylinux2014`` is 2.17) qualify; musl is not a target.
- Windows: CPython 3.11 to 3.14 on ``win_amd64``.

``python_full_version`` is given as ``3.X.0``: the lowest patch release, so a marker that
excludes early patch releases errs towards installing a backport, never towards leaving one
out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packaging import tags

#: the CPython minor versions the bundle carries wheels for (3.11 is the product's floor)
PYTHON_MINORS = (11, 12, 13, 14)
#: the oldest glibc the Linux bundle runs on (RHEL 8's)
GLIBC_FLOOR = (2, 28)


def python_range() -> str:
    """``3.11-3.14``: the interpreters the bundle serves, for messages and the docs."""
    return f"3.{PYTHON_MINORS[0]}-3.{PYTHON_MINORS[-1]}"


def manylinux_tags(floor: tuple[int, int] = GLIBC_FLOOR) -> list[str]:
    """The x86_64 platform tags a glibc ``floor`` system accepts, newest first."""
    major, minor = floor
    tags_ = [f"manylinux_{major}_{m}_x86_64" for m in range(minor, 16, -1)]
    return [*tags_, "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


def _platform(minor: int, platforms: list[str], markers: dict[str, str]) -> dict[str, Any]:
    version = (3, minor)
    abi = f"cp3{minor}"
    compatible = [
        *tags.cpython_tags(version, abis=[abi], platforms=platforms),
        *tags.compatible_tags(version, interpreter=abi, platforms=platforms),
    ]
    environment = {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": f"3.{minor}",
        "python_full_version": f"3.{minor}.0",
        **markers,
    }
    return {"marker_environment": environment, "compatible_tags": [str(t) for t in compatible]}


def linux(minor: int) -> dict[str, Any]:
    """The complete platform of CPython 3.``minor`` on x86_64 Linux, glibc :data:`GLIBC_FLOOR`."""
    markers = {
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_system": "Linux",
        "sys_platform": "linux",
    }
    return _platform(minor, manylinux_tags(), markers)


def windows(minor: int) -> dict[str, Any]:
    """The complete platform of CPython 3.``minor`` on 64-bit Windows."""
    markers = {
        "os_name": "nt",
        "platform_machine": "AMD64",
        "platform_system": "Windows",
        "sys_platform": "win32",
    }
    return _platform(minor, ["win_amd64"], markers)


def write(folder: Path, system: str) -> list[Path]:
    """Write the complete platforms of ``system`` (``linux`` or ``windows``) into ``folder``."""
    make = {"linux": linux, "windows": windows}[system]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for minor in PYTHON_MINORS:
        path = folder / f"{system}-cp3{minor}.json"
        path.write_text(json.dumps(make(minor), indent=1, sort_keys=True) + "\n")
        paths.append(path)
    return paths


def fingerprint(system: str) -> str:
    """A stable text of ``system``'s platforms (part of the wheel cache key)."""
    make = {"linux": linux, "windows": windows}[system]
    return json.dumps([make(minor) for minor in PYTHON_MINORS], sort_keys=True)
