"""The image's Python layer: the product and its dependencies in a venv at /opt/sqlharbor.

Called by :mod:`.build`, in this order:

1. :func:`product_wheel` builds the ``sqlharbor`` wheel from a copy of the checkout's product
   sources (:data:`PRODUCT_SOURCES`) with this interpreter's setuptools and no build
   isolation, as ``tests/unit/test_product_wheel.py`` does: never the dev tools.
2. :func:`wheelhouse` downloads ``sqlharbor[operator]``'s dependencies (and pip, to install
   with) from PyPI: binary wheels only, for CPython 3.11 on manylinux x86_64 up to glibc
   2.36 (bookworm's), pinned to the versions installed in the environment running the build
   (the ones the tests ran against) wherever it has them.
3. :func:`install` works in a scratch copy of the base root: the image's own python makes
   the venv (``--without-pip``), pip runs from its wheel inside the root, offline, from the
   wheelhouse; the venv is byte-compiled (unchecked-hash), its activate scripts go (there
   is no shell to source them), and an import of the operator's modules checks the result
   while the dev tools, pytest and pip must not be importable.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlharbor_devtools.image.baseroot import COMPILE, PYTHON
from sqlharbor_devtools.image.errors import ImageError
from sqlharbor_devtools.image.host import Progress, run, run_chrooted

VENV = "/opt/sqlharbor"
SITE_PACKAGES = f"{VENV}/lib/python3.11/site-packages"
REQUIREMENT = "sqlharbor[operator]"
#: what the product wheel is built from (everything else in the checkout is not product)
PRODUCT_SOURCES = ("pyproject.toml", "README.md", "sqlharbor", "operator", "agent")
#: never pinned from the build environment: the product itself and the dev tools
_NOT_PINNED = {"sqlharbor", "sqlharbor-devtools"}
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
_QUIET = ("--quiet", "--disable-pip-version-check", "--no-warn-script-location")
_PIP = (sys.executable, "-m", "pip", *_QUIET[:2])
_ACTIVATE = ("activate", "activate.csh", "activate.fish", "Activate.ps1")
_SMOKE = """\
import importlib.util
import sqlharbor_operator.handlers, sqlharbor_operator.main
absent = [m for m in ("sqlharbor_devtools", "pytest", "pip") if importlib.util.find_spec(m)]
assert not absent, f"must not be in the image: {absent}"
"""


def source_files(top: Path) -> Iterator[Path]:
    """Every file of the product source ``top`` (a file or a folder) that a build digest
    covers, in a stable order: no bytecode, caches or egg-info.  Used by the image and the
    agent bundle to decide whether a build is still up to date."""
    if top.is_file():
        yield top
        return
    for path in sorted(top.rglob("*")):
        parts = path.relative_to(top).parts
        if path.is_file() and not any(
            p == "__pycache__" or p.endswith((".egg-info", ".pyc")) for p in parts
        ):
            yield path


def product_wheel(repo: Path, work: Path, progress: Progress) -> Path:
    """Build the product wheel from a copy of ``repo``'s product sources into ``work``."""
    source, out = work / "product-src", work / "product-wheel"
    source.mkdir(parents=True)
    for name in PRODUCT_SOURCES:
        if (repo / name).is_dir():
            shutil.copytree(repo / name, source / name, ignore=_IGNORED, symlinks=True)
        else:
            shutil.copy2(repo / name, source / name)
    progress("building the product wheel...")
    offline = ["--no-deps", "--no-build-isolation", "--no-cache-dir"]
    run([*_PIP, "wheel", *offline, f"--wheel-dir={out}", str(source)], what="pip wheel (product)")
    wheels = sorted(out.glob("sqlharbor-*.whl"))
    if len(wheels) != 1:
        raise ImageError(f"pip wheel made {[w.name for w in wheels]}, not one sqlharbor wheel")
    return wheels[0]


def manylinux_platforms(glibc_minor: int = 36) -> list[str]:
    """pip ``--platform`` values for glibc 2.17..2.``glibc_minor`` (pip does not expand
    ``manylinux_2_36`` to the older tags by itself)."""
    tags = [f"manylinux_2_{m}_x86_64" for m in range(glibc_minor, 16, -1)]
    return [*tags, "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


def pins(distributions: Iterable[importlib.metadata.Distribution] | None = None) -> list[str]:
    """``name==version`` of every distribution in the build environment but the product."""
    found = importlib.metadata.distributions() if distributions is None else distributions
    result = {}
    for dist in found:
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
        if name and name not in _NOT_PINNED:
            result[name] = f"{name}=={dist.version}"
    return sorted(result.values())


def wheelhouse(wheel: Path, work: Path, progress: Progress) -> Path:
    """Download ``sqlharbor[operator]``'s dependencies and pip into ``work/wheelhouse``."""
    house = work / "wheelhouse"
    constraints = work / "constraints.txt"
    constraints.write_text("\n".join(pins()) + "\n")
    progress("downloading the dependencies' wheels from PyPI...")
    target = ["--only-binary=:all:", "--python-version=3.11", "--implementation=cp"]
    target += ["--abi=cp311", *(f"--platform={p}" for p in manylinux_platforms())]
    requirements = [f"{REQUIREMENT} @ {wheel.as_uri()}", "pip"]
    run(
        [
            *_PIP,
            "download",
            *target,
            f"--constraint={constraints}",
            f"--dest={house}",
            *requirements,
        ],
        what="pip download (the dependencies)",
    )
    return house


def install(root: Path, house: Path, progress: Progress) -> None:
    """Make the venv in ``root`` from ``house``, byte-compile it and check it imports."""
    inside = root / "tmp" / "wheelhouse"
    shutil.copytree(house, inside)
    pip_wheels = sorted(inside.glob("pip-*.whl"))
    if not pip_wheels:
        raise ImageError("the wheelhouse has no pip wheel")
    pip = f"/tmp/wheelhouse/{pip_wheels[-1].name}/pip"  # pip runs from its own wheel
    progress(f"installing {REQUIREMENT} into {VENV} (offline, inside the root)...")
    run_chrooted(root, [PYTHON, "-m", "venv", "--without-pip", VENV], what="python -m venv")
    offline = ["--no-index", "--find-links=/tmp/wheelhouse", "--no-cache-dir", "--no-compile"]
    run_chrooted(
        root,
        [f"{VENV}/bin/python", pip, "install", *_QUIET, *offline, REQUIREMENT],
        what="pip install (inside the root)",
    )
    shutil.rmtree(inside)
    progress("byte-compiling the venv...")
    run_chrooted(root, [*COMPILE, SITE_PACKAGES], what="compile the venv")
    for name in _ACTIVATE:
        (root / VENV.lstrip("/") / "bin" / name).unlink(missing_ok=True)
    run_chrooted(root, [f"{VENV}/bin/python", "-I", "-B", "-c", _SMOKE], what="import check")


def installed(root: Path) -> list[tuple[str, str]]:
    """(name, version) of every distribution installed in the root's venv."""
    site = root / SITE_PACKAGES.lstrip("/")
    found = importlib.metadata.distributions(path=[str(site)])
    return sorted((d.metadata["Name"] or "?", d.version) for d in found)
