"""Two enrolled agents on the real API server: everything agent B might try against agent
A's instance, jobs, Lease, token and Secrets is refused (by RBAC or by the fence policy,
config/policy/agent_fence.yaml) with a message naming the rule; B's own work is allowed;
a revoked agent is locked out at its next call.

Agents are enrolled with the real CLI (``sqlharbor agent enroll``) and act through the
product's ``KubeClient`` with the kubeconfig it printed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlharbor_devtools.devenv import ControlPlane, KubectlRunner

from sqlharbor.api import API_VERSION, RestorePhase, contract
from sqlharbor.api.contract import AgentSession, lease_object
from sqlharbor.api.contract.sealing import SessionKey
from sqlharbor.cli.main import _register, cli
from sqlharbor.errors import AccessDenied, Conflict
from sqlharbor.kube import KubeClient
from sqlharbor.kube.agents import request_token
from sqlharbor.kube.objects import event_body

GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
FENCE = "ValidatingAdmissionPolicy 'sqlharbor-agent-fence'"


@dataclass
class Agents:
    namespace: str
    admin: KubeClient
    a: KubeClient
    b: KubeClient
    kubectl: KubectlRunner
    admin_kubeconfig: Path

    def job(self, agent: str | None, *, kind: str = "BackupJob") -> str:
        """A Pending job of instance ia, assigned to ``agent`` (the operator's label)."""
        name = f"j-{uuid.uuid4().hex[:8]}"
        labels = {contract.LABEL_AGENT: agent} if agent else {}
        if kind == "BackupJob":
            spec: dict[str, Any] = {
                "instanceRef": {"name": "ia"},
                "vaultRef": {"name": "primary"},
                "type": "Full",
                "reason": "OnDemand",
                "databases": [{"name": "Sales", "protectedDatabase": "sales"}],
            }
        else:
            spec = {
                "source": {"protectedDatabase": "sales"},
                "target": {
                    "database": {"instanceRef": {"name": "ia"}, "databaseName": "Sales_restored"}
                },
                "pointInTime": {"time": "2026-11-24T09:15:30Z"},
            }
        body = {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }
        self.admin.create(kind, self.namespace, body)
        return name


def _enroll(kubeconfig: Path, namespace: str, name: str, instance: str, out: Path) -> KubeClient:
    _register()
    result = CliRunner().invoke(
        cli,
        [
            "agent",
            "enroll",
            name,
            "--instance",
            instance,
            "-n",
            namespace,
            "--kubeconfig",
            str(kubeconfig),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o077 == 0, "the kubeconfig holds a token: owner-only"
    return KubeClient.from_kubeconfig(str(out))


@pytest.fixture
def agents(
    control_plane: ControlPlane, kubectl: KubectlRunner, namespace: str, tmp_path: Path
) -> Agents:
    for name in ("ia", "ib"):
        kubectl(
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            input=yaml.safe_dump(
                {
                    "apiVersion": API_VERSION,
                    "kind": "SqlInstance",
                    "metadata": {"name": name},
                    "spec": {"host": name, "engine": "simulated"},
                }
            ),
        )
    kubectl("create", "secret", "generic", "vault-kek", "-n", namespace, "--from-literal=key=x")
    vault = {
        "apiVersion": API_VERSION,
        "kind": "BackupVault",
        "metadata": {"name": "primary"},
        "spec": {
            "azureBlob": {
                "container": "backups",
                "credentials": {"secretRef": {"name": "vault-storage", "key": "c"}},
            },
            "encryption": {"keySecretRef": {"name": "vault-kek", "key": "key"}},
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(vault))
    admin = KubeClient.from_kubeconfig(str(control_plane.kubeconfig))
    a = _enroll(control_plane.kubeconfig, namespace, "vma", "ia", tmp_path / "a.kubeconfig")
    b = _enroll(control_plane.kubeconfig, namespace, "vmb", "ib", tmp_path / "b.kubeconfig")
    return Agents(namespace, admin, a, b, kubectl, control_plane.kubeconfig)


def _refused(action: Callable[[], object], *expected: str) -> str:
    with pytest.raises(AccessDenied) as caught:
        action()
    message = str(caught.value)
    for part in expected:
        assert part in message, message
    return message


def _status(client: KubeClient, ns: str, kind: str, name: str, body: dict[str, Any]) -> Any:
    return lambda: client.patch_status(kind, ns, name, body)


def _claim(session: str, kind: str = "BackupJob") -> dict[str, Any]:
    agent_id, _, sid = session.partition("/")
    return contract.claim(
        kind, AgentSession(agent_id, sid), SessionKey().public_text, datetime.now(UTC)
    )


def _await_fence(agents: Agents) -> None:
    """The policy is enforced once the API server's admission informer has it; the control
    plane applied it at start-up, so this normally passes at once."""
    ns = agents.namespace
    write = _status(agents.b, ns, "SqlInstance", "ia", {"sqlVersion": "forged"})
    agents.kubectl(
        "wait",
        "--for=jsonpath={.metadata.name}=sqlharbor-agent-fence",
        "validatingadmissionpolicy/sqlharbor-agent-fence",
        "--timeout=30s",
    )
    _refused(write, FENCE)


def test_agent_b_cannot_touch_agent_a_instance_jobs_lease_or_secrets(agents: Agents) -> None:
    ns, a, b = agents.namespace, agents.a, agents.b
    _await_fence(agents)

    # the SqlInstance served by A
    _refused(
        _status(b, ns, "SqlInstance", "ia", {"sqlVersion": "forged"}),
        FENCE,
        "agent vmb may not write the status of SqlInstance ia",
        'its spec.agent is "vma"',
    )
    _refused(
        lambda: b.patch_spec("SqlInstance", ns, "ib", {"agent": "vma"}),
        'cannot patch resource "sqlinstances"',
    )

    # A's Pending jobs: B cannot claim them, in its own name or A's
    for kind in ("BackupJob", "RestoreJob"):
        job = agents.job("vma", kind=kind)
        _refused(
            _status(b, ns, kind, job, _claim("vmb/s1", kind)),
            FENCE,
            f"may not write the status of {kind} {job}: it is assigned to agent vma",
        )
        _refused(_status(b, ns, kind, job, _claim("vma/s1", kind)), "assigned to agent vma")
    # a job assigned to no agent (the instance was never enrolled) nobody claims
    _refused(
        _status(a, ns, "BackupJob", agents.job(None), _claim("vma/s1")),
        "it is assigned to no agent yet",
    )
    # A may not claim its own job in B's name
    _refused(
        _status(a, ns, "BackupJob", agents.job("vma"), _claim("vmb/s9")),
        "an agent claims jobs only in its own name",
    )
    # a job B's label names but A's session runs: B cannot write it
    stolen = agents.job("vmb")
    agents.admin.patch_status("BackupJob", ns, stolen, _claim("vma/s1"))
    _refused(
        _status(b, ns, "BackupJob", stolen, {"message": "forged"}),
        "it is Running and was claimed by session vma/s1",
        "an agent claims only Pending BackupJobs and Planned RestoreJobs",
    )

    # A's Lease: not created in its name, not updated, not read
    lease = lease_object(AgentSession("vma", "s1"), 30, datetime.now(UTC))
    _refused(
        lambda: b.call("create lease", b.coordination.create_namespaced_lease, ns, lease),
        "may only write its own session Lease sqlharbor-agent-vmb",
    )
    _refused(
        lambda: b.call(
            "create lease", b.coordination.create_namespaced_lease, ns, _relabel(lease, "vmb")
        ),
        "may only write its own session Lease",
    )
    a.call("create lease", a.coordination.create_namespaced_lease, ns, lease)
    _refused(
        lambda: b.call(
            "read lease",
            b.coordination.read_namespaced_lease,
            "sqlharbor-agent-vma",
            ns,
        ),
        'cannot get resource "leases"',
    )

    # its own Lease name with another agent's label (the operator reads the label)
    _refused(
        lambda: b.call(
            "create lease",
            b.coordination.create_namespaced_lease,
            ns,
            _relabel(lease_object(AgentSession("vmb", "s1"), 30, datetime.now(UTC)), "vma"),
        ),
        "may only write its own session Lease",
    )
    # another namespace: the Role does not reach it (and the fence refuses it too)
    _refused(
        lambda: b.patch_status("SqlInstance", "default", "ia", {"sqlVersion": "x"}),
        'in the namespace "default"',
    )

    # what is the user's or the operator's: no write at all
    for kind in ("ProtectedDatabase", "BackupPolicy", "BackupVault"):
        _refused(lambda k=kind: b.patch_spec(k, ns, "x", {}), "cannot patch resource")
    _refused(lambda: b.delete("BackupJob", ns, stolen), 'cannot delete resource "backupjobs"')
    _refused(lambda: b.create("BackupJob", ns, {"metadata": {"name": "x"}}), "cannot create")

    # no Events at all (an agent posts none): none forged about anyone's objects
    _refused(
        lambda: b.call(
            "create event",
            b.events.create_namespaced_event,
            ns,
            event_body(
                namespace=ns,
                regarding={
                    "apiVersion": API_VERSION,
                    "kind": "SqlInstance",
                    "name": "ia",
                },
                reason="Forged",
                note="forged",
                type_="Normal",
                action="Reconcile",
                reporter="agent",
            ),
        ),
        'cannot create resource "events"',
    )

    # credentials: A's token, Secrets the vaults do not name
    _refused(
        lambda: request_token(b, ns, "sqlharbor-agent-vma", 600),
        'cannot create resource "serviceaccounts/token"',
    )
    _refused(lambda: b.secret_value(ns, "other-secret", "key"), 'cannot get resource "secrets"')


def _relabel(lease: dict[str, Any], agent: str) -> dict[str, Any]:
    """A's Lease name with B's label: the name alone is what the fence checks first."""
    return {**lease, "metadata": {**lease["metadata"], "labels": {contract.LABEL_AGENT: agent}}}


def test_an_agent_does_its_own_work(agents: Agents) -> None:
    ns, b = agents.namespace, agents.b
    _await_fence(agents)
    b.patch_status("SqlInstance", ns, "ib", {"sqlVersion": "16.0"})
    # its own lease: create, then renew
    lease = lease_object(AgentSession("vmb", "s1"), 30, datetime.now(UTC))
    b.call("create lease", b.coordination.create_namespaced_lease, ns, lease)
    b.call(
        "renew lease",
        b.coordination.patch_namespaced_lease,
        "sqlharbor-agent-vmb",
        ns,
        {"spec": {"renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}},
    )
    # a job assigned to it: claim, progress, finish; a job from its previous session
    job = _job_of(agents, "ib", "vmb")
    b.patch_status("BackupJob", ns, job, _claim("vmb/s1"))
    b.patch_status("BackupJob", ns, job, {"message": "50%"})
    # its own token; but no vault Secret, not even of the vault its jobs use (each job
    # brings its grant), and no write of a job's grant, which is the operator's
    issued = request_token(b, ns, "sqlharbor-agent-vmb", 600)
    assert issued.token
    assert issued.expires > datetime.now(UTC)
    _refused(lambda: b.secret_value(ns, "vault-kek", "key"), 'cannot get resource "secrets"')
    _refused(lambda: b.get_raw("BackupVault", ns, "primary"), 'cannot get resource "backupvaults"')
    grant = {"sealedTo": "x", "suite": "x", "expires": "2026-12-03T00:00:00Z", "payload": "eA=="}
    _refused(
        _status(b, ns, "BackupJob", job, {"grant": grant}),
        FENCE,
        f"agent vmb may not write status.grant of BackupJob {job}",
        "written by the operator only",
    )
    # a restore it claimed: its plan is the operator's (the grant is checked against it;
    # another database's points in it would bring their keys)
    restore = agents.job("vmb", kind="RestoreJob")
    step = {
        "recoveryPointId": "20261124T180000Z-F-00000001",
        "backupType": "Full",
        "firstLsn": "1000",
        "lastLsn": "2000",
        "finish": "2026-11-24T18:00:00Z",
    }
    plan = {"instance": "ia", "databaseGuid": GUID, "databaseName": "Sales", "steps": [step]}
    agents.admin.patch_status(
        "RestoreJob", ns, restore, {"phase": RestorePhase.PLANNED.value, "plan": plan}
    )
    b.patch_status("RestoreJob", ns, restore, _claim("vmb/s1", "RestoreJob"))
    b.patch_status("RestoreJob", ns, restore, {"message": "restoring"})
    other = {**plan, "databaseGuid": GUID.replace("6f", "7f"), "databaseName": "Payroll"}
    _refused(
        _status(b, ns, "RestoreJob", restore, {"plan": other}),
        FENCE,
        f"agent vmb may not write status.plan of RestoreJob {restore}",
    )


def _job_of(agents: Agents, instance: str, agent: str) -> str:
    name = f"j-{uuid.uuid4().hex[:8]}"
    agents.admin.create(
        "BackupJob",
        agents.namespace,
        {
            "apiVersion": API_VERSION,
            "kind": "BackupJob",
            "metadata": {"name": name, "labels": {contract.LABEL_AGENT: agent}},
            "spec": {
                "instanceRef": {"name": instance},
                "vaultRef": {"name": "primary"},
                "type": "Full",
                "reason": "OnDemand",
                "databases": [{"name": "Sales", "protectedDatabase": "sales"}],
            },
        },
    )
    return name


def test_a_revoked_agent_is_locked_out_at_its_next_call(agents: Agents) -> None:
    ns, b = agents.namespace, agents.b
    b.get_raw("SqlInstance", ns, "ib")  # works while enrolled
    _register()
    result = CliRunner().invoke(
        cli, ["agent", "revoke", "vmb", "-n", ns, "--kubeconfig", str(agents.admin_kubeconfig)]
    )
    assert result.exit_code == 0, result.output
    # at once its Role is gone; once the API server's ServiceAccount cache drops the
    # account, the token itself stops authenticating
    _refused(lambda: b.get_raw("SqlInstance", ns, "ib"), "sqlharbor-agent-vmb")
    deadline = time.monotonic() + 30
    while "Unauthorized" not in _refused(lambda: b.get_raw("SqlInstance", ns, "ib")):
        assert time.monotonic() < deadline, "the revoked token still authenticates"
        time.sleep(0.2)


def test_the_fence_is_installed_and_enroll_refuses_to_work_without_it(
    agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlharbor.cli import agent as agent_cli
    from sqlharbor.kube.agents import fence_installed

    assert fence_installed(agents.admin) is True  # what the control plane installed
    monkeypatch.setattr(agent_cli, "fence_installed", lambda client: False)
    _register()
    result = CliRunner().invoke(
        cli,
        [
            "agent",
            "enroll",
            "vmc",
            "--instance",
            "ia",
            "-n",
            agents.namespace,
            "--kubeconfig",
            str(agents.admin_kubeconfig),
        ],
    )
    assert result.exit_code == 1
    assert "kubectl apply -k config/policy" in result.output


def test_an_instance_is_assigned_against_the_version_read(agents: Agents) -> None:
    """Two enrols at once cannot both take an instance: the assignment carries the
    resourceVersion the enrol read, and the second one conflicts."""
    ns = agents.namespace
    read = agents.admin.get_raw("SqlInstance", ns, "ia")["metadata"]["resourceVersion"]
    agents.admin.patch_spec("SqlInstance", ns, "ia", {"agent": "vmc"})  # the other enrol
    with pytest.raises(Conflict):
        agents.admin.patch_spec("SqlInstance", ns, "ia", {"agent": "vmd"}, resource_version=read)
    assert agents.admin.get_raw("SqlInstance", ns, "ia")["spec"]["agent"] == "vmc"
