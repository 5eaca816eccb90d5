"""The Linux bundle: one pex file that runs ``sqlharbor-agent`` with any CPython 3.11-3.14.

Called by :mod:`.build`.  :func:`build` packs the product wheel and the cached dependency
wheels (:mod:`.wheels`) with ``pex --pre-resolved-dists``: no resolver runs, so a rebuild
takes seconds.  The pex:

- boots through ``/bin/sh`` (``--sh-boot``), which picks the first of ``python3.11`` ...
  ``python3.14`` on ``PATH`` (``PEX_PYTHON=/path/to/python3.12`` chooses one), so it runs
  as ``./sqlharbor-agent.pex`` on a VM whose ``python3`` is older; or run it as
  ``python3.12 sqlharbor-agent.pex``;
- carries the wheels of every target interpreter (:mod:`.targets`) and, on first run,
  unpacks them under ``PEX_ROOT`` (``~/.cache/pex`` by default; the systemd unit sets
  ``/var/cache/sqlharbor/pex``) and makes a venv there (``--venv``) that later runs start
  straight from;
- runs isolated from the host's site-packages and ``PYTHON*`` variables (``-I``) and
  includes pex's tools (``PEX_TOOLS=1 python3.11 sqlharbor-agent.pex venv DIR`` turns it
  into an ordinary venv).

:func:`distributions` reads the built file's ``PEX-INFO``; :func:`check` refuses a pex that
lacks what the agent needs or holds what it must not (the operator's kopf and
kubernetes_asyncio, the dev tools, the test tools).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

from sqlharbor_devtools.bundle import targets
from sqlharbor_devtools.bundle.errors import BundleError
from sqlharbor_devtools.bundle.wheels import EXTRA, PEX, pex_run, resolver_args
from sqlharbor_devtools.image.host import Progress

SCRIPT = "sqlharbor-agent"
ENTRY_POINT = "sqlharbor_agent.main:main"
#: distributions the agent needs (normalised names)
REQUIRED = ("sqlharbor", "pyodbc", "zstandard", "cryptography", "azure-storage-blob")
#: distributions the bundle must not hold: the operator's framework, the dev tools, tests
FORBIDDEN = (
    "kopf",
    "kubernetes-asyncio",
    "sqlharbor-devtools",
    "pytest",
    "hypothesis",
    "mypy",
    "pex",
)
_WHEEL = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<tags>[^-]+-[^-]+-[^-]+)\.whl$"
)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_wheel_name(filename: str) -> tuple[str, str, str]:
    """(normalised name, version, ``python-abi-platform`` tags) of a wheel file name."""
    match = _WHEEL.match(filename)
    if match is None:
        raise BundleError(f"not a wheel file name: {filename}")
    return normalise(match["name"]), match["version"], match["tags"]


def build(
    product_wheel: Path,
    dependency_wheels: Path,
    platforms: Sequence[Path],
    cache_dir: Path,
    dest: Path,
    progress: Progress,
) -> None:
    """Write the pex to ``dest`` (beside it first, then renamed into place)."""
    partial = dest.with_name(f".{dest.name}.partial")
    argv = [
        *PEX,
        "--venv",  # (an optional value: never last before a positional argument)
        *resolver_args(cache_dir),
        f"--pre-resolved-dists={dependency_wheels}",
        f"--pre-resolved-dists={product_wheel}",
        *(f"--complete-platform={p}" for p in platforms),
        f"--console-script={SCRIPT}",
        "--sh-boot",
        "--include-tools",
        f"--output-file={partial}",
        f"sqlharbor[{EXTRA}]",
    ]
    progress(
        f"packing the pex (CPython {targets.python_range()}, glibc >= "
        f"{targets.GLIBC_FLOOR[0]}.{targets.GLIBC_FLOOR[1]})..."
    )
    try:
        pex_run(argv, what="pex (the Linux bundle)")
        check(partial)
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)


def pex_info(pex: Path) -> dict[str, object]:
    """The pex's ``PEX-INFO`` (entry point, distributions, settings)."""
    with zipfile.ZipFile(pex) as archive:
        info: dict[str, object] = json.loads(archive.read("PEX-INFO"))
    return info


def distributions(pex: Path) -> list[tuple[str, str, str]]:
    """(normalised name, version, tags) of every wheel in the pex, sorted."""
    listed = pex_info(pex).get("distributions")
    if not isinstance(listed, dict):
        raise BundleError(f"{pex}: PEX-INFO lists no distributions")
    return sorted(parse_wheel_name(str(name)) for name in listed)


def check(pex: Path) -> None:
    """Raise :class:`BundleError` unless ``pex`` runs the agent with what it needs only."""
    info = pex_info(pex)
    if info.get("entry_point") != ENTRY_POINT:
        raise BundleError(f"{pex}: entry point {info.get('entry_point')!r}, not {ENTRY_POINT}")
    found = distributions(pex)
    names = {name for name, _, _ in found}
    missing = [n for n in REQUIRED if n not in names]
    present = [n for n in FORBIDDEN if n in names]
    if missing or present:
        raise BundleError(f"{pex}: missing {missing}, must not hold {present}")
    gaps = interpreter_gaps(found)
    if gaps:
        raise BundleError(f"{pex}: no wheel for some target interpreters: {gaps}")


def interpreter_gaps(found: Sequence[tuple[str, str, str]]) -> dict[str, list[str]]:
    """Version-specific distributions (``cp3XX-cp3XX``) lacking a wheel for a target
    interpreter: {name: [missing cp3XX...]}."""
    wanted = {f"cp3{minor}" for minor in targets.PYTHON_MINORS}
    per_name: dict[str, set[str]] = {}
    for name, _, tags in found:
        abi = tags.split("-")[1]
        if abi.startswith("cp3") and abi != "abi3":
            per_name.setdefault(name, set()).add(abi)
    return {n: sorted(wanted - abis) for n, abis in per_name.items() if wanted - abis}
