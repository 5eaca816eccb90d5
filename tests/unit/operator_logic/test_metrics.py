"""Per-database metrics: one health series per database, whatever it went through."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlharbor_operator import metrics

from sqlharbor.api import Health, ProtectedDatabaseStatus


def _health_series(name: str) -> dict[str, float]:
    return {
        sample.labels["health"]: sample.value
        for family in REGISTRY.collect()
        if family.name == "sqlharbor_protected_database_healthy"
        for sample in family.samples
        if sample.labels["protected_database"] == name
    }


def test_a_health_change_replaces_the_series() -> None:
    for health in (Health.HEALTHY, Health.UNHEALTHY, Health.HEALTHY):
        metrics.observe_status("ns", "metrics-db", ProtectedDatabaseStatus(health=health))
        assert _health_series("metrics-db") == {
            health.value: 1.0 if health is Health.HEALTHY else 0.0
        }


def test_rpo_follows_every_observation() -> None:
    for rpo in (5, 6, 7):
        metrics.observe_status("ns", "rpo-db", ProtectedDatabaseStatus(rpo_seconds=rpo))
    assert (
        REGISTRY.get_sample_value(
            "sqlharbor_rpo_seconds", {"namespace": "ns", "protected_database": "rpo-db"}
        )
        == 7.0
    )


def test_a_deleted_database_s_series_disappear() -> None:
    status = ProtectedDatabaseStatus(health=Health.HEALTHY, rpo_seconds=3)
    metrics.observe_status("ns", "gone-db", status)
    metrics.observe_status("ns", "kept-db", status)
    assert _health_series("gone-db") == {"Healthy": 1.0}
    metrics.retain({("ns", "kept-db")})
    assert _health_series("gone-db") == {}
    assert _health_series("kept-db") == {"Healthy": 1.0}
