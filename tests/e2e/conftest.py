"""End-to-end fixtures: a fresh namespace on the shared control plane with its own vault
container, and real operator / agent / workload processes started per test.  The operator
runs as its ServiceAccount with config/namespaced's RBAC (``Stack.start_operator``); each
environment ends by checking it was refused nothing (``assert_no_forbidden``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlharbor_devtools.devenv.controlplane import ControlPlane

from .harness import E2E, module_e2e


@pytest.fixture
def e2e(control_plane: ControlPlane, tmp_path: Path) -> Iterator[E2E]:
    with module_e2e(control_plane, tmp_path, "e2e") as env:
        yield env
