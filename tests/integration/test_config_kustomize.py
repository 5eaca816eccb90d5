"""The config/ kustomize tree: every kustomization renders exactly the objects it should,
the operator's Deployment is what the install promises (2 replicas, leader election from
the downward API, probes, a restricted security context, requests and limits, the
project's image), and the two installs and the samples pass a server-side dry run on the
real API server (schemas, the CRDs, RBAC objects, Pod Security "restricted")."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlharbor_devtools.devenv import KubectlRunner

from sqlharbor.api import GROUP, KINDS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
SYSTEM = "sqlharbor-system"
OPERATOR = "sqlharbor-operator"
LEADER_ELECTION = "sqlharbor-operator-leader-election"

Object = tuple[str, str | None, str]  # kind, namespace, name

CRDS: set[Object] = {("CustomResourceDefinition", None, f"{k.plural}.{GROUP}") for k in KINDS}
#: cluster-scoped: kustomize must not give them a namespace
POLICY: set[Object] = {
    ("ValidatingAdmissionPolicy", None, "sqlharbor-agent-fence"),
    ("ValidatingAdmissionPolicyBinding", None, "sqlharbor-agent-fence"),
    ("ValidatingAdmissionPolicy", None, "sqlharbor-vault-keys"),
    ("ValidatingAdmissionPolicyBinding", None, "sqlharbor-vault-keys"),
}


def _operator(namespace: str, *, cluster_wide: bool) -> set[Object]:
    role, binding = (
        ("ClusterRole", "ClusterRoleBinding") if cluster_wide else ("Role", "RoleBinding")
    )
    role_namespace = None if cluster_wide else namespace
    return {
        ("ServiceAccount", namespace, OPERATOR),
        (role, role_namespace, OPERATOR),
        (binding, role_namespace, OPERATOR),
        ("Role", namespace, LEADER_ELECTION),
        ("RoleBinding", namespace, LEADER_ELECTION),
    }


MANAGER: set[Object] = {
    ("Deployment", SYSTEM, OPERATOR),
    ("Service", SYSTEM, "sqlharbor-operator-metrics"),
}

#: Every kustomization under config/ and what it renders.
EXPECTED: dict[str, set[Object]] = {
    "crd": CRDS,
    "rbac": _operator(SYSTEM, cluster_wide=True),
    "manager": MANAGER,
    "default": {
        ("Namespace", None, SYSTEM),
        *CRDS,
        *POLICY,
        *_operator(SYSTEM, cluster_wide=True),
        *MANAGER,
    },
    "namespaced": {
        *CRDS,
        *_operator("default", cluster_wide=False),
        ("Deployment", "default", OPERATOR),
        ("Service", "default", "sqlharbor-operator-metrics"),
    },
    "samples": {
        ("Secret", None, "vault-storage"),
        ("Secret", None, "vault-kek"),
        ("BackupVault", None, "primary"),
        ("BackupPolicy", None, "standard"),
        ("SqlInstance", None, "sql-vm-01"),
        ("ProtectedDatabase", None, "sales"),
    },
    "policy": POLICY,
}


def render(kubectl: KubectlRunner, path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(kubectl("kustomize", str(path)).stdout) if d]


def _objects(documents: list[dict[str, Any]]) -> set[Object]:
    return {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in documents}


def _one(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in documents if d["kind"] == kind]
    return found


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_every_kustomization_under_config_is_covered() -> None:
    found = sorted(p.parent.name for p in CONFIG.glob("*/kustomization.yaml"))
    assert found == sorted(EXPECTED), "a new kustomization needs its expected objects here"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_kustomization_renders_exactly_its_objects(kubectl: KubectlRunner, name: str) -> None:
    assert _objects(render(kubectl, CONFIG / name)) == EXPECTED[name]


def test_the_deployment_runs_two_leader_electing_restricted_replicas(
    kubectl: KubectlRunner,
) -> None:
    deployment = _one(render(kubectl, CONFIG / "default"), "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = _container(deployment)
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["serviceAccountName"] == OPERATOR
    assert pod["automountServiceAccountToken"] is True
    assert container["args"] == ["--log-format=json", "--health-port=8080", "--metrics-port=9090"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    pod_security = pod["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == 65532
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts == {"tmp": "/tmp"}
    assert "emptyDir" in volumes["tmp"]


def test_requests_and_limits_are_set_and_consistent(kubectl: KubectlRunner) -> None:
    resources = _container(_one(render(kubectl, CONFIG / "manager"), "Deployment"))["resources"]
    assert set(resources) == {"requests", "limits"}
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    mib = {"Mi": 1, "Gi": 1024}
    memory = {k: int(v["memory"][:-2]) * mib[v["memory"][-2:]] for k, v in resources.items()}
    # 507 MiB: the worst peak RSS measured at 10,000 databases (manager.yaml says how)
    assert 507 <= memory["requests"] <= memory["limits"]


def test_the_image_is_the_projects_version(kubectl: KubectlRunner) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    image = _container(_one(render(kubectl, CONFIG / "manager"), "Deployment"))["image"]
    assert image == f"sqlharbor-operator:{version}", "make image builds this name and tag"


def test_namespaced_install_serves_the_namespace_set_once(
    kubectl: KubectlRunner, tmp_path: Path
) -> None:
    """The documented edit (``namespace:`` in config/namespaced) moves everything there; the
    operator's --namespace follows from its pod's namespace."""
    copy = tmp_path / "config"
    shutil.copytree(CONFIG, copy)
    kustomization = copy / "namespaced" / "kustomization.yaml"
    text = kustomization.read_text()
    assert "\nnamespace: default\n" in text
    kustomization.write_text(text.replace("\nnamespace: default\n", "\nnamespace: team-a\n"))
    documents = render(kubectl, copy / "namespaced")
    assert _objects(documents) == {
        *CRDS,
        *_operator("team-a", cluster_wide=False),
        ("Deployment", "team-a", OPERATOR),
        ("Service", "team-a", "sqlharbor-operator-metrics"),
    }
    for binding in (d for d in documents if d["kind"] == "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": OPERATOR, "namespace": "team-a"}
        ]
    container = _container(_one(documents, "Deployment"))
    assert container["args"][-1] == "--namespace=$(POD_NAMESPACE)"
    assert container["env"][0]["name"] == "POD_NAMESPACE"  # defined before args expand it


def _dry_run(kubectl: KubectlRunner, *args: str) -> str:
    result = kubectl("apply", "--server-side", "--dry-run=server", *args, check=False)
    assert result.returncode == 0, (
        f"kubectl apply --dry-run=server {' '.join(args)}:\n{result.stderr}"
    )
    return result.stderr


def test_cluster_wide_install_dry_runs_on_the_api_server(kubectl: KubectlRunner) -> None:
    # a dry run creates nothing, so the namespace the rest goes into must exist first: it
    # is created for real (idempotent; an empty namespace is left behind)
    kubectl("apply", "--server-side", "-f", str(CONFIG / "default" / "operator" / "namespace.yaml"))
    warnings = _dry_run(kubectl, "-k", str(CONFIG / "default"))
    # the namespace warns about pods that would violate Pod Security "restricted"
    assert "Warning" not in warnings, warnings


def test_namespaced_install_dry_runs_on_the_api_server(
    kubectl: KubectlRunner, namespace: str, tmp_path: Path
) -> None:
    assert "Warning" not in _dry_run(kubectl, "-k", str(CONFIG / "namespaced"))
    # and in a namespace of its own that warns about Pod Security "restricted" violations
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted")
    copy = tmp_path / "config"
    shutil.copytree(CONFIG, copy)
    kustomization = copy / "namespaced" / "kustomization.yaml"
    text = kustomization.read_text().replace(
        "\nnamespace: default\n", f"\nnamespace: {namespace}\n"
    )
    kustomization.write_text(text)
    warnings = _dry_run(kubectl, "-k", str(copy / "namespaced"))
    assert "Warning" not in warnings, warnings


def test_samples_dry_run_on_the_api_server(kubectl: KubectlRunner, namespace: str) -> None:
    _dry_run(kubectl, "-n", namespace, "-k", str(CONFIG / "samples"))
    listed = set(
        yaml.safe_load((CONFIG / "samples" / "kustomization.yaml").read_text())["resources"]
    )
    actions = sorted(
        p
        for p in (CONFIG / "samples").glob("*.yaml")
        if p.name not in {*listed, "kustomization.yaml"}
    )
    assert [p.name for p in actions] == ["05-backupjob-ondemand.yaml", "06-restorejob-pitr.yaml"]
    for action in actions:
        _dry_run(kubectl, "-n", namespace, "-f", str(action))
