"""The host side of the image build: the Debian tools it needs, and running commands.

Called by :mod:`.build` (:func:`ensure_tools` first of all), :mod:`.debian`, :mod:`.baseroot`,
:mod:`.pylayer` and :mod:`.oci` (:func:`run`, :func:`run_chrooted`), and by ``tests/image``.
A missing tool is installed from the Debian mirror with ``apt-get`` when running as root (a
fresh CI machine does its own set-up); otherwise :class:`ImageToolMissingError` says what to
install.  Commands run with their output captured; a failure raises :class:`ImageError` with
the end of that output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sqlharbor_devtools.image.errors import ImageError, ImageToolMissingError

Progress = Callable[[str], None]

#: command → the Debian package that provides it
TOOLS: Mapping[str, str] = {
    "mmdebstrap": "mmdebstrap",
    "umoci": "umoci",
    "dpkg-deb": "dpkg",
    "chroot": "coreutils",
}

#: the environment of every command run inside a root under construction
CHROOT_ENV: Mapping[str, str] = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C.UTF-8",
}


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_tools(progress: Progress, tools: Sequence[str] = tuple(TOOLS)) -> dict[str, str]:
    """The path of each of ``tools``; as root, ``apt-get install`` the missing ones first."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        packages = sorted({TOOLS[t] for t in missing})
        if not is_root():
            raise ImageToolMissingError(
                f"{', '.join(missing)} not found and not running as root: "
                f"apt-get install --no-install-recommends {' '.join(packages)}"
            )
        progress(f"installing {' '.join(packages)} with apt-get...")
        _apt_install(packages)
    paths = {t: shutil.which(t) for t in tools}
    absent = [t for t, p in paths.items() if p is None]
    if absent:
        raise ImageToolMissingError(f"{', '.join(absent)} still not found after apt-get install")
    return {t: str(p) for t, p in paths.items()}


def _apt_install(packages: Sequence[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    first = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if first.returncode == 0:
        return
    # a fresh machine may have no (or stale) package lists
    run(["apt-get", "update", "-q"], what="apt-get update", env=env, timeout=600)
    run(install, what=f"apt-get install {' '.join(packages)}", env=env, timeout=600)


def run(
    argv: Sequence[str],
    *,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> str:
    """Run ``argv`` and return its stdout; raise :class:`ImageError` naming ``what`` on failure."""
    try:
        result = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"{what}: {exc}") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise ImageError(f"{what} failed (exit {result.returncode}):\n{output}")
    return result.stdout


def run_chrooted(
    root: Path, argv: Sequence[str], *, what: str, env: Mapping[str, str] | None = None
) -> str:
    """Run ``argv`` (paths inside ``root``) with ``root`` as its root directory, as root.

    Nothing is mounted: the build runs only Python in the root, which needs neither /proc
    nor /dev (``compileall`` therefore runs with one worker: a pool needs /dev/shm).
    """
    if not is_root():
        raise ImageToolMissingError("building the image needs root (chroot into the new root)")
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    return run([chroot, str(root), *argv], what=what, env={**CHROOT_ENV, **(env or {})})
