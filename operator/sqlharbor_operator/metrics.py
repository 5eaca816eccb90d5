"""Prometheus metrics of the operator (``--metrics-port``): per-database RPO, recovery
window and health, and backup results by type and outcome.  Updated by the controller."""

from __future__ import annotations

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
    "1 when the database is Healthy (Ready), else 0",
    ["namespace", "protected_database", "health"],
)
RESULTS = Counter(
    "sqlharbor_backup_results_total",
    "Backups finished, by type and outcome",
    ["namespace", "type", "outcome"],
)


def serve(port: int) -> None:
    start_http_server(port)


def observe_status(namespace: str, name: str, status: ProtectedDatabaseStatus) -> None:
    if status.rpo_seconds is not None:
        RPO.labels(namespace, name).set(status.rpo_seconds)
    window = status.recovery_window
    if window is not None and window.latest is not None:
        LATEST.labels(namespace, name).set(window.latest.timestamp())
    if window is not None and window.earliest is not None:
        EARLIEST.labels(namespace, name).set(window.earliest.timestamp())
    if status.health is not None:
        for health in Health:
            HEALTHY.labels(namespace, name, health.value).set(
                1 if status.health is health and health is Health.HEALTHY else 0
            )


def observe_result(namespace: str, backup_type: str, succeeded: bool) -> None:
    RESULTS.labels(namespace, backup_type, "succeeded" if succeeded else "failed").inc()
