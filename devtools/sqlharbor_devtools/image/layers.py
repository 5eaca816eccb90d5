"""Layer archives: a directory tree written as an uncompressed, reproducible tar.

Called by :mod:`.baseroot` (the whole Debian root) and :mod:`.pylayer` (``opt/sqlharbor``);
``umoci raw add-layer`` then compresses each into the image.  Entries are sorted, owners are
numeric only, and every time stamp is clamped to ``mtime_clamp``, so the same tree gives
the same bytes.  Hard links stay hard links; sockets and device nodes are left out (a
container runtime provides /dev).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class LayerArchive:
    """A written layer: where, how many entries, and the bytes of its files (unpacked)."""

    path: Path
    entries: int
    file_bytes: int


def write_layer(
    root: Path, dest: Path, *, mtime_clamp: int, members: Sequence[str] = ()
) -> LayerArchive:
    """Write ``root`` (or only ``members``, paths relative to it, with their parent
    directories) to ``dest`` as a tar whose names are relative to ``root``."""
    entries = file_bytes = 0
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for path, name in _walk(root, members):
            info = tar.gettarinfo(str(path), arcname=name)
            if info is None or info.ischr() or info.isblk() or info.isfifo():
                continue
            info.mtime = min(int(info.mtime), mtime_clamp)
            info.uname = info.gname = ""
            if info.isreg():
                file_bytes += info.size
                with path.open("rb") as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)
            entries += 1
    return LayerArchive(dest, entries, file_bytes)


def _walk(root: Path, members: Sequence[str]) -> Iterator[tuple[Path, str]]:
    if not members:
        yield from _tree(root, root)
        return
    parents: set[str] = set()
    for member in sorted(members):
        for parent in reversed(PurePosixPath(member).parents[:-1]):
            if str(parent) not in parents:
                parents.add(str(parent))
                yield root / parent, str(parent)
        yield root / member, member
        if (root / member).is_dir() and not (root / member).is_symlink():
            yield from _tree(root / member, root)


def _tree(top: Path, root: Path) -> Iterator[tuple[Path, str]]:
    """Everything below ``top`` (not ``top`` itself), sorted, symlinks not followed."""
    for entry in sorted(os.scandir(top), key=lambda e: e.name):
        path = Path(entry.path)
        yield path, path.relative_to(root).as_posix()
        if entry.is_dir(follow_symlinks=False):
            yield from _tree(path, root)


def tree_bytes(root: Path) -> int:
    """The bytes of the regular files under ``root`` (hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def newest_mtime(root: Path) -> int:
    """The newest modification time of the files and links under ``root`` (seconds); not
    of directories, which take the time of the last unpacking into them."""
    newest = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            newest = max(newest, int(os.lstat(os.path.join(dirpath, name)).st_mtime))
    return newest
