"""The operator's RBAC (config/rbac, config/namespaced) is no wider than listed here, and the
real API server agrees.

- The rendered ClusterRole is exactly ``RULES`` (widening it means changing this test), the
  namespaced Role is the same rules, the leader-election Role is exactly
  ``LEADER_ELECTION_RULES``; no wildcards, Secrets only ``get`` and only by name, and every
  rule in the files carries a comment saying why.
- On the API server (RBAC enforced), as ServiceAccount sqlharbor-operator: what it may do
  and what it may not (SubjectAccessReview through ``kubectl auth can-i --as``), in the
  namespaced and the cluster-wide install, and its whole effective rule set in its
  namespace (SelfSubjectRulesReview, as the ServiceAccount itself) is exactly these rules
  plus what Kubernetes grants every authenticated user.

The end-to-end tests then run the operator under exactly this RBAC (``Stack.start_operator``)
and fail on any refusal, which proves it is enough.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlharbor_devtools.demo.stack import OPERATOR_SERVICE_ACCOUNT, namespaced_operator_rbac
from sqlharbor_devtools.devenv import ControlPlane, KubectlRunner
from sqlharbor_devtools.devenv.waiting import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
LEASE = "sqlharbor-operator"
SQLHARBOR_KINDS = [
    "backupvaults",
    "backuppolicies",
    "sqlinstances",
    "protecteddatabases",
    "backupjobs",
    "restorejobs",
]

Rule = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def rule(
    groups: Iterable[str],
    resources: Iterable[str],
    verbs: Iterable[str],
    names: Iterable[str] = (),
) -> Rule:
    return (
        tuple(sorted(groups)),
        tuple(sorted(resources)),
        tuple(sorted(names)),
        tuple(sorted(verbs)),
    )


#: The operator's rules, exactly (config/rbac/role.yaml says why each is needed).
RULES = sorted(
    [
        rule(["sqlharbor.io"], SQLHARBOR_KINDS, ["list", "watch"]),
        rule(["sqlharbor.io"], ["backupjobs"], ["create", "delete"]),
        rule(["sqlharbor.io"], ["protecteddatabases"], ["create"]),
        rule(["sqlharbor.io"], ["restorejobs", "backupjobs"], ["patch"]),
        rule(
            ["sqlharbor.io"],
            [
                "protecteddatabases/status",
                "backupvaults/status",
                "backuppolicies/status",
                "backupjobs/status",
                "restorejobs/status",
            ],
            ["patch"],
        ),
        rule(["coordination.k8s.io"], ["leases"], ["list", "watch"]),
        rule([""], ["secrets"], ["get"], ["vault-storage", "vault-kek"]),
        rule(["events.k8s.io"], ["events"], ["create"]),
    ]
)

#: Leader election: the one Lease in the operator's namespace.
LEADER_ELECTION_RULES = sorted(
    [
        rule(["coordination.k8s.io"], ["leases"], ["create"]),
        rule(["coordination.k8s.io"], ["leases"], ["get", "update"], [LEASE]),
    ]
)


def _rules(role: dict[str, Any]) -> list[Rule]:
    return sorted(
        rule(r.get("apiGroups", []), r.get("resources", []), r["verbs"], r.get("resourceNames", []))
        for r in role["rules"]
    )


def _render(kubectl: KubectlRunner, name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(kubectl("kustomize", str(CONFIG / name)).stdout) if d]


def _role(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


# --- the files -------------------------------------------------------------------------


def test_cluster_role_is_exactly_the_listed_rules(kubectl: KubectlRunner) -> None:
    documents = _render(kubectl, "rbac")
    assert _rules(_role(documents, "ClusterRole", OPERATOR_SERVICE_ACCOUNT)) == RULES
    leader = _role(documents, "Role", "sqlharbor-operator-leader-election")
    assert _rules(leader) == LEADER_ELECTION_RULES


def test_namespaced_role_is_the_cluster_role_in_one_namespace(kubectl: KubectlRunner) -> None:
    documents = _render(kubectl, "namespaced")
    assert not [d for d in documents if d["kind"].startswith("Cluster")]
    assert _rules(_role(documents, "Role", OPERATOR_SERVICE_ACCOUNT)) == RULES
    leader = _role(documents, "Role", "sqlharbor-operator-leader-election")
    assert _rules(leader) == LEADER_ELECTION_RULES
    binding = _role(documents, "RoleBinding", OPERATOR_SERVICE_ACCOUNT)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": OPERATOR_SERVICE_ACCOUNT,
    }


@pytest.mark.parametrize("name", ["rbac", "namespaced"])
def test_no_wildcards_and_secrets_only_by_name(kubectl: KubectlRunner, name: str) -> None:
    roles = [d for d in _render(kubectl, name) if d["kind"] in ("Role", "ClusterRole")]
    assert roles
    for role in roles:
        for r in role["rules"]:
            assert "nonResourceURLs" not in r, r
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert not any("*" in item for item in r.get(field, [])), (field, r)
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(r["verbs"])
            if "secrets" in r["resources"]:
                assert r["resources"] == ["secrets"], "Secrets get a rule of their own"
                assert r["verbs"] == ["get"], "no list/watch (nor writes) on Secrets"
                assert r.get("resourceNames"), "Secrets only by name"


@pytest.mark.parametrize("path", ["rbac/role.yaml", "rbac/leader_election_role.yaml"])
def test_every_rule_says_why(path: str) -> None:
    lines = (CONFIG / path).read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("  - apiGroups:")]
    assert starts
    for i in starts:
        assert lines[i - 1].strip().startswith("# "), f"{path}:{i + 1}: a rule without a comment"


# --- the API server ----------------------------------------------------------------------


def _can(kubectl: KubectlRunner, namespace: str, *args: str, subject_ns: str) -> bool:
    user = f"system:serviceaccount:{subject_ns}:{OPERATOR_SERVICE_ACCOUNT}"
    result = kubectl(
        "auth", "can-i", *args, f"--as={user}", *namespace_args(namespace), check=False
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


def namespace_args(namespace: str) -> list[str]:
    return ["--all-namespaces"] if namespace == "*" else ["-n", namespace]


ALLOWED_IN_ITS_NAMESPACE = [
    *[(verb, f"{kind}.sqlharbor.io") for kind in SQLHARBOR_KINDS for verb in ("list", "watch")],
    ("create", "backupjobs.sqlharbor.io"),
    ("delete", "backupjobs.sqlharbor.io"),
    ("create", "protecteddatabases.sqlharbor.io"),
    ("patch", "restorejobs.sqlharbor.io"),
    ("patch", "backupjobs.sqlharbor.io"),
    *[
        ("patch", f"{kind}.sqlharbor.io", "--subresource=status")
        for kind in (
            "protecteddatabases",
            "backupvaults",
            "backuppolicies",
            "backupjobs",
            "restorejobs",
        )
    ],
    ("list", "leases.coordination.k8s.io"),
    ("watch", "leases.coordination.k8s.io"),
    ("get", "secrets/vault-storage"),
    ("get", "secrets/vault-kek"),
    ("create", "events.events.k8s.io"),
    ("create", "leases.coordination.k8s.io"),
    ("get", f"leases.coordination.k8s.io/{LEASE}"),
    ("update", f"leases.coordination.k8s.io/{LEASE}"),
]

REFUSED_IN_ITS_NAMESPACE = [
    ("list", "secrets"),
    ("watch", "secrets"),
    ("get", "secrets"),
    ("get", "secrets/sql-credentials"),
    ("create", "secrets"),
    ("update", "secrets/vault-kek"),
    ("patch", "secrets/vault-kek"),
    ("delete", "secrets/vault-kek"),
    ("delete", "protecteddatabases.sqlharbor.io"),
    ("update", "protecteddatabases.sqlharbor.io"),
    ("patch", "protecteddatabases.sqlharbor.io"),
    ("get", "protecteddatabases.sqlharbor.io"),
    ("update", "backupjobs.sqlharbor.io"),
    ("create", "restorejobs.sqlharbor.io"),
    ("delete", "restorejobs.sqlharbor.io"),
    ("create", "backupvaults.sqlharbor.io"),
    ("patch", "backupvaults.sqlharbor.io"),
    ("delete", "backuppolicies.sqlharbor.io"),
    ("create", "sqlinstances.sqlharbor.io"),
    ("patch", "sqlinstances.sqlharbor.io", "--subresource=status"),  # the agent's
    ("deletecollection", "backupjobs.sqlharbor.io"),
    ("get", "leases.coordination.k8s.io/some-agent-session"),
    ("update", "leases.coordination.k8s.io/some-agent-session"),
    ("patch", f"leases.coordination.k8s.io/{LEASE}"),
    ("delete", f"leases.coordination.k8s.io/{LEASE}"),
    ("create", "events"),  # core/v1: kopf's posting is off
    ("list", "namespaces"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("list", "pods"),
    ("create", "pods"),
    ("list", "configmaps"),
]


def _apply(kubectl: KubectlRunner, documents: list[dict[str, Any]]) -> None:
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))


def _await_binding(kubectl: KubectlRunner, namespace: str, subject_ns: str) -> None:
    wait_for(
        lambda: _can(kubectl, namespace, "list", "backupjobs.sqlharbor.io", subject_ns=subject_ns),
        timeout=30,
        what="the operator's RoleBinding to take effect",
    )


def test_the_namespaced_service_account_may_do_what_it_needs_and_no_more(
    kubectl: KubectlRunner, namespace: str
) -> None:
    _apply(kubectl, namespaced_operator_rbac(REPO, namespace))
    _await_binding(kubectl, namespace, namespace)
    allowed = [
        a
        for a in ALLOWED_IN_ITS_NAMESPACE
        if not _can(kubectl, namespace, *a, subject_ns=namespace)
    ]
    assert not allowed, f"refused, though needed: {allowed}"
    refused = [
        r for r in REFUSED_IN_ITS_NAMESPACE if _can(kubectl, namespace, *r, subject_ns=namespace)
    ]
    assert not refused, f"allowed, though not needed: {refused}"
    # nothing in any other namespace, nor cluster-wide
    for check in [
        ("list", "protecteddatabases.sqlharbor.io"),
        ("get", "secrets/vault-kek"),
        ("create", "leases.coordination.k8s.io"),
    ]:
        assert not _can(kubectl, "default", *check, subject_ns=namespace), check
        assert not _can(kubectl, "*", *check, subject_ns=namespace), check


@pytest.fixture
def cluster_wide(kubectl: KubectlRunner, namespace: str) -> Iterator[str]:
    """config/rbac as config/default installs it, with the operator's namespace being the
    test's and the cluster-scoped names made unique (removed afterwards)."""
    suffix = f"-t{uuid.uuid4().hex[:8]}"
    documents = _render(kubectl, "rbac")
    cluster_scoped = []
    for doc in documents:
        if doc["kind"].startswith("Cluster"):
            doc["metadata"]["name"] += suffix
            cluster_scoped.append(f"{doc['kind'].lower()}/{doc['metadata']['name']}")
        else:
            doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += suffix
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    _apply(kubectl, documents)
    try:
        yield namespace
    finally:
        kubectl("delete", *cluster_scoped, "--ignore-not-found", check=False)


