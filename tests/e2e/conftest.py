"""End-to-end fixtures: a fresh namespace on the shared control plane with its own vault
container, and real operator / agent / workload processes started per test.  The operator
runs as its ServiceAccount with config/namespaced's RBAC (``Stack.start_operator``); each
environment ends by checking it was refused nothing (``assert_no_forbidden``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlharbor_devtools.demo.stack import Stack
from sqlharbor_devtools.devenv.controlplane import ControlPlane

from .harness import E2E, assert_no_forbidden


@pytest.fixture
def e2e(control_plane: ControlPlane, tmp_path: Path) -> Iterator[E2E]:
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    stack = Stack(control_plane, namespace, tmp_path / "stack")
    stack.create_namespace()
    stack.install_vault_secrets()
    env = E2E(stack, tmp_path / "simulated")
    try:
        yield env
        assert_no_forbidden(stack)
    finally:
        stack.stop()
