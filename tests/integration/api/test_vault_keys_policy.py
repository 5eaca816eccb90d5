"""The API server refuses removing a vault's key while the operator's census says it still
wraps recovery points (config/policy/vault_keys.yaml), naming the key, the count and the
way out; once the count is 0 the key can go."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from sqlharbor_devtools.devenv import ControlPlane, KubectlRunner
from sqlharbor_devtools.devenv.kubectl import KubectlFailed

from sqlharbor.api import API_VERSION
from sqlharbor.kube import KubeClient

pytestmark = pytest.mark.integration

POLICY = "ValidatingAdmissionPolicy 'sqlharbor-vault-keys'"


def _vault(previous: bool) -> dict[str, Any]:
    encryption: dict[str, Any] = {"keySecretRef": {"name": "key-b", "key": "key"}}
    if previous:
        encryption["previousKeys"] = [{"keySecretRef": {"name": "key-a", "key": "key"}}]
    return {
        "apiVersion": API_VERSION,
        "kind": "BackupVault",
        "metadata": {"name": "rotating"},
        "spec": {
            "azureBlob": {
                "container": "backups",
                "credentials": {"secretRef": {"name": "vault-storage", "key": "c"}},
            },
            "encryption": encryption,
        },
    }


def _apply(kubectl: KubectlRunner, namespace: str, doc: dict[str, Any]) -> str:
    """ "" when applied, else kubectl's error (the API server's message)."""
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
    except KubectlFailed as exc:
        return str(exc)
    return ""


def _census(admin: KubeClient, namespace: str, old_points: int) -> None:
    """What the operator's key census writes (operator/sqlharbor_operator/key_census.py)."""
    keys = [
        {"ref": "secret:key-b/key", "keyId": "kid-b", "keyVersion": "vb", "points": 3},
        {"ref": "secret:key-a/key", "keyId": "kid-a", "keyVersion": "va", "points": old_points},
    ]
    admin.patch_status("BackupVault", namespace, "rotating", {"keys": keys})


def test_a_key_that_still_wraps_points_cannot_be_removed(
    control_plane: ControlPlane, kubectl: KubectlRunner, namespace: str
) -> None:
    admin = KubeClient.from_kubeconfig(str(control_plane.kubeconfig))
    assert _apply(kubectl, namespace, _vault(previous=True)) == ""
    _census(admin, namespace, old_points=5)
    refused = ""
    deadline = time.monotonic() + 30  # the API server's admission informer picks it up
    while time.monotonic() < deadline and not refused:
        refused = _apply(kubectl, namespace, _vault(previous=False))
        if not refused:  # too early: the policy was not enforced yet; put the key back
            assert _apply(kubectl, namespace, _vault(previous=True)) == ""
            time.sleep(0.5)
    assert POLICY in refused
    assert "key secret:key-a/key (id kid-a) still wraps 5 recovery point(s)" in refused
    assert "kubectl sqlharbor vault rekey rotating" in refused
    stored = admin.get_raw("BackupVault", namespace, "rotating")
    assert stored["spec"]["encryption"]["previousKeys"]  # still listed

    # the current key with points cannot be swapped out either
    swapped = _vault(previous=True)
    swapped["spec"]["encryption"]["keySecretRef"] = {"name": "key-c", "key": "key"}
    assert "key secret:key-b/key (id kid-b) still wraps 3" in _apply(kubectl, namespace, swapped)

    # rekeyed and counted again: the old key has no point left and goes
    _census(admin, namespace, old_points=0)
    assert _apply(kubectl, namespace, _vault(previous=False)) == ""
    stored = admin.get_raw("BackupVault", namespace, "rotating")
    assert "previousKeys" not in stored["spec"]["encryption"]
