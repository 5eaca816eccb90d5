"""The operator's in-memory state keeps what it reads of each object, not the server's
bookkeeping (field ownership, kubectl's last-applied copy): at 10,000 databases that
bookkeeping was a third of the state."""

from __future__ import annotations

from typing import Any

from sqlharbor_operator.state import State

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _body() -> dict[str, Any]:
    return {
        "kind": "ProtectedDatabase",
        "metadata": {
            "name": "sales",
            "namespace": "ns",
            "annotations": {LAST_APPLIED: "{" + "x" * 4000 + "}", "team": "finance"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"instanceRef": {"name": "i"}, "databaseName": "sales", "policyRef": {"name": "p"}},
    }


def test_the_state_drops_field_ownership_and_kubectls_copy() -> None:
    state = State()
    body = _body()
    pd = state.upsert("ProtectedDatabase", body)
    meta = pd.metadata.model_dump(by_alias=True)
    assert "managedFields" not in meta
    assert pd.metadata.annotations == {"team": "finance"}, "other annotations stay"
    assert "managedFields" in body["metadata"], "the watched body itself is not changed"
    assert LAST_APPLIED in body["metadata"]["annotations"]
