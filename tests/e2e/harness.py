"""The end-to-end harness: a Stack plus the steps every end-to-end test repeats."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlharbor_devtools.demo import scenario
from sqlharbor_devtools.demo.stack import Process, Stack
from sqlharbor_devtools.devenv.controlplane import ControlPlane

from sqlharbor.api import KINDS, JobPhase

#: What a missing permission looks like: the API server's 403 as the operator's client and
#: kopf log it ("Forbidden"), kopf's fallbacks when it may not list or watch, a status
#: written from it.
FORBIDDEN = re.compile(r"forbidden|not enough permissions", re.IGNORECASE)

#: The timestamp the operator's text log lines begin with (logging's ``asctime``, local time).
_LOGGED_AT = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) ")

#: A time window (aware datetimes) in which a refusal is not the RBAC's fault.
Window = tuple[datetime, datetime]


def assert_no_forbidden(stack: Stack, *, excused: Sequence[Window] = ()) -> None:
    """The operator (ServiceAccount sqlharbor-operator with exactly config/namespaced's RBAC)
    was refused nothing: not in its log, not in the audit log, not in any status of the
    namespace.  Called when each end-to-end environment ends, so every end-to-end test
    proves the RBAC suffices.

    ``excused`` are the windows in which a kube-apiserver was restarting: until its
    ``/readyz`` passes, its RBAC authorizer may not have loaded the Roles yet and refuses
    everything, as a real one does after a restart.  Only refusals inside them are excused.
    """

    def excused_at(moment: datetime | None) -> bool:
        return moment is not None and any(start <= moment <= end for start, end in excused)

    problems = [
        f"{process.name}: {line}"
        for process in stack.processes
        if process.name.startswith("operator")
        for line in process.log.read_text(errors="replace").splitlines()
        if FORBIDDEN.search(line) and not excused_at(_logged_at(line))
    ]
    # what the operator swallows (an Event it could not post) the audit log still shows
    account = f"system:serviceaccount:{stack.namespace}:sqlharbor-operator"
    problems += [
        f"audit: {e.verb} {e.resource} {e.namespace}/{e.name}: {e.code}"
        for e in stack.plane.audit_events()
        if e.user == account and e.code == 403 and not excused_at(e.received)
    ]
    for kind in KINDS:
        items, _ = stack.client.list_raw(kind.kind, stack.namespace)
        for item in items:
            status = json.dumps(item.get("status") or {})
            if FORBIDDEN.search(status):
                problems.append(f"{kind.kind} {item['metadata']['name']}: {status[:500]}")
    assert not problems, "refused by RBAC:\n" + "\n".join(problems[:20])


def _logged_at(line: str) -> datetime | None:
    found = _LOGGED_AT.match(line)
    if found is None:
        return None
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone()


class E2E:
    """A Stack plus the few things every end-to-end test repeats."""

    def __init__(self, stack: Stack, root: Path) -> None:
        self.stack = stack
        self.root = root  # simulated engine state
        self.container = f"e2e-{uuid.uuid4().hex[:12]}"

    @property
    def namespace(self) -> str:
        return self.stack.namespace

    def apply_vault_and_policy(self, **policy: Any) -> None:
        self.stack.apply([scenario.vault(container=self.container), scenario.policy(**policy)])

    def instance(self, name: str, host: str, databases: dict[str, str]) -> str:
        """Create the simulated databases and the SqlInstance; returns the vault identity."""
        inst = scenario.DemoInstance(name, host, "MSSQLSERVER", databases)
        self.stack.seed(self.root, inst.vault_identity, [f"{d}={m}" for d, m in databases.items()])
        self.stack.apply([scenario.instance(inst)])
        return inst.vault_identity

    def protect(self, instance: str, *databases: str) -> None:
        self.stack.apply([scenario.protected_database(instance, db) for db in databases])

    def start_agent(self, agent_id: str, instances: list[str], **settings: Any) -> Process:
        kubeconfig = self.stack.enroll_agent(agent_id, instances)
        config = self.stack.write_agent_config(
            agent_id,
            [
                {"name": i, "engine": "simulated", "simulated": {"rootDir": str(self.root)}}
                for i in instances
            ],
            kubeconfig,
            **settings,
        )
        return self.stack.start_agent(agent_id, config)

    def pd(self, name: str) -> dict[str, Any]:
        return self.stack.client.get_raw("ProtectedDatabase", self.namespace, name)

    def pd_status(self, name: str) -> dict[str, Any]:
        return dict(self.pd(name).get("status") or {})

    def jobs(self) -> list[dict[str, Any]]:
        items, _ = self.stack.client.list_raw("BackupJob", self.namespace)
        return items

    def job_moving_bytes(self) -> dict[str, Any] | None:
        """A Running BackupJob whose progress shows bytes already read, if any."""
        for job in self.jobs():
            st = job.get("status") or {}
            if st.get("phase") == JobPhase.RUNNING and (st.get("progress") or {}).get("bytesDone"):
                return job
        return None

    def wait(self, what: str, condition: Callable[[], Any], timeout: float = 120) -> Any:
        try:
            return self.stack.wait_for(what, condition, timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- failed jobs\n{self.failures()}") from None

    def failures(self) -> str:
        lines = []
        for job in self.jobs():
            status = job.get("status") or {}
            if status.get("phase") == JobPhase.FAILED:
                lines.append(f"{job['metadata']['name']}: {status.get('error')}")
        jobs = sorted(self.jobs(), key=lambda j: j["metadata"]["creationTimestamp"])
        lines.append("--- jobs")
        for job in jobs[-8:]:
            st = job.get("status") or {}
            lines.append(
                f"{job['metadata']['name']} {job['spec']['reason']} {st.get('phase')} "
                f"{job['spec'].get('reasonMessage', '')}"
            )
        items, _ = self.stack.client.list_raw("ProtectedDatabase", self.namespace)
        for item in items:
            lines.append(f"--- {item['metadata']['name']}: {item.get('status')}")
        return "\n".join(lines[-40:])


@contextlib.contextmanager
def module_e2e(plane: ControlPlane, tmp: Path, prefix: str) -> Iterator[E2E]:
    """A stack in a fresh namespace ``PREFIX-<random>`` for a whole test module (with its
    vault Secrets); on the way out it checks nothing was refused (``assert_no_forbidden``),
    stops every process and deletes the namespace (not awaited)."""
    stack = Stack(plane, f"{prefix}-{uuid.uuid4().hex[:8]}", tmp / "stack")
    stack.create_namespace()
    stack.install_vault_secrets()
    try:
        yield E2E(stack, tmp / "simulated")
        assert_no_forbidden(stack)
    finally:
        stack.stop()
        stack.kubectl("delete", "namespace", stack.namespace, "--wait=false", check=False)
