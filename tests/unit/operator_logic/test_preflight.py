"""The operator starts only when the API server serves every sqlharbor kind (kopf's
resource scanning is off, so it would never notice CRDs established later)."""

from __future__ import annotations

import asyncio

from sqlharbor_operator import preflight

from sqlharbor.api import KINDS


class Served:
    def __init__(self, plurals: set[str]) -> None:
        self.plurals = plurals

    async def served_plurals(self) -> set[str]:
        return self.plurals


def test_every_kind_served_passes() -> None:
    assert asyncio.run(preflight.not_served(Served({k.plural for k in KINDS} | {"other"}))) is None


def test_a_missing_kind_stops_the_start_and_says_what_to_do() -> None:
    served = {k.plural for k in KINDS} - {"restorejobs"}
    problem = asyncio.run(preflight.not_served(Served(served)))
    assert problem is not None
    assert "restorejobs.sqlharbor.io" in problem
    assert "backupjobs" not in problem
    assert "kubectl apply -k config/crd" in problem


def test_no_group_at_all_names_every_kind() -> None:
    problem = asyncio.run(preflight.not_served(Served(set())))
    assert problem is not None
    assert all(f"{k.plural}.sqlharbor.io" in problem for k in KINDS)
