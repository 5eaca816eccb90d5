"""``Stack``: one namespace on the local control plane with the operator, agents and
workloads running as real processes (logs under the stack's folder).

Used by ``sqlharbor-dev demo``, the end-to-end tests and the benchmarks.  Nothing but the
test code itself uses the admin kubeconfig: each agent is enrolled with the product's
``sqlharbor agent enroll`` (its own ServiceAccount, Role and short-lived token, fenced by
``config/policy``), and the operator
with ServiceAccount ``sqlharbor-operator`` and exactly the RBAC of ``config/namespaced``
(the ClusterRole's rules as a Role, and the leader-election Role), re-targeted at the
stack's namespace (RBAC enforced: a permission the operator lacks fails the tests).  Both
are read from the sqlharbor checkout (``checkout``:
:func:`sqlharbor_devtools.devenv.require_repo_root` unless given).  Workloads run
``python -m sqlharbor_devtools simulate``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sqlharbor.errors import NotFound, PermanentError, TemporaryError
from sqlharbor.kube import KubeClient
from sqlharbor.vault.wrapping import SecretRsaKey
from sqlharbor_devtools.devenv.checkout import require_repo_root
from sqlharbor_devtools.devenv.controlplane import ControlPlane

#: The operator's identity (config/rbac/service_account.yaml).
OPERATOR_SERVICE_ACCOUNT = "sqlharbor-operator"
_RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    plane: ControlPlane
    namespace: str
    workdir: Path
    processes: list[Process] = field(default_factory=list)
    checkout: Path = field(default_factory=require_repo_root)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.client = KubeClient.from_kubeconfig(str(self.plane.kubeconfig))

    # -- resources ----------------------------------------------------------------------
    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "--kubeconfig", str(self.plane.kubeconfig), "-n", self.namespace, *args]
        result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise PermanentError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def apply(self, documents: Sequence[Mapping[str, Any]]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(list(documents)))

    def create_namespace(self) -> None:
        subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(self.plane.kubeconfig),
                "create",
                "namespace",
                self.namespace,
            ],
            capture_output=True,
            check=False,
        )

    def install_vault_secrets(
        self, *, storage_secret: str = "vault-storage", kek_secret: str = "vault-kek"
    ) -> None:
        """The storage Secret, and a fresh RSA wrapping key unless the namespace already
        has one: replacing it would make every earlier recovery point unreadable (a demo
        restarted on its old state keeps its key)."""
        documents = [
            _secret(storage_secret, {"connectionString": self.plane.blob_connection_string})
        ]
        try:
            self.client.secret_value(self.namespace, kek_secret, "kek")
        except NotFound:
            key = SecretRsaKey.generate()  # what `kubectl sqlharbor vault keygen` makes
            documents.append(_secret(kek_secret, {"kek": key.private_pem().decode("ascii")}))
        self.apply(documents)

    def enroll_agent(self, agent_id: str, instances: Sequence[str]) -> Path:
        """``kubectl sqlharbor agent enroll`` (the product's CLI, run as the admin): agent
        ``agent_id`` gets its own ServiceAccount and Role, ``instances`` (which must exist,
        as must the vaults whose Secrets it reads) are assigned to it; returns its
        bootstrap kubeconfig.  Idempotent: enrolling again issues a fresh token."""
        path = self.workdir / f"agent-{agent_id}.kubeconfig"
        command = [str(Path(sys.executable).with_name("sqlharbor")), "agent", "enroll", agent_id]
        for instance in instances:
            command += ["--instance", instance]
        command += ["--reassign", "-n", self.namespace, "-o", str(path)]
        command += ["--kubeconfig", str(self.plane.kubeconfig)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"agent enroll {agent_id} failed: {result.stderr.strip()}")
        return path

    def install_operator_rbac(self, secret_names: Sequence[str] = ()) -> None:
        """config/namespaced's RBAC in this namespace (:func:`namespaced_operator_rbac`)."""
        self.apply(namespaced_operator_rbac(self.checkout, self.namespace, secret_names))

    def operator_kubeconfig(self, secret_names: Sequence[str] = ()) -> Path:
        """A kubeconfig for ServiceAccount sqlharbor-operator of this namespace, with its
        RBAC installed; ``secret_names``: more Secrets its vaults name (beyond the samples')."""
        self.install_operator_rbac(secret_names)
        return self.plane.create_service_account_kubeconfig(
            self.namespace, OPERATOR_SERVICE_ACCOUNT, path=self.workdir / "operator.kubeconfig"
        )

    # -- processes ------------------------------------------------------------------------
    def _spawn(
        self, name: str, args: Sequence[str], extra_env: Mapping[str, str] | None = None
    ) -> Process:
        log = self.workdir / f"{name}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        env.pop("KUBECONFIG", None)
        handle = log.open("ab")
        popen = subprocess.Popen(
            [sys.executable, *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
            start_new_session=True,
        )
        handle.close()
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def start_operator(
        self,
        tick_seconds: float = 1.0,
        retention_seconds: float | None = None,
        secret_names: Sequence[str] = (),
        *,
        name: str = "operator",
        args: Sequence[str] = (),
    ) -> Process:
        """The operator for this namespace, as ServiceAccount sqlharbor-operator with the RBAC
        of config/namespaced (:meth:`operator_kubeconfig`); ``secret_names`` as there.  Its
        leader Lease lives in this namespace too; ``name`` tells replicas apart (process and
        log name), ``args`` go to its command line."""
        kubeconfig = self.operator_kubeconfig(secret_names)
        retention = (
            [] if retention_seconds is None else ["--retention-seconds", str(retention_seconds)]
        )
        return self._spawn(
            name,
            [
                "-m",
                "sqlharbor_operator",
                "--kubeconfig",
                str(kubeconfig),
                "--namespace",
                self.namespace,
                "--tick-seconds",
                str(tick_seconds),
                *retention,
                *("--leader-election-namespace", self.namespace),
                *args,
            ],
            extra_env={
                "POD_NAMESPACE": self.namespace,
                "POD_NAME": name,
            },
        )

    def write_agent_config(
        self,
        agent_id: str,
        instances: Sequence[Mapping[str, Any]],
        kubeconfig: Path,
        **settings: Any,
    ) -> Path:
        config = {
            "kubeconfig": str(kubeconfig),
            "namespace": self.namespace,
            "agentId": agent_id,
            "heartbeatSeconds": 2,
            "leaseSeconds": 10,
            "discoverySeconds": 5,
            "progressSeconds": 1,
            "watchTimeoutSeconds": 30,
            "instances": list(instances),
            **settings,
        }
        path = self.workdir / f"agent-{agent_id}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start_agent(self, agent_id: str, config: Path) -> Process:
        return self._spawn(
            f"agent-{agent_id}", ["-m", "sqlharbor_agent", "run", "--config", str(config)]
        )

    def start_workload(
        self,
        name: str,
        root: Path,
        instance: str,
        databases: Sequence[str],
        rate: float = 5.0,
        row_size: int = 2048,
        idle: tuple[float, float] | None = None,
    ) -> Process:
        """``idle``: (busy seconds, idle seconds) to alternate, else always busy."""
        args = [*_simulate_args(root, instance, databases, rate), "--row-size", str(row_size)]
        if idle is not None:
            args += ["--idle", str(idle[0]), str(idle[1])]
        return self._spawn(f"workload-{name}", args)

    def seed(self, root: Path, instance: str, databases: Sequence[str]) -> None:
        args = [sys.executable, *_simulate_args(root, instance, databases, rate=0)]
        subprocess.run(args, check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        self.client.close()

    # -- waiting --------------------------------------------------------------------------
    def wait_for(
        self, what: str, condition: Callable[[], Any], timeout: float, interval: float = 0.5
    ) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.name in ("operator",) and not process.alive():
                    raise PermanentError(f"{process.name} exited:\n{process.tail()}")
            try:
                last = condition()
            except TemporaryError:  # e.g. the API server restarting under the test
                last = None
            if last:
                return last
            time.sleep(interval)
        logs = "\n".join(f"--- {p.name}\n{p.tail(15)}" for p in self.processes)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{logs}")


def rendered_in(folder: Path, namespace: str) -> list[dict[str, Any]]:
    """``kubectl kustomize folder``, every object and every binding's subject moved into
    ``namespace`` (how the stack installs a namespaced kustomization of the product)."""
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    for doc in documents:
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return documents


def namespaced_operator_rbac(
    checkout: Path, namespace: str, secret_names: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The ServiceAccount, Roles and RoleBindings of ``config/namespaced`` (kustomize),
    re-targeted at ``namespace``; ``secret_names`` are added to the resourceNames of the
    Secrets rule, as a user adds the Secrets their vaults name."""
    rendered = rendered_in(checkout / "config" / "namespaced", namespace)
    documents = [d for d in rendered if d.get("kind") in _RBAC_KINDS]
    if sorted({d["kind"] for d in documents}) != sorted(_RBAC_KINDS):
        raise PermanentError("config/namespaced renders no ServiceAccount, Role or RoleBinding")
    extended = False
    for doc in documents:
        for rule in doc.get("rules", []):
            if rule.get("resources") == ["secrets"] and rule.get("resourceNames"):
                rule["resourceNames"] = [*rule["resourceNames"], *secret_names]
                extended = True
    if secret_names and not extended:
        raise PermanentError("config/namespaced has no Secrets rule with resourceNames")
    return documents


def _simulate_args(root: Path, instance: str, databases: Sequence[str], rate: float) -> list[str]:
    """``python -m sqlharbor_devtools simulate`` arguments (without the interpreter)."""
    args = [
        "-m",
        "sqlharbor_devtools",
        "simulate",
        "--root",
        str(root),
        "--instance",
        instance,
        "--rate",
        str(rate),
    ]
    for db in databases:
        args += ["--database", db]
    return args


def _secret(name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "stringData": dict(data),
    }