def test_the_cluster_wide_service_account_serves_every_namespace_but_no_more(
    kubectl: KubectlRunner, cluster_wide: str
) -> None:
    home = cluster_wide
    _await_binding(kubectl, "default", home)
    for where in ("*", "default", home):
        for kind in SQLHARBOR_KINDS:
            assert _can(kubectl, where, "watch", f"{kind}.sqlharbor.io", subject_ns=home), (
                where,
                kind,
            )
        assert _can(kubectl, where, "list", "leases.coordination.k8s.io", subject_ns=home)
        assert not _can(kubectl, where, "list", "secrets", subject_ns=home), where
        assert not _can(kubectl, where, "get", "secrets/other", subject_ns=home), where
    assert _can(kubectl, "default", "get", "secrets/vault-kek", subject_ns=home)
    assert _can(kubectl, "default", "create", "backupjobs.sqlharbor.io", subject_ns=home)
    assert not _can(
        kubectl, "default", "delete", "protecteddatabases.sqlharbor.io", subject_ns=home
    )
    # leader election only at home
    assert _can(kubectl, home, "update", f"leases.coordination.k8s.io/{LEASE}", subject_ns=home)
    assert not _can(
        kubectl, "default", "update", f"leases.coordination.k8s.io/{LEASE}", subject_ns=home
    )
    assert not _can(kubectl, "default", "create", "leases.coordination.k8s.io", subject_ns=home)
    assert not _can(kubectl, "*", "list", "namespaces", subject_ns=home)


