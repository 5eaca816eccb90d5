"""The demo's databases on a simulated instance, created if missing (idempotent).

Called by the demo and the agent's start-up when it runs with the simulated engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlharbor.domain.backupset import DatabaseInfo, RecoveryModel
from sqlharbor_agent.engines.simulated.engine import SimulatedEngine

#: name -> recovery model; ``master`` is created as a system database.
DEMO_DATABASES: Mapping[str, RecoveryModel] = {
    "master": RecoveryModel.SIMPLE,
    "sales": RecoveryModel.FULL,
    "inventory": RecoveryModel.FULL,
    "reporting": RecoveryModel.SIMPLE,
}


def seed_databases(
    engine: SimulatedEngine, databases: Mapping[str, RecoveryModel] = DEMO_DATABASES
) -> Sequence[DatabaseInfo]:
    """Create each missing database; existing ones (and their content) are left alone."""
    return [
        engine.ensure_database(name, model, is_system=name.lower() == "master")
        for name, model in databases.items()
    ]
