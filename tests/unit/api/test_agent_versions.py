"""Version skew between the operator and its agents (``contract.unsupported_agent_version``):
an agent of the operator's minor version or the one before is supported; an older one, a
newer one or another major version is flagged, and the instance is not served."""

from __future__ import annotations

import pytest

from sqlharbor.api.contract import unsupported_agent_version


@pytest.mark.parametrize(
    ("operator", "agent", "supported"),
    [
        ("1.4.2", "1.4.0", True),
        ("1.4.0", "1.3.9", True),
        ("1.4.0", "1.2.7", False),  # two minors behind
        ("1.4.0", "1.5.0", False),  # newer than its operator
        ("1.4.0", "2.4.0", False),
        ("2.0.0", "1.9.0", False),  # another major
        ("0.1.0", "0.0.3", True),
        ("0.1.0", "0.1.0", True),
        ("1.4.0rc1", "1.4.0", True),
        ("1.4.0", "dev", True),  # not a version: not judged
        ("1.4.0", "", True),
    ],
)
def test_skew(operator: str, agent: str, supported: bool) -> None:
    problem = unsupported_agent_version(operator, agent)
    assert (problem is None) is supported, problem
    if problem is not None:
        assert agent in problem
        assert operator in problem
