"""The agent's packaging: least-privilege RBAC and the systemd unit."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

AGENT = Path(__file__).parents[2] / "config" / "agent"


def documents() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all((AGENT / "rbac.yaml").read_text())}


def test_role_grants_exactly_what_the_agent_needs() -> None:
    rules = documents()["Role"]["rules"]
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for resource in ("sqlinstances", "backupjobs", "restorejobs", "backupvaults"):
        for verb in ("get", "list", "watch"):
            assert ("sqlharbor.io", resource, verb) in granted
        assert ("sqlharbor.io", resource, "patch") not in granted  # spec is not the agent's
    for status in ("sqlinstances/status", "backupjobs/status", "restorejobs/status"):
        assert ("sqlharbor.io", status, "patch") in granted
    assert ("coordination.k8s.io", "leases", "create") in granted
    assert ("coordination.k8s.io", "leases", "update") in granted
    assert ("", "events", "create") in granted
    assert not any("*" in item for triple in granted for item in triple)
    assert not any("protecteddatabases" in r for _, r, _ in granted)  # never the agent's
    assert not any(v in {"delete", "deletecollection", "escalate", "bind"} for *_, v in granted)
    secret_rule = next(r for r in rules if "secrets" in r["resources"])
    assert secret_rule["resourceNames"]


def test_binding_ties_the_role_to_the_service_account() -> None:
    docs = documents()
    binding = docs["RoleBinding"]
    assert binding["roleRef"]["name"] == docs["Role"]["metadata"]["name"]
    assert binding["subjects"][0]["name"] == docs["ServiceAccount"]["metadata"]["name"]


def test_kustomize_builds_it() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(AGENT)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    built = list(yaml.safe_load_all(out))
    binding = next(d for d in built if d["kind"] == "RoleBinding")
    assert binding["subjects"][0]["namespace"] == "default"


def test_systemd_unit_runs_as_a_dedicated_user_in_the_mssql_group() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(AGENT / "systemd" / "sqlharbor-agent.service")
    service = unit["Service"]
    assert service["User"] == "sqlharbor"
    assert service["SupplementaryGroups"] == "mssql"
    assert service["UMask"] == "0007"
    assert "sqlharbor-agent run --config" in service["ExecStart"]
