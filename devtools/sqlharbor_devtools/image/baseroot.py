"""The image's base layer: a minimal Debian bookworm root, cached by a hash of its inputs.

Called by :mod:`.build` (:func:`ensure_base`).  The root holds the files of the packages
:mod:`.debian` selects, unpacked with ``dpkg-deb --extract`` (no maintainer script runs),
then what those scripts or the base system would have made: ``/etc/passwd`` and
``/etc/group`` with the ``sqlharbor`` user (65532), the CA bundle
``/etc/ssl/certs/ca-certificates.crt``, ``/etc/nsswitch.conf``, the user's home, the
standard library's ``.pyc`` (unchecked-hash: valid on a read-only root whatever the file
times), and a ``/var/lib/dpkg/status.d/`` entry per package so that image scanners see the
Debian packages (there is no dpkg database: no dpkg).  Manual pages, info, translations and
documentation other than the copyright files are left out.

The layer tar lands in ``<cache>/image-base/<key>.tar`` (with ``<key>.json``, its package
list; layers unused for two weeks are deleted when a new one is made).  The key hashes the
suite, the sources, the package selection and the source of the modules that make the
root, so changing any of them makes a new one.  Time stamps are clamped to the newest file
the packages brought, so the same packages give the same layer.  Debian's updates reach
the cache only with a new key or ``--refresh-base``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlharbor_devtools.image import debian
from sqlharbor_devtools.image.errors import ImageError
from sqlharbor_devtools.image.host import Progress, run, run_chrooted
from sqlharbor_devtools.image.layers import newest_mtime, write_layer

USER, UID = "sqlharbor", 65532
HOME = f"/home/{USER}"
PYTHON = "/usr/bin/python3.11"
#: byte-compile for a read-only root: unchecked-hash .pyc are used whatever the file times
COMPILE = (PYTHON, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash")

_PASSWD = f"""\
root:x:0:0:root:/root:/usr/sbin/nologin
{USER}:x:{UID}:{UID}:sqlharbor operator:{HOME}:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
_GROUP = f"root:x:0:\nstaff:x:50:\n{USER}:x:{UID}:\nnogroup:x:65534:\n"
_NSSWITCH = """\
passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
"""
#: below usr/share: left out of the root (documentation is reduced to copyright files)
_PRUNED_SHARE = ("man", "info", "locale", "lintian", "bug", "debconf")
#: a cached base layer no build has used for this long is deleted (other keys: other branches)
KEEP_UNUSED_DAYS = 14
#: the modules whose source is part of the cache key
_RECIPE = ("debian.py", "baseroot.py", "layers.py")


@dataclass(frozen=True)
class BaseLayer:
    """The cached base layer: its tar, cache key, Debian packages (name, version), the
    newest time stamp in it and the commands left out."""

    tar: Path
    key: str
    packages: tuple[tuple[str, str], ...]
    mtime: int
    removed: tuple[str, ...]


def base_key(source_lines: Sequence[str]) -> str:
    """The cache key: suite, sources, package selection and the recipe's own source."""
    digest = hashlib.sha256()
    inputs = {
        "suite": debian.SUITE,
        "arch": debian.ARCH,
        "sources": list(source_lines),
        "roots": list(debian.ROOTS),
        "not_installed": sorted(debian.NOT_INSTALLED),
        "user": [USER, UID],
    }
    digest.update(json.dumps(inputs, sort_keys=True).encode())
    here = Path(__file__).parent
    for name in _RECIPE:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:20]


def ensure_base(
    cache_dir: Path, source_lines: Sequence[str], progress: Progress, *, refresh: bool = False
) -> BaseLayer:
    """The cached base layer for ``source_lines``; build it first if absent (or ``refresh``)."""
    key = base_key(source_lines)
    folder = cache_dir / "image-base"
    tar, meta = folder / f"{key}.tar", folder / f"{key}.json"
    if tar.is_file() and meta.is_file() and not refresh:
        progress(f"Debian base root: cached ({tar})")
        os.utime(tar)  # in use: kept by _forget_unused
        return _load(tar, meta, key)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{key}-", dir=folder) as tmp:
        work = Path(tmp)
        packages = debian.installed_set(
            debian.read_package(d) for d in debian.download(work, source_lines, progress)
        )
        progress(f"unpacking {len(packages)} Debian packages into the base root...")
        root = work / "rootfs"
        mtime, removed = assemble(root, packages)
        layer = write_layer(root, work / "layer.tar", mtime_clamp=mtime)
        listing = {
            "key": key,
            "sources": list(source_lines),
            "mtime": mtime,
            "packages": [[p.name, p.version] for p in packages],
            "removed": removed,
        }
        (work / "layer.json").write_text(json.dumps(listing, indent=1) + "\n")
        os.replace(layer.path, tar)  # the tar first: a json without its tar is never read
        os.replace(work / "layer.json", meta)
    progress(f"Debian base root: built and cached ({tar})")
    _forget_unused(folder)
    return _load(tar, meta, key)


