"""Prometheus metrics of the operator (``--metrics-port``): per-database RPO, recovery
window and health, and backup results by type and outcome.  Updated by the controller."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, start_http_server

from sqlharbor.api import Health, ProtectedDatabaseStatus

RPO = Gauge(
    "sqlharbor_rpo_seconds",
    "Seconds since the latest restorable time",
    ["namespace", "protected_database"],
)
LATEST = Gauge(
    "sqlharbor_recovery_window_latest_timestamp_seconds",
    "Latest restorable time (Unix seconds)",
    ["namespace", "protected_database"],
)
EARLIEST = Gauge(
    "sqlharbor_recovery_window_earliest_timestamp_seconds",
    "Earliest restorable time (Unix seconds)",
    ["namespace", "protected_database"],
)
HEALTHY = Gauge(
    "sqlharbor_protected_database_healthy",
    "1 when the database is Healthy (Ready), else 0; the health label names the state",
    ["namespace", "protected_database", "health"],
)
RESULTS = Counter(
    "sqlharbor_backup_results_total",
    "Backups finished, by type and outcome",
    ["namespace", "type", "outcome"],
)


def serve(port: int) -> None:
    start_http_server(port)


#: What was last observed per database, so that a tick over 10,000 databases only looks
#: up label children when something other than the RPO changed.
_observed: dict[tuple[str, str], tuple[Any, ...]] = {}
_rpo_children: dict[tuple[str, str], Any] = {}
_health: dict[tuple[str, str], Health] = {}


def observe_status(namespace: str, name: str, status: ProtectedDatabaseStatus) -> None:
    key = (namespace, name)
    if status.rpo_seconds is not None:
        child = _rpo_children.get(key)
        if child is None:
            child = _rpo_children[key] = RPO.labels(namespace, name)
        child.set(status.rpo_seconds)
    window = status.recovery_window
    latest = window.latest if window is not None else None
    earliest = window.earliest if window is not None else None
    seen = (latest, earliest, status.health)
    if _observed.get(key) == seen:
        return
    _observed[key] = seen
    if latest is not None:
        LATEST.labels(namespace, name).set(latest.timestamp())
    if earliest is not None:
        EARLIEST.labels(namespace, name).set(earliest.timestamp())
    previous = _health.get(key)
    if previous is not None and previous is not status.health:
        HEALTHY.remove(namespace, name, previous.value)  # one series per database
    if status.health is not None:
        _health[key] = status.health
        HEALTHY.labels(namespace, name, status.health.value).set(
            1 if status.health is Health.HEALTHY else 0
        )


def observe_result(namespace: str, backup_type: str, succeeded: bool) -> None:
    RESULTS.labels(namespace, backup_type, "succeeded" if succeeded else "failed").inc()
