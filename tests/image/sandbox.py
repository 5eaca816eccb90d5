"""Run a command from an unpacked image root the way a kubelet and a runtime would, with
only this host's tools (util-linux ``unshare``, ``mount``, ``setpriv``).

Used by ``tests/image/test_image.py``.  ``start`` runs, in a new mount and PID namespace
(so every mount vanishes with the process and the command is PID 1): the root bind-mounted
onto itself and remounted read-only, ``/proc``, a tmpfs ``/tmp`` (an emptyDir), a tmpfs
``/dev`` with null, zero, random and urandom, and the pod's ServiceAccount folder
read-only at ``/var/run/secrets/kubernetes.io/serviceaccount``; then, with no new
privileges, ``unshare --root --wd --setuid --setgid`` enters the root as the image's
user, in its working directory, with exactly the given environment.  Needs root.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SERVICE_ACCOUNT_DIR = "var/run/secrets/kubernetes.io/serviceaccount"

_SCRIPT = """\
set -eu
root=$1 secrets=$2 cwd=$3 uid=$4 gid=$5
shift 5
mount --bind "$root" "$root"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o nosuid,noexec,mode=755 tmpfs "$root/dev"
for d in null zero random urandom; do
    : > "$root/dev/$d"
    mount --bind "/dev/$d" "$root/dev/$d"
done
sa="$root/var/run/secrets/kubernetes.io/serviceaccount"
mount --bind "$secrets" "$sa"
mount -o remount,bind,ro "$sa"
mount -o remount,bind,ro "$root"
exec setpriv --no-new-privs unshare --root="$root" --wd="$cwd" --setuid="$uid" --setgid="$gid" \\
    -- "$@"
"""


@dataclass
class Sandboxed:
    """The running command: ``popen`` is the outer ``unshare``; ``pid`` the command itself."""

    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int | None:
        """The command's host PID: the outer unshare's one child (PID 1 inside)."""
        children = _children(self.popen.pid)
        return children[0] if children else None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM the command (PID 1 inside: only a handled signal reaches it), wait, then
        SIGKILL everything that is left; return the exit status."""
        pid = self.pid
        if pid is not None and self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            return self.popen.wait(timeout=timeout)


def start(
    root: Path,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    uid: int,
    gid: int,
    service_account: Path,
    log: Path,
) -> Sandboxed:
    """Start ``argv`` (paths inside ``root``) as described in the module docstring."""
    (root / SERVICE_ACCOUNT_DIR).mkdir(parents=True, exist_ok=True)  # as a runtime does
    outer = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation=private"]
    args = [str(root), str(service_account), cwd, str(uid), str(gid), *argv]
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [*outer, "--", "/bin/sh", "-c", _SCRIPT, "sandbox", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
            start_new_session=True,
        )
    return Sandboxed(popen, log)


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: split after it
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            children.append(int(entry.name))
    return children


def proc_status(pid: int) -> dict[str, str]:
    """``/proc/<pid>/status`` as a dict (Uid, Gid, Groups, CapEff, NoNewPrivs...)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def root_mount_options(pid: int) -> set[str]:
    """The mount options of ``/`` as ``pid`` sees it (``ro`` for a read-only root)."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        parts = line.split()
        if parts[4] == "/":
            return set(parts[5].split(","))
    return set()