def _forget_unused(folder: Path) -> None:
    """Delete the base layers nobody built or used for :data:`KEEP_UNUSED_DAYS` days."""
    cutoff = time.time() - KEEP_UNUSED_DAYS * 86400
    for old in folder.glob("*.tar"):
        if old.stat().st_mtime < cutoff:
            old.with_suffix(".json").unlink(missing_ok=True)
            old.unlink(missing_ok=True)


def _load(tar: Path, meta: Path, key: str) -> BaseLayer:
    data = json.loads(meta.read_text())
    return BaseLayer(
        tar=tar,
        key=key,
        packages=tuple((str(n), str(v)) for n, v in data["packages"]),
        mtime=int(data["mtime"]),
        removed=tuple(str(r) for r in data.get("removed", ())),
    )


def assemble(root: Path, packages: Sequence[debian.Package]) -> tuple[int, list[str]]:
    """Unpack ``packages`` into ``root`` and finish it; return the packages' newest mtime
    and the scripts left out (:func:`drop_uninterpretable`)."""
    root.mkdir(parents=True)
    for package in packages:
        run(["dpkg-deb", "--extract", str(package.deb), str(root)], what=f"unpack {package.name}")
    mtime = newest_mtime(root)
    status = root / "var" / "lib" / "dpkg" / "status.d"
    status.mkdir(parents=True, exist_ok=True)
    for package in packages:
        (status / package.name).write_text(package.control)
    _prune(root)
    removed = drop_uninterpretable(root)
    _configure(root)
    run_chrooted(root, [*COMPILE, "/usr/lib/python3.11"], what="compile the standard library")
    return mtime, removed


def _prune(root: Path) -> None:
    share = root / "usr" / "share"
    for name in _PRUNED_SHARE:
        shutil.rmtree(share / name, ignore_errors=True)
    doc = share / "doc"
    for package_doc in doc.iterdir() if doc.is_dir() else ():
        for entry in package_doc.iterdir():
            if entry.name == "copyright" and not entry.is_symlink():
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        if not any(package_doc.iterdir()):
            package_doc.rmdir()
    for leftover in ("var/cache", "var/log"):
        for entry in (root / leftover).iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def drop_uninterpretable(root: Path) -> list[str]:
    """Remove the commands whose ``#!`` interpreter is not in the root (maintainer tools
    written for sh or Perl, say ``update-ca-certificates``): they could never run."""
    removed = []
    for folder in ("bin", "sbin", "usr/bin", "usr/sbin"):
        for path in sorted((root / folder).glob("*")) if (root / folder).is_dir() else ():
            if path.is_symlink() or not path.is_file():
                continue
            with path.open("rb") as head:
                first = head.readline(256)
            if not first.startswith(b"#!"):
                continue
            interpreter = first[2:].split()[0].decode() if first[2:].split() else ""
            target = root / interpreter.lstrip("/")
            if not interpreter or not (target.exists() or target.is_symlink()):
                path.unlink()
                removed.append(f"/{path.relative_to(root).as_posix()} ({interpreter})")
    return removed


def _configure(root: Path) -> None:
    """What maintainer scripts and the base system would have done, and the user."""
    etc = root / "etc"
    (etc / "passwd").write_text(_PASSWD)
    (etc / "group").write_text(_GROUP)
    (etc / "nsswitch.conf").write_text(_NSSWITCH)
    certs = sorted((root / "usr" / "share" / "ca-certificates").rglob("*.crt"))
    if not certs:
        raise ImageError("the ca-certificates package brought no certificates")
    bundle = etc / "ssl" / "certs" / "ca-certificates.crt"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_text("".join(c.read_text().rstrip("\n") + "\n" for c in certs))
    home = root / HOME.lstrip("/")
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, UID, UID)
    home.chmod(0o755)
    for path, mode in (("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700)):
        (root / path).mkdir(exist_ok=True)
        (root / path).chmod(mode)
