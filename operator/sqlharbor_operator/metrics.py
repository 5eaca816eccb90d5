"""Prometheus metrics of the operator (``--metrics-port``): per-database RPO, recovery window
and health, and backup results by type and outcome.

The per-database series are made at scrape time by a collector from one small tuple per
database that the status writer refreshes every tick (``observe_status``), instead of four
label children per database kept in the client's registry (29 MB at 10,000 databases,
measured with tracemalloc); a database that is gone is dropped with ``retain``, so its
series disappear.  Updated by ``status_writes`` and ``accounting``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from prometheus_client import REGISTRY, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sqlharbor.api import Health, ProtectedDatabaseStatus

RESULTS = Counter(
    "sqlharbor_backup_results_total",
    "Backups finished, by type and outcome",
    ["namespace", "type", "outcome"],
)

Key = tuple[str, str]
#: (RPO seconds, latest restorable, earliest restorable (Unix seconds), health)
Observed = tuple[int | None, float | None, float | None, str | None]


class DatabaseMetrics(Collector):
    def __init__(self) -> None:
        self._observed: dict[Key, Observed] = {}

    def observe(self, key: Key, status: ProtectedDatabaseStatus) -> None:
        window = status.recovery_window
        latest = window.latest if window is not None else None
        earliest = window.earliest if window is not None else None
        self._observed[key] = (
            status.rpo_seconds,
            latest.timestamp() if latest is not None else None,
            earliest.timestamp() if earliest is not None else None,
            status.health.value if status.health is not None else None,
        )

    def retain(self, keys: Collection[Key]) -> None:
        """Forget databases not in ``keys`` (deleted): their series disappear."""
        if len(self._observed) > len(keys):
            for key in [k for k in self._observed if k not in keys]:
                del self._observed[key]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["namespace", "protected_database"]
        rpo = GaugeMetricFamily(
            "sqlharbor_rpo_seconds", "Seconds since the latest restorable time", labels=labels
        )
        latest = GaugeMetricFamily(
            "sqlharbor_recovery_window_latest_timestamp_seconds",
            "Latest restorable time (Unix seconds)",
            labels=labels,
        )
        earliest = GaugeMetricFamily(
            "sqlharbor_recovery_window_earliest_timestamp_seconds",
            "Earliest restorable time (Unix seconds)",
            labels=labels,
        )
        healthy = GaugeMetricFamily(
            "sqlharbor_protected_database_healthy",
            "1 when the database is Healthy (Ready), else 0; the health label names the state",
            labels=[*labels, "health"],
        )
        for (namespace, name), (r, last, first, health) in list(self._observed.items()):
            if r is not None:
                rpo.add_metric([namespace, name], r)
            if last is not None:
                latest.add_metric([namespace, name], last)
            if first is not None:
                earliest.add_metric([namespace, name], first)
            if health is not None:
                up = 1 if health == Health.HEALTHY.value else 0
                healthy.add_metric([namespace, name, health], up)
        yield from (rpo, latest, earliest, healthy)


DATABASES = DatabaseMetrics()
REGISTRY.register(DATABASES)


def serve(port: int) -> None:
    start_http_server(port)


def observe_status(namespace: str, name: str, status: ProtectedDatabaseStatus) -> None:
    DATABASES.observe((namespace, name), status)


def retain(keys: Collection[Key]) -> None:
    DATABASES.retain(keys)


def observe_result(namespace: str, backup_type: str, succeeded: bool) -> None:
    RESULTS.labels(namespace, backup_type, "succeeded" if succeeded else "failed").inc()
