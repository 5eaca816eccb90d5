"""The demo keeps its key-encryption key across restarts: installing the vault Secrets again
(what ``sqlharbor-dev demo`` does on every start) must not replace the KEK, or every
earlier recovery point would become unreadable."""

from __future__ import annotations

from pathlib import Path

from sqlharbor_devtools.demo.stack import Stack
from sqlharbor_devtools.devenv import ControlPlane


def test_installing_the_vault_secrets_again_keeps_the_key(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    stack = Stack(control_plane, namespace, tmp_path)
    try:
        stack.install_vault_secrets()
        first = stack.client.secret_value(namespace, "vault-kek", "kek")
        stack.install_vault_secrets()
        assert stack.client.secret_value(namespace, "vault-kek", "kek") == first
        other = Stack(control_plane, namespace, tmp_path / "other")
        other.install_vault_secrets(kek_secret="second-kek")
        assert other.client.secret_value(namespace, "second-kek", "kek") != first
        other.stop()
    finally:
        stack.stop()
