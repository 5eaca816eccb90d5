"""``build_bundle``: the agent's product wheel, Linux pex and Windows wheelhouse in ``dist/``.

Called by ``sqlharbor-dev bundle build`` (:mod:`sqlharbor_devtools.cli.bundle`, ``make
agent-bundle``) and by ``tests/integration/test_agent_bundle.py``.  The steps: the product
wheel, built from the checkout as the operator image builds it
(:func:`~sqlharbor_devtools.image.pylayer.product_wheel`: never the dev tools or the tests);
the Linux dependency wheels, cached (:mod:`.wheels`); the pex (:mod:`.pexfile`); the Windows
dependency wheels, cached; the Windows zip (:mod:`.windows`).  Beside the three files goes a
build record ``sqlharbor-agent-<version>.build.json`` (source digest, sizes, sha256s, the
wheels in each bundle, step times).

The source digest hashes the product sources, this package's source, the Windows scripts and
the wheel cache keys (so the pins): when the record in the output folder carries the same
digest and its files are there, nothing is rebuilt (``force`` rebuilds anyway).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any, TypeVar

from sqlharbor_devtools.bundle import pexfile, targets, wheels, windows
from sqlharbor_devtools.bundle.errors import BundleError
from sqlharbor_devtools.devenv.toolchain import Toolchain
from sqlharbor_devtools.image import pylayer
from sqlharbor_devtools.image.errors import ImageError
from sqlharbor_devtools.image.host import Progress

T = TypeVar("T")

WINDOWS_DIR = Path("config") / "agent" / "windows"


def wheel_name(version: str) -> str:
    return f"sqlharbor-{version}-py3-none-any.whl"


def pex_name(version: str) -> str:
    return f"sqlharbor-agent-{version}-linux-x86_64.pex"


def windows_name(version: str) -> str:
    return f"{windows.folder_name(version)}.zip"


def record_name(version: str) -> str:
    return f"sqlharbor-agent-{version}.build.json"


@dataclass(frozen=True)
class BundleOptions:
    """What to build from, where to put it, and the settings read from the environment."""

    repo: Path
    out_dir: Path
    cache_dir: Path
    source_date_epoch: int | None = None
    force: bool = False
    refresh: bool = False

    @classmethod
    def from_env(
        cls,
        repo: Path,
        out_dir: Path,
        *,
        force: bool = False,
        refresh: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> BundleOptions:
        """Read ``SOURCE_DATE_EPOCH`` and the cache folder (as the control plane's:
        ``SQLHARBOR_CACHE_DIR``, else ``~/.cache/sqlharbor``)."""
        env = os.environ if environ is None else environ
        epoch = env.get("SOURCE_DATE_EPOCH")
        return cls(
            repo=repo,
            out_dir=out_dir,
            cache_dir=Toolchain.from_env(env).cache_dir,
            source_date_epoch=int(epoch) if epoch else None,
            force=force,
            refresh=refresh,
        )


@dataclass(frozen=True)
class BuiltBundle:
    """The three files, the build record, and what the record says about them."""

    version: str
    wheel: Path
    pex: Path
    windows_zip: Path
    record: Path
    source_digest: str
    reused: bool
    seconds: float

    @property
    def files(self) -> tuple[Path, Path, Path]:
        return (self.wheel, self.pex, self.windows_zip)


def product_version(repo: Path) -> str:
    return str(tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"])


def source_digest(repo: Path) -> str:
    """Hash of what the bundle is made from (see the module docstring)."""
    digest = hashlib.sha256()
    for system in ("linux", "windows"):
        digest.update(f"wheels {system} {wheels.cache_key(repo, system)}\n".encode())
    digest.update(f"pex {installed_version('pex')}\n".encode())
    recipe = [*sorted(Path(__file__).parent.glob("*.py")), Path(pylayer.__file__)]
    for path in recipe:
        digest.update(f"recipe {path.name}\n".encode() + path.read_bytes())
    for top in (*pylayer.PRODUCT_SOURCES, str(WINDOWS_DIR)):
        for path in pylayer.source_files(repo / top):
            digest.update(f"src {path.relative_to(repo).as_posix()}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_bundle(options: BundleOptions, progress: Progress) -> BuiltBundle:
    """Build the bundle in ``options.out_dir`` (or reuse it: see the module docstring)."""
    started = time.monotonic()
    version = product_version(options.repo)
    out = options.out_dir
    digest = source_digest(options.repo)
    built = BuiltBundle(
        version=version,
        wheel=out / wheel_name(version),
        pex=out / pex_name(version),
        windows_zip=out / windows_name(version),
        record=out / record_name(version),
        source_digest=digest,
        reused=True,
        seconds=0.0,
    )
    if not options.force and not options.refresh and _reusable(built):
        progress(f"{built.pex} and its siblings are up to date (source digest {digest[:12]})")
        return built
    steps: dict[str, float] = {}
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sqlharbor-bundle-") as tmp:
        work = Path(tmp)
        wheel = _timed(steps, "wheel", lambda: _product_wheel(options.repo, work, progress))
        linux = _timed(steps, "linux-wheels", lambda: _house(options, "linux", wheel, progress))
        platforms = targets.write(work / "platforms", "linux")
        _timed(
            steps,
            "pex",
            lambda: pexfile.build(wheel, linux, platforms, options.cache_dir, built.pex, progress),
        )
        win = _timed(steps, "windows-wheels", lambda: _house(options, "windows", wheel, progress))
        epoch = options.source_date_epoch or _git_epoch(options.repo) or int(time.time())
        progress("zipping the Windows wheelhouse...")
        entries = _timed(
            steps,
            "windows-zip",
            lambda: windows.write(
                built.windows_zip,
                version,
                [wheel, *sorted(win.glob("*.whl"))],
                options.repo / WINDOWS_DIR,
                epoch,
            ),
        )
        shutil.copyfile(wheel, built.wheel)
    built = replace(built, reused=False, seconds=round(time.monotonic() - started, 1))
    _write_record(built, steps, entries)
    progress(
        f"built {built.pex.name} ({built.pex.stat().st_size / 1e6:.1f} MB) and "
        f"{built.windows_zip.name} ({built.windows_zip.stat().st_size / 1e6:.1f} MB) "
        f"in {built.seconds:.0f} s"
    )
    return built


def _product_wheel(repo: Path, work: Path, progress: Progress) -> Path:
    try:
        return pylayer.product_wheel(repo, work, progress)
    except ImageError as exc:  # the image build's step: same failure, this build's type
        raise BundleError(exc.message) from None


def _house(options: BundleOptions, system: str, wheel: Path, progress: Progress) -> Path:
    return wheels.ensure(
        options.repo, options.cache_dir, system, wheel, progress, refresh=options.refresh
    )


def _timed(steps: dict[str, float], name: str, step: Callable[[], T]) -> T:
    began = time.monotonic()
    result = step()
    steps[name] = round(time.monotonic() - began, 1)
    return result


def _git_epoch(repo: Path) -> int | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    value = result.stdout.strip()
    return int(value) if result.returncode == 0 and value.isdigit() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as content:
        for block in iter(lambda: content.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _reusable(built: BuiltBundle) -> bool:
    if not (built.record.is_file() and all(f.is_file() for f in built.files)):
        return False
    try:
        data = json.loads(built.record.read_text())
    except ValueError:
        return False
    sizes = {f.name: f.stat().st_size for f in built.files}
    recorded = {name: entry.get("bytes") for name, entry in data.get("files", {}).items()}
    return bool(data.get("source_digest") == built.source_digest and recorded == sizes)


def _write_record(built: BuiltBundle, steps: Mapping[str, float], entries: list[str]) -> None:
    data: dict[str, Any] = {
        "version": built.version,
        "source_digest": built.source_digest,
        "build_seconds": built.seconds,
        "step_seconds": dict(steps),
        "targets": {
            "python": f"CPython {targets.python_range()}",
            "linux": "x86_64, glibc >= {}.{}".format(*targets.GLIBC_FLOOR),
            "windows": "win_amd64",
        },
        "tools": {"pex": installed_version("pex"), "pip": wheels.PIP_VERSION},
        "files": {f.name: {"bytes": f.stat().st_size, "sha256": _sha256(f)} for f in built.files},
        "pex_distributions": [" ".join(d) for d in pexfile.distributions(built.pex)],
        "windows_entries": entries,
    }
    built.record.write_text(json.dumps(data, indent=1) + "\n")
