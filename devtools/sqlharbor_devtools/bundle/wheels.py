"""The dependency wheelhouses of the agent bundle: downloaded from PyPI once, then cached.

Called by :mod:`.build`.  :func:`ensure` runs ``pex3 download`` for the product wheel with
its ``sqlserver`` extra against the complete platforms of one system (:mod:`.targets`),
binary wheels only, constrained to :func:`constraints`, and keeps the wheels it brought
(all but the product's own) in ``<cache>/agent-bundle/wheels-<system>-<key>/``.  The key
hashes the constraints, the product's declared dependencies, the platforms, the pex and pip
versions and this module's source, so a new pin or dependency downloads again and anything
else reuses the folder.  Folders unused for :data:`KEEP_UNUSED_DAYS` days are deleted when a
new one is made; pex's own cache (pip, its downloads) is ``<cache>/agent-bundle/pex-root``.

:func:`constraints` are the versions installed in the environment running the build (the
ones the tests ran against, as for the operator image: :func:`~sqlharbor_devtools.image.
pylayer.pins`) plus :data:`EXTRA_PINS` for what that environment does not hold.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from sqlharbor_devtools.bundle import targets
from sqlharbor_devtools.bundle.errors import BundleError
from sqlharbor_devtools.image import pylayer
from sqlharbor_devtools.image.errors import ImageError
from sqlharbor_devtools.image.host import Progress, run

#: the extra the bundle installs with the product (pyodbc)
EXTRA = "sqlserver"
#: pins for distributions the build environment lacks: ``make venv`` does not install the
#: ``sqlserver`` extra (pyodbc needs unixODBC to import), and colorama is click's dependency
#: on Windows only.  Bump them on purpose; the bundle test checks every wheel is pinned.
EXTRA_PINS = ("pyodbc==5.5.0", "colorama==0.4.6")
#: the pip pex resolves with (one of those ``pex --pip-version`` lists, and on PyPI)
PIP_VERSION = "26.2.1"
#: a cached wheelhouse nobody built or used for this long is deleted (other keys: other branches)
KEEP_UNUSED_DAYS = 14
#: pex3 and pex, run by this interpreter: the pex of the build environment
PEX3 = (sys.executable, "-m", "pex.cli")
PEX = (sys.executable, "-m", "pex")


def constraints() -> list[str]:
    """``name==version`` lines: the build environment's versions, then :data:`EXTRA_PINS`."""
    pinned = {line.split("==")[0]: line for line in pylayer.pins()}
    for line in EXTRA_PINS:
        pinned.setdefault(line.split("==")[0], line)
    return sorted(pinned.values())


def pex_root(cache_dir: Path) -> Path:
    return cache_dir / "agent-bundle" / "pex-root"


def declared_dependencies(repo: Path) -> list[str]:
    """The product's dependencies and its :data:`EXTRA` ones, as pyproject.toml says."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    extra = project.get("optional-dependencies", {}).get(EXTRA, [])
    return [*project.get("dependencies", []), *(f"[{EXTRA}] {r}" for r in extra)]


def cache_key(repo: Path, system: str) -> str:
    """The wheelhouse key of ``system`` (see the module docstring)."""
    inputs = {
        "system": system,
        "constraints": constraints(),
        "dependencies": declared_dependencies(repo),
        "platforms": targets.fingerprint(system),
        "pex": version("pex"),
        "pip": PIP_VERSION,
        "recipe": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:20]


def ensure(
    repo: Path,
    cache_dir: Path,
    system: str,
    product_wheel: Path,
    progress: Progress,
    *,
    refresh: bool = False,
) -> Path:
    """The cached folder of ``system``'s dependency wheels; download them first if absent."""
    key = cache_key(repo, system)
    folder = cache_dir / "agent-bundle"
    house = folder / f"wheels-{system}-{key}"
    if house.is_dir() and not refresh:
        progress(f"{system} dependency wheels: cached ({house})")
        os.utime(house)  # in use: kept by _forget_unused
        return house
    folder.mkdir(parents=True, exist_ok=True)
    progress(
        f"downloading the {system} dependency wheels from PyPI (CPython "
        f"{targets.python_range()})..."
    )
    with tempfile.TemporaryDirectory(prefix=f".{system}-{key}-", dir=folder) as tmp:
        work = Path(tmp)
        pins = work / "constraints.txt"
        pins.write_text("\n".join(constraints()) + "\n")
        download = work / "wheels"
        platforms = targets.write(work / "platforms", system)
        argv = [*PEX3, "download", f"--dest-dir={download}", *resolver_args(cache_dir)]
        argv += [f"--complete-platform={p}" for p in platforms]
        argv += [f"--constraints={pins}", f"sqlharbor[{EXTRA}] @ {product_wheel.as_uri()}"]
        pex_run(argv, what=f"pex3 download ({system})", timeout=1800)
        for wheel in download.glob("sqlharbor-*.whl"):
            wheel.unlink()  # the product is built from the checkout each time
        unexpected = [p.name for p in download.iterdir() if not p.name.endswith(".whl")]
        if unexpected:
            raise BundleError(f"pex3 download brought files that are not wheels: {unexpected}")
        if refresh and house.exists():
            shutil.rmtree(house)
        os.replace(download, house)
    progress(f"{system} dependency wheels: downloaded and cached ({house})")
    _forget_unused(folder)
    return house


def resolver_args(cache_dir: Path) -> list[str]:
    """What every pex/pex3 resolve shares: the cache, the pip, wheels only."""
    return [f"--pex-root={pex_root(cache_dir)}", f"--pip-version={PIP_VERSION}", "--no-build"]


def pex_run(argv: Sequence[str], *, what: str, timeout: float = 900) -> str:
    """Run pex/pex3 with no ``PEX_*`` settings from the environment; raise :class:`BundleError`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEX")}
    try:
        return run(argv, what=what, env=env, timeout=timeout)
    except ImageError as exc:  # the image build's runner: same failure, this build's type
        raise BundleError(exc.message) from None


def _forget_unused(folder: Path) -> None:
    """Delete the wheelhouses nobody built or used for :data:`KEEP_UNUSED_DAYS` days."""
    cutoff = time.time() - KEEP_UNUSED_DAYS * 86400
    for old in folder.glob("wheels-*"):
        if old.is_dir() and old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
