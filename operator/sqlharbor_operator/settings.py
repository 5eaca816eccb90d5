"""``OperatorSettings``: everything the operator is configured with, built once by
``main`` from the command line and passed down (kopf's memo carries it to the handlers);
no module reads the environment or keeps a global."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlharbor.azure_access import AzureSettings
from sqlharbor_operator.leadership import ElectionSettings


@dataclass(frozen=True)
class OperatorSettings:
    kubeconfig: Path | None = None  # None: in-cluster, else $KUBECONFIG
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    tick_seconds: float = 1.0
    retention_interval: timedelta = timedelta(minutes=10)
    metrics_port: int | None = None
    #: How long a job's grant (its SAS tokens) lasts from the moment it is granted.
    grant_lifetime: timedelta = timedelta(hours=12)
    #: Finished BackupJobs kept per instance, type and outcome (like CronJob's).
    history_limit: int = 3
    #: ProtectedDatabase status writes in flight at once.
    write_concurrency: int = 8
    #: Status writes per tick; the rest wait for the next tick (still computed, so metrics
    #: stay live), so a burst (10,000 first fulls, a policy edit) never holds up dispatch.
    writes_per_tick: int = 200
    #: What a retention pass moves (point count, earliest restorable time) earns no write of
    #: its own: it rides along with the next write or goes alone once it waited this long.
    defer_at_most: timedelta = timedelta(hours=1)
    #: Vault catalogs a retention pass reads at once (one listing per database).
    retention_concurrency: int = 8
    #: Connections to the API server (status writes, creates, Secret reads).
    api_connections: int = 32
    #: Leader election (``leadership``); None: this replica always leads (one replica).
    election: ElectionSettings | None = None
    #: How the operator reaches Entra ID and Key Vault (the vaults' Key Vault keys).
    azure: AzureSettings = field(default_factory=AzureSettings)