#: What Kubernetes grants every authenticated user (system:basic-user and friends): asking
#: who one is and what one may do.
_EVERYONE = {"authorization.k8s.io", "authentication.k8s.io"}


def test_effective_rules_in_its_namespace_are_exactly_the_listed_ones(
    control_plane: ControlPlane, kubectl: KubectlRunner, namespace: str, tmp_path: Path
) -> None:
    """SelfSubjectRulesReview as the ServiceAccount itself (its own token): what the API
    server would let it do in its namespace, all of it."""
    from kubernetes import client, config

    _apply(kubectl, namespaced_operator_rbac(REPO, namespace))
    kubeconfig = control_plane.create_service_account_kubeconfig(
        namespace, OPERATOR_SERVICE_ACCOUNT, path=tmp_path / "operator.kubeconfig"
    )
    _await_binding(kubectl, namespace, namespace)
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    try:
        review = client.AuthorizationV1Api(api).create_self_subject_rules_review(
            client.V1SelfSubjectRulesReview(
                spec=client.V1SelfSubjectRulesReviewSpec(namespace=namespace)
            )
        )
    finally:
        api.close()
    assert not review.status.incomplete, review.status.evaluation_error
    granted = {
        (group, resource, name, verb)
        for r in review.status.resource_rules
        for group in r.api_groups or []
        for resource in r.resources or []
        for name in (r.resource_names or [None])
        for verb in r.verbs
        if group not in _EVERYONE
    }
    expected = {
        (group, resource, name, verb)
        for groups, resources, names, verbs in [*RULES, *LEADER_ELECTION_RULES]
        for group in groups
        for resource in resources
        for name in (names or (None,))
        for verb in verbs
    }
    assert granted == expected, (
        f"granted but not listed: {sorted(granted - expected, key=str)}; "
        f"listed but not granted: {sorted(expected - granted, key=str)}"
    )
