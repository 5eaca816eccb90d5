"""``build_image``: the operator's OCI image, made from package registries only.

Called by ``sqlharbor-dev image build`` (:mod:`sqlharbor_devtools.cli.image`, ``make image``)
and by ``tests/image``.  The steps: the host tools (:mod:`.host`); the Debian base layer,
cached (:mod:`.baseroot`); the product wheel, its dependencies' wheels and the venv made in
a scratch copy of the base root (:mod:`.pylayer`); the Python layer (``opt/sqlharbor``,
:mod:`.layers`); the OCI layout and its archive (:mod:`.oci`).  The result is
``<out>/sqlharbor-operator-<version>.oci.tar`` and, beside it, a build record
``sqlharbor-operator-<version>.build.json`` (source digest, packages, sizes, step times).

The source digest hashes the product sources, this package's own source, the base layer's
key and the pinned dependency versions: when the record in ``<out>`` carries the same
digest and its archive exists, nothing is rebuilt (``force`` rebuilds anyway).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlharbor_devtools.devenv.toolchain import Toolchain
from sqlharbor_devtools.image import baseroot, debian, oci, pylayer
from sqlharbor_devtools.image.errors import ImageToolMissingError
from sqlharbor_devtools.image.host import Progress, ensure_tools, is_root
from sqlharbor_devtools.image.layers import tree_bytes, write_layer

T = TypeVar("T")

NAME = "sqlharbor-operator"
ENTRYPOINT = (f"{pylayer.VENV}/bin/sqlharbor-operator",)
USER = f"{baseroot.UID}:{baseroot.UID}"
ENV = {
    "PATH": f"{pylayer.VENV}/bin:/usr/local/bin:/usr/bin:/bin",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "LANG": "C.UTF-8",
    "HOME": baseroot.HOME,
}


@dataclass(frozen=True)
class BuildOptions:
    """What to build from, where to put it, and the settings read from the environment."""

    repo: Path
    out_dir: Path
    cache_dir: Path
    mirror: str = debian.DEFAULT_MIRROR
    security_mirror: str = debian.DEFAULT_SECURITY_MIRROR
    source_url: str | None = None
    source_date_epoch: int | None = None
    force: bool = False
    refresh_base: bool = False

    @classmethod
    def from_env(
        cls,
        repo: Path,
        out_dir: Path,
        *,
        force: bool = False,
        refresh_base: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> BuildOptions:
        """Read ``SQLHARBOR_DEBIAN_MIRROR``, ``SQLHARBOR_DEBIAN_SECURITY_MIRROR``,
        ``SQLHARBOR_IMAGE_SOURCE``, ``SOURCE_DATE_EPOCH`` and the cache folder (as the
        control plane's: ``SQLHARBOR_CACHE_DIR``, else ``~/.cache/sqlharbor``)."""
        env = os.environ if environ is None else environ
        epoch = env.get("SOURCE_DATE_EPOCH")
        return cls(
            repo=repo,
            out_dir=out_dir,
            cache_dir=Toolchain.from_env(env).cache_dir,
            mirror=env.get("SQLHARBOR_DEBIAN_MIRROR") or debian.DEFAULT_MIRROR,
            security_mirror=env.get("SQLHARBOR_DEBIAN_SECURITY_MIRROR")
            or debian.DEFAULT_SECURITY_MIRROR,
            source_url=env.get("SQLHARBOR_IMAGE_SOURCE") or None,
            source_date_epoch=int(epoch) if epoch else None,
            force=force,
            refresh_base=refresh_base,
        )

    @property
    def sources(self) -> tuple[str, ...]:
        return debian.sources(self.mirror, self.security_mirror)


@dataclass(frozen=True)
class BuiltImage:
    """The archive, its reference name and what the build record says about it."""

    archive: Path
    record: Path
    ref: str
    source_digest: str
    reused: bool
    compressed_bytes: int
    unpacked_bytes: int
    seconds: float


def project(repo: Path) -> dict[str, Any]:
    """The ``[project]`` table of ``repo``'s pyproject.toml (name, version, description...)."""
    table: dict[str, Any] = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    return table


def archive_name(version: str) -> str:
    return f"{NAME}-{version}.oci.tar"


def source_digest(repo: Path, base_key: str) -> str:
    """Hash of what the image is made from (see the module docstring)."""
    digest = hashlib.sha256(f"base {base_key}\n".encode())
    for pin in pylayer.pins():
        digest.update(f"pin {pin}\n".encode())
    here = Path(__file__).parent
    for path in sorted(here.glob("*.py")):
        digest.update(f"recipe {path.name}\n".encode() + path.read_bytes())
    for name in pylayer.PRODUCT_SOURCES:
        for path in pylayer.source_files(repo / name):
            digest.update(f"src {path.relative_to(repo).as_posix()}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_image(options: BuildOptions, progress: Progress) -> BuiltImage:
    """Build the archive in ``options.out_dir`` (or reuse it: see the module docstring)."""
    started = time.monotonic()
    meta = project(options.repo)
    version = str(meta["version"])
    ref = f"{NAME}:{version}"
    archive = options.out_dir / archive_name(version)
    record = archive.with_name(f"{NAME}-{version}.build.json")
    digest = source_digest(options.repo, baseroot.base_key(options.sources))
    reused = _reusable(archive, record, digest)
    if reused is not None and not options.force:
        progress(f"{archive} is up to date (source digest {digest[:12]}); not rebuilding")
        return reused
    if not is_root():
        raise ImageToolMissingError("building the image needs root (mmdebstrap, chroot)")
    steps: dict[str, float] = {}
    ensure_tools(progress)
    base = _timed(steps, "base", lambda: _base(options, progress))
    epoch = options.source_date_epoch or _git_epoch(options.repo) or int(time.time())
    created = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.TemporaryDirectory(prefix="sqlharbor-image-") as tmp:
        work = Path(tmp)
        wheel = _timed(steps, "wheel", lambda: pylayer.product_wheel(options.repo, work, progress))
        house = _timed(steps, "download", lambda: pylayer.wheelhouse(wheel, work, progress))
        root = work / "rootfs"
        _timed(steps, "unpack-base", lambda: _extract(base.tar, root))
        _timed(steps, "install", lambda: pylayer.install(root, house, progress))
        python = _timed(
            steps,
            "python-layer",
            lambda: write_layer(
                root, work / "python.tar", mtime_clamp=epoch, members=[pylayer.VENV.lstrip("/")]
            ),
        )
        unpacked = tree_bytes(root)
        layers = [
            oci.Layer(
                base.tar,
                f"mmdebstrap + dpkg-deb: {len(base.packages)} Debian {debian.SUITE} packages",
                f"sqlharbor-dev image build, base root {base.key}",
            ),
            oci.Layer(
                python.path,
                f"pip install {pylayer.REQUIREMENT}=={version} into {pylayer.VENV}",
                "sqlharbor-dev image build, the product wheel and its dependencies from PyPI",
            ),
        ]
        config = oci.RuntimeConfig(
            entrypoint=ENTRYPOINT,
            user=USER,
            working_dir=baseroot.HOME,
            env=ENV,
            labels=_labels(options, meta, created),
        )
        progress("packing the OCI image with umoci...")
        layout = work / "layout"
        _timed(steps, "oci", lambda: oci.assemble(layout, ref, layers, config, created))
        options.out_dir.mkdir(parents=True, exist_ok=True)
        _timed(steps, "archive", lambda: oci.archive(layout, archive))
        python_packages = pylayer.installed(root)
    built = BuiltImage(
        archive=archive,
        record=record,
        ref=ref,
        source_digest=digest,
        reused=False,
        compressed_bytes=archive.stat().st_size,
        unpacked_bytes=unpacked,
        seconds=round(time.monotonic() - started, 1),
    )
    _write_record(built, base, python_packages, steps, created)
    progress(f"built {archive} ({built.compressed_bytes / 1e6:.1f} MB) in {built.seconds:.0f} s")
    return built


def _base(options: BuildOptions, progress: Progress) -> baseroot.BaseLayer:
    return baseroot.ensure_base(
        options.cache_dir, options.sources, progress, refresh=options.refresh_base
    )


def _timed(steps: dict[str, float], name: str, step: Callable[[], T]) -> T:
    began = time.monotonic()
    result = step()
    steps[name] = round(time.monotonic() - began, 1)
    return result


def _extract(tar_path: Path, root: Path) -> None:
    """Unpack a layer tar as it is (owners, modes, absolute symlinks): our own archive."""
    root.mkdir()
    with tarfile.open(tar_path) as tar:
        if hasattr(tarfile, "fully_trusted_filter"):
            tar.extractall(root, numeric_owner=True, filter="fully_trusted")
        else:
            tar.extractall(root, numeric_owner=True)


def _labels(options: BuildOptions, meta: Mapping[str, Any], created: str) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.title": NAME,
        "org.opencontainers.image.description": str(meta.get("description", "")),
        "org.opencontainers.image.version": str(meta["version"]),
        "org.opencontainers.image.created": created,
    }
    revision = _git(options.repo, "rev-parse", "HEAD")
    source = options.source_url or _git(options.repo, "remote", "get-url", "origin")
    license_ = meta.get("license")
    if isinstance(license_, dict):
        license_ = license_.get("text")
    for key, value in (("revision", revision), ("source", source), ("licenses", license_)):
        if value:
            labels[f"org.opencontainers.image.{key}"] = str(value)
    return labels


def _git(repo: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def _git_epoch(repo: Path) -> int | None:
    value = _git(repo, "log", "-1", "--format=%ct")
    return int(value) if value and value.isdigit() else None


def _reusable(archive: Path, record: Path, digest: str) -> BuiltImage | None:
    if not (archive.is_file() and record.is_file()):
        return None
    try:
        data = json.loads(record.read_text())
    except ValueError:
        return None
    if (
        data.get("source_digest") != digest
        or data.get("compressed_bytes") != archive.stat().st_size
    ):
        return None
    return BuiltImage(
        archive=archive,
        record=record,
        ref=str(data["ref"]),
        source_digest=digest,
        reused=True,
        compressed_bytes=int(data["compressed_bytes"]),
        unpacked_bytes=int(data["unpacked_bytes"]),
        seconds=0.0,
    )


def _write_record(
    built: BuiltImage,
    base: baseroot.BaseLayer,
    python_packages: list[tuple[str, str]],
    steps: Mapping[str, float],
    created: str,
) -> None:
    data = {
        "ref": built.ref,
        "archive": built.archive.name,
        "created": created,
        "source_digest": built.source_digest,
        "base_key": base.key,
        "compressed_bytes": built.compressed_bytes,
        "unpacked_bytes": built.unpacked_bytes,
        "build_seconds": built.seconds,
        "step_seconds": dict(steps),
        "debian_packages": [f"{n} {v}" for n, v in base.packages],
        "removed_from_debian_packages": list(base.removed),
        "python_packages": [f"{n} {v}" for n, v in python_packages],
    }
    built.record.write_text(json.dumps(data, indent=1) + "\n")
