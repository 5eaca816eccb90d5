"""A local control plane for the benchmarks that need the real API server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlharbor_devtools.devenv import crd_dir
from sqlharbor_devtools.devenv.controlplane import ControlPlane

from benchmarks.common import REPO


@contextmanager
def control_plane(state_dir: Path) -> Iterator[ControlPlane]:
    """``$SQLHARBOR_BENCH_DEV_DIR``'s running plane if set (left running), else a fresh one."""
    existing = os.environ.get("SQLHARBOR_BENCH_DEV_DIR")
    plane = ControlPlane.find(Path(existing)) if existing else None
    owned = plane is None
    if plane is None:
        state_dir.mkdir(parents=True, exist_ok=True)
        plane = ControlPlane.up(state_dir)
    try:
        plane.apply_crds(crd_dir(REPO))
        yield plane
    finally:
        if owned:
            plane.down()
