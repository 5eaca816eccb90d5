"""The state directory of one local control plane: layout, lock and ``state.json``.

Called by :mod:`sqlharbor_devtools.devenv.controlplane`.  Layout::

    state.json   what runs (urls, ports, pids with start times)  -- present only while up
    kubeconfig   the admin kubeconfig (0600)          env   shell exports (0600)
    pki/         CA, certificates, keys (0600)        run/  <component>.pid
    logs/        <component>.log                      etcd-data/, azurite-data/
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlharbor_devtools.devenv.processes import ProcessRecord

DEFAULT_DIR_NAME = ".sqlharbor-dev"
STATE_FILE = "state.json"


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$SQLHARBOR_DEV_DIR``, else ``.sqlharbor-dev`` in the current directory (absolute)."""
    env = os.environ if environ is None else environ
    return Path(env.get("SQLHARBOR_DEV_DIR") or DEFAULT_DIR_NAME).expanduser().resolve()


@dataclass(frozen=True)
class Layout:
    """Paths inside one state directory."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd-data"

    @property
    def azurite_data(self) -> Path:
        return self.root / "azurite-data"


@contextlib.contextmanager
def locked(root: Path) -> Iterator[Layout]:
    """Hold an exclusive lock on the state directory (one ``up``/``down`` at a time)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield Layout(root)
    finally:
        os.close(fd)


def save(layout: Layout, data: dict[str, Any], processes: list[ProcessRecord]) -> None:
    """Write ``state.json`` (atomically) and one pid file per process."""
    layout.run.mkdir(parents=True, exist_ok=True)
    for record in processes:
        (layout.run / f"{record.name}.pid").write_text(f"{record.pid}\n")
    body = {
        **data,
        "processes": [
            {"name": r.name, "pid": r.pid, "start_ticks": r.start_ticks, "log": str(r.log)}
            for r in processes
        ],
    }
    tmp = layout.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.replace(layout.state_file)


def load(layout: Layout) -> tuple[dict[str, Any], list[ProcessRecord]] | None:
    """Read ``state.json``; ``None`` when there is none (or it is unreadable)."""
    try:
        body = json.loads(layout.state_file.read_text())
        processes = [
            ProcessRecord(
                name=str(p["name"]),
                pid=int(p["pid"]),
                start_ticks=None if p["start_ticks"] is None else int(p["start_ticks"]),
                log=Path(p["log"]),
            )
            for p in body.pop("processes")
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return body, processes


def forget(layout: Layout) -> None:
    """Remove ``state.json`` and the pid files (the processes are gone)."""
    layout.state_file.unlink(missing_ok=True)
    for pid_file in layout.run.glob("*.pid"):
        pid_file.unlink(missing_ok=True)
