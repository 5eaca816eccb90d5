"""The agent fence (config/policy/agent_fence.yaml) spells ``contract.CLAIMABLE`` in CEL:
the phases it lets an agent claim from must be exactly the contract's."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sqlharbor.api.contract import CLAIMABLE

POLICY = Path(__file__).resolve().parents[3] / "config" / "policy" / "agent_fence.yaml"


def test_the_fence_claims_exactly_the_contracts_phases() -> None:
    policy = next(d for d in yaml.safe_load_all(POLICY.read_text()) if d["kind"].endswith("Policy"))
    [claimable] = [v["expression"] for v in policy["spec"]["variables"] if v["name"] == "claimable"]
    backup, _, restore = claimable.partition(":")
    fenced = {
        "BackupJob": set(re.findall(r"'(\w*)'", backup.split("?", 1)[1])),
        "RestoreJob": set(re.findall(r"'(\w*)'", restore)),
    }
    assert fenced == {kind: {p or "" for p in phases} for kind, phases in CLAIMABLE.items()}
