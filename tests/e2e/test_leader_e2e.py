"""Two operator replicas against one control plane: one leads, the other stands by and
takes over after ``kill -9`` (within a lease), at once after SIGTERM (the lease is
released), and a leader paused past its lease writes nothing once it resumes.

Who wrote what is read from the API server's audit log (``devenv.audit``): each replica's
user agent names its identity, so no replica vouches for itself.  Each round protects one
more database, whose first full is due at once: the time from the kill to that BackupJob's
creation is the failover time ("the standby dispatches").  ``SQLHARBOR_FAILOVER_ROUNDS``
sets the rounds per signal (default 3; the closing note's numbers used 10).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from sqlharbor_devtools.demo.stack import Process
from sqlharbor_devtools.devenv.audit import AuditEvent

from sqlharbor.api import JobPhase

from .harness import E2E

ROUNDS = int(os.environ.get("SQLHARBOR_FAILOVER_ROUNDS", "3"))
SPARE = [f"spare{i:02d}" for i in range(2 * ROUNDS + 2)]


class Replicas:
    """The operator replicas of one test, each with a known identity."""

    def __init__(self, e2e: E2E) -> None:
        self.e2e = e2e
        self.running: dict[str, Process] = {}
        self.started = 0
        self.logs: list[Path] = []

    def start(self) -> str:
        self.started += 1
        identity = f"replica-{self.started}"
        self.running[identity] = self.e2e.stack.start_operator(
            name=f"operator-{self.started}",
            args=[
                *("--identity", identity),  # the default lease: 10 s, as deployed
                "--log-format=json",
            ],
        )
        process = self.running[identity]
        self.logs.append(process.log)
        self.e2e.wait(
            f"{identity} loading its state",
            lambda: "state loaded" in process.log.read_text(errors="replace"),
        )
        return identity

    def holder(self) -> str | None:
        try:
            lease = self.e2e.stack.client.coordination.read_namespaced_lease(
                "sqlharbor-operator", self.e2e.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return lease.spec.holder_identity or None


def writes_by(e2e: E2E, identity: str) -> list[AuditEvent]:
    """What replica ``identity`` of this test sent (audited: writes, Secret reads)."""
    return [
        e
        for e in e2e.stack.plane.audit_events()
        if f"({identity})" in e.user_agent and e.namespace == e2e.namespace
    ]


def _creates(e2e: E2E, identity: str, database: str) -> AuditEvent:
    """The audit event of the BackupJob ``identity`` created for ``database``."""

    def found() -> AuditEvent | None:
        names = {
            job["metadata"]["name"]
            for job in e2e.jobs()
            if any(d.get("protectedDatabase") == database for d in job["spec"]["databases"])
        }
        for event in writes_by(e2e, identity):
            if event.verb == "create" and event.resource == "backupjobs" and event.name in names:
                return event
        return None

    result = e2e.wait(f"{identity} dispatching the first full of {database}", found, 90)
    assert isinstance(result, AuditEvent)
    return result


def _lease_write(e2e: E2E, identity: str) -> AuditEvent:
    """``identity``'s first write of the leader Lease (a standby never writes it before it
    takes over)."""

    def found() -> AuditEvent | None:
        for event in writes_by(e2e, identity):
            wrote = event.verb in ("update", "create") and event.code < 300
            if event.resource == "leases" and wrote:
                return event
        return None

    result = e2e.wait(f"{identity} taking the lease", found, 60)
    assert isinstance(result, AuditEvent)
    return result


def _setup(e2e: E2E) -> None:
    e2e.apply_vault_and_policy(full="0 1 * * 0", differential=None, log="30s")
    databases = {"sales": "FULL", "orders": "FULL", **{d: "FULL" for d in SPARE}}
    identity = e2e.instance("sim1", "vm1", databases)
    e2e.protect("sim1", "sales", "orders")
    e2e.stack.start_workload("w", e2e.root, identity, ["sales", "orders"], rate=5)
    e2e.start_agent("vm1", ["sim1"])


def _no_overlapping_jobs(e2e: E2E) -> None:
    """No database was in two BackupJobs at once: a job for it was only created after the
    one before had finished (no duplicate dispatch across the failovers)."""
    per_db: dict[str, list[tuple[datetime, datetime | None, str]]] = defaultdict(list)
    for job in e2e.jobs():
        created = datetime.fromisoformat(job["metadata"]["creationTimestamp"])
        done = (job.get("status") or {}).get("completionTime")
        finished = datetime.fromisoformat(done) if done else None
        for entry in job["spec"]["databases"]:
            per_db[entry["protectedDatabase"]].append((created, finished, job["metadata"]["name"]))
    for db, jobs in per_db.items():
        jobs.sort()
        for (_, finished, name), (created, _, later) in itertools.pairwise(jobs):
            assert finished is not None, f"{db}: {later} created while {name} never finished"
            assert finished <= created, f"{db}: {later} created while {name} was still running"


def _no_chain_breaks(e2e: E2E) -> None:
    reasons = [job["spec"].get("reason") for job in e2e.jobs()]
    assert "AutoHeal" not in reasons, reasons
    for name in ("sim1-sales", "sim1-orders"):
        status = e2e.pd_status(name)
        assert status.get("logChain") == "Healthy", (name, status)
        assert not (status.get("chain") or {}).get("fullRequired"), (name, status)


def test_standby_takes_over_after_kill_and_sigterm(e2e: E2E) -> None:
    _setup(e2e)
    replicas = Replicas(e2e)
    first = replicas.start()
    e2e.wait("the first replica leading", lambda: replicas.holder() == first)
    replicas.start()
    e2e.wait(
        "first fulls and a log of both databases",
        lambda: all("lastLog" in e2e.pd_status(f"sim1-{d}") for d in ("sales", "orders")),
        timeout=180,
    )
    # only the leader writes: nothing in the audit log from the standby so far
    standby = next(i for i in replicas.running if i != first)
    assert not [e for e in writes_by(e2e, standby) if e.resource != "leases"]
    spares = iter(SPARE)
    timings: dict[str, list[float]] = {"SIGKILL dispatch": [], "SIGTERM takeover": []}
    for sig in [signal.SIGKILL] * ROUNDS + [signal.SIGTERM] * ROUNDS:
        leader = replicas.holder()
        assert leader is not None
        other = next(i for i in replicas.running if i != leader)
        database = next(spares)
        process = replicas.running.pop(leader)
        signalled = time.time()
        process.popen.send_signal(sig)
        if sig == signal.SIGKILL:
            # dead at once: the database protected now can only be dispatched by the other
            e2e.protect("sim1", database)
            created = _creates(e2e, other, f"sim1-{database}")
            timings["SIGKILL dispatch"].append(created.received.timestamp() - signalled)
        else:
            # a graceful leader may still dispatch while it shuts down: protect after it
            # exited (it released the lease on the way out)
            process.popen.wait(30)
            took = _lease_write(e2e, other).received.timestamp() - signalled
            timings["SIGTERM takeover"].append(took)
            e2e.protect("sim1", database)
            _creates(e2e, other, f"sim1-{database}")
        process.stop()
        replicas.start()  # back to two replicas
    killed_at = signalled
    report = {name: (statistics.median(values), max(values)) for name, values in timings.items()}
    print(f"failover (median s, max s) over {ROUNDS} rounds each: {report}")
    rss = {i: _rss_mib(p.popen.pid) for i, p in replicas.running.items()}
    print(f"replicas' RSS (MiB) at {2 + len(timings['SIGKILL dispatch']) * 2} databases: {rss}")
    assert report["SIGKILL dispatch"][1] < 15, timings
    assert report["SIGTERM takeover"][1] <= 3, timings
    e2e.wait(
        "a log backup of each database after the last failover",
        lambda: all(
            e2e.pd_status(f"sim1-{d}").get("lastLog", {}).get("time", "") > _iso(killed_at)
            for d in ("sales", "orders")
        ),
        timeout=120,
    )
    _no_overlapping_jobs(e2e)
    _no_chain_breaks(e2e)
    _json_logs(replicas.logs)


def _json_logs(paths: list[Path]) -> None:
    """``--log-format json``: every line is a JSON object; dispatches name job and database."""
    dispatched = []
    for path in paths:
        lines = path.read_text(errors="replace").splitlines()
        for line in lines[:-1]:  # the last line of a killed replica may be cut short
            doc = json.loads(line)
            if str(doc.get("message", "")).startswith("dispatched"):
                dispatched.append(doc)
    assert dispatched
    assert all(d["job"] and d["database"] and d["namespace"] for d in dispatched)


def test_paused_leader_writes_nothing_after_takeover(e2e: E2E) -> None:
    _setup(e2e)
    replicas = Replicas(e2e)
    first = replicas.start()
    e2e.wait("the first replica leading", lambda: replicas.holder() == first)
    second = replicas.start()
    e2e.wait(
        "first fulls and a log of both databases",
        lambda: all("lastLog" in e2e.pd_status(f"sim1-{d}") for d in ("sales", "orders")),
        timeout=180,
    )
    paused = replicas.running[first]
    os.kill(paused.popen.pid, signal.SIGSTOP)
    try:
        took_over = _lease_write(e2e, second)
        # work the old leader would do too, had it not lost the lease: a new database's
        # first full, and the scheduled logs of the others
        e2e.protect("sim1", SPARE[0])
        _creates(e2e, second, f"sim1-{SPARE[0]}")
        # resume only once a scheduled log fell due during the pause: the paused replica's
        # state (from before it) then says that log backup is still to be dispatched
        e2e.wait(
            "a log backup dispatched by the new leader",
            lambda: any(
                e.verb == "create" and e.resource == "backupjobs" and "-log-" in e.name
                for e in writes_by(e2e, second)
            ),
            timeout=60,
        )
    finally:
        os.kill(paused.popen.pid, signal.SIGCONT)
    e2e.wait(
        "the resumed replica noticing it no longer leads",
        lambda: "no longer leads" in paused.log.read_text(errors="replace"),
    )
    resumed_at = time.time()
    e2e.wait(
        "two more log backups after the resume",
        lambda: _logs_after(e2e, resumed_at) >= 2,
        timeout=120,
    )
    # nothing audited — no write, and not even the Secret reads of a tick's vault checks:
    # the deposed replica's controller did not run
    late = [e for e in writes_by(e2e, first) if e.received >= took_over.received]
    assert late == [], late
    assert paused.alive()
    _no_overlapping_jobs(e2e)
    _no_chain_breaks(e2e)


def _logs_after(e2e: E2E, t: float) -> int:
    count = 0
    for job in e2e.jobs():
        status = job.get("status") or {}
        done = status.get("completionTime")
        succeeded = job["spec"]["type"] == "Log" and status.get("phase") == JobPhase.SUCCEEDED
        if succeeded and done and datetime.fromisoformat(done).timestamp() > t:
            count += 1
    return count


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
