"""The simulated engine: a durable, on-disk stand-in with SQL Server's backup semantics.

Used by the demo and the tests where no SQL Server exists; never presented as SQL
Server.  ``open_simulated_engine`` is what the agent calls; ``Workload`` commits
transactions; ``seed_databases`` creates the demo's databases.  Modules: ``engine``
(the Engine Protocol and test controls), ``backup`` and ``backup_rules``, ``restore``
and ``restore_rules``, ``forks`` (recovery forks), ``history`` (msdb's tables),
``stream`` (the backup format), ``store`` (SQLite), ``tables`` (row mappings),
``transactions``, ``payload``, ``workload``, ``seed``.
"""

from sqlharbor_agent.engines.simulated.engine import SimulatedEngine, open_simulated_engine
from sqlharbor_agent.engines.simulated.seed import DEMO_DATABASES, seed_databases
from sqlharbor_agent.engines.simulated.transactions import Commit, Operation
from sqlharbor_agent.engines.simulated.workload import Pace, Workload, WorkloadShape

__all__ = [
    "DEMO_DATABASES",
    "Commit",
    "Operation",
    "Pace",
    "SimulatedEngine",
    "Workload",
    "WorkloadShape",
    "open_simulated_engine",
    "seed_databases",
]
