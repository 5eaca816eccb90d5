"""The Windows bundle: an offline wheelhouse zip that ``install-service.ps1`` installs.

Called by :mod:`.build`.  :func:`write` packs, under one top folder
``sqlharbor-agent-<version>-windows-amd64/``:

- ``wheels/``: the product wheel and every dependency wheel for CPython 3.11-3.14 on
  ``win_amd64`` (:mod:`.wheels`, resolved with Windows' markers: click's colorama is there),
  so ``pip install --no-index --find-links wheels "sqlharbor[sqlserver]"`` needs no network;
- ``install-service.ps1`` and ``README.md`` from ``config/agent/windows/`` (the script finds
  ``wheels/`` beside itself).

Wheels are stored (they are zip files already), the two texts deflated; every entry gets the
same time stamp, so the same inputs make the same zip.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

WINDOWS_FILES = ("install-service.ps1", "README.md")


def folder_name(version: str) -> str:
    return f"sqlharbor-agent-{version}-windows-amd64"


def write(
    dest: Path,
    version: str,
    wheels: Iterable[Path],
    windows_dir: Path,
    epoch: int,
) -> list[str]:
    """Write the zip to ``dest`` (beside it first, then renamed); return its entry names."""
    top = folder_name(version)
    stamp = datetime.fromtimestamp(max(epoch, 315532800), UTC).timetuple()[:6]  # zip: >= 1980
    members: list[tuple[str, Path, int]] = [
        (f"{top}/wheels/{w.name}", w, zipfile.ZIP_STORED) for w in sorted(wheels)
    ]
    members += [(f"{top}/{n}", windows_dir / n, zipfile.ZIP_DEFLATED) for n in WINDOWS_FILES]
    partial = dest.with_name(f".{dest.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            for name, source, method in members:
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = method
                info.external_attr = 0o644 << 16
                archive.writestr(info, source.read_bytes())
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return [name for name, _, _ in members]
