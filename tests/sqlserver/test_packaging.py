"""The agent's packaging: the systemd unit (its RBAC is made per agent by ``agent enroll``:
tests/integration/api/test_agent_fence.py)."""

from __future__ import annotations

import configparser
from pathlib import Path

AGENT = Path(__file__).parents[2] / "config" / "agent"


def test_systemd_unit_runs_as_a_dedicated_user_in_the_mssql_group() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(AGENT / "systemd" / "sqlharbor-agent.service")
    service = unit["Service"]
    assert service["User"] == "sqlharbor"
    assert service["SupplementaryGroups"] == "mssql"
    assert service["UMask"] == "0007"
    assert "sqlharbor-agent run --config" in service["ExecStart"]
