"""Benchmark 4: the real operator at scale on the real API server, with a load agent.

For each size N, on a control plane of its own: N ProtectedDatabases over N/20
SqlInstances, a policy with a daily full (twelve hours away from now) and the real
15-minute log interval (quick and tiny runs shorten it), the real operator process
(``python -m sqlharbor_operator``), and a load agent inside the harness that renews a
Lease, keeps SqlInstance status served (session + 20 discovered databases each), and
finishes every BackupJob at once with plausible results (increasing fake LSNs).

Steady state from the first minute: the load agent reports each database's first full as
finished at a moment spread evenly over the last interval (database i of N: ``i/N`` of an
interval ago), so log backups come due at an even rate from then on instead of all at once
fifteen minutes later.  Measured:

- API writes (``apiserver_request_total`` POST/PATCH/PUT/DELETE from ``/metrics``, before
  and after a steady window) minus the load agent's own writes, per protected database
  per hour at the 15-minute policy: the writes that do not depend on backups (per hour,
  as measured) plus 4 backups per database per hour x the backup-driven writes per
  database backup (BackupJob POSTs + one status fold per backup).  At the real interval
  this is the measured rate; a shortened interval (quick/tiny) is scaled the same way;
- lag between a log backup's due time (last finish + interval) and the moment its
  BackupJob appears (seen through the load agent's watch): p50/p99;
- operator peak RSS (VmHWM);
- retention: the harness creates the vault's container, and quick and tiny runs pass
  three times a window (full runs keep the operator's 10 minutes) so that its cost in
  writes shows: the load agent writes no vault, so every pass finds each database's
  catalog empty and sets its point count to 0, a change that must ride along
  with the next fold (``OperatorSettings.defer_at_most``) rather than cost a write each;
- settle time after a restart: the operator is stopped for an outage (60 s full), the
  databases that came due meanwhile are the backlog, and the time from the restart until
  every one of them has a new job is the settle time.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import Config, Result, median, percentile, proc_peak_rss_bytes
from benchmarks.plane import control_plane
from sqlharbor.api import API_VERSION, DatabaseResult, JobPhase, contract
from sqlharbor.api.contract.sealing import SessionKey
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import Conflict
from sqlharbor.vault.layout import new_recovery_point_id

NAME = "operator"
PER_INSTANCE = 20
REAL_INTERVAL = 900  # seconds: the 15-minute log policy the targets are stated for
SCALE_TO_15_MIN = 4  # log backups per database per hour at 15 minutes
AGENT_ID = "loadagent"
API = API_VERSION
WRITE_VERBS = ("POST", "PATCH", "PUT", "DELETE")
#: What the operator writes (the API server's own leases and endpoints are not counted).
OPERATOR_RESOURCES = (
    "backupjobs",
    "backuppolicies",
    "backupvaults",
    "events",
    "protecteddatabases",
    "restorejobs",
    "sqlinstances",
)


@dataclass(frozen=True)
class Shape:
    """How one size is run: the log interval, the steady window and the restart outage."""

    interval: int
    window: float
    outage: float

    #: Seconds between retention passes; None is the operator's default (10 minutes).
    #: Quick and tiny runs pass three times a window, so the window shows what a pass
    #: costs in writes (its point-count changes must ride along with the folds); full
    #: runs pass every 4 minutes, so that a pass over every database (each has its status
    #: by then) finishes before the peak-RSS reading: the RSS target includes a pass.
    retention: float | None = None


def api_writes_by_resource(kubeconfig: str) -> dict[str, float]:
    """apiserver_request_total of the write verbs, by "VERB resource[/subresource]"."""
    text = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "get", "--raw", "/metrics"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.rindex("}")].split(",")
        )
        verb = labels.get("verb", "").strip('"')
        if verb not in WRITE_VERBS:
            continue
        resource = labels.get("resource", "").strip('"')
        sub = labels.get("subresource", "").strip('"')
        key = f"{verb} {resource}{'/' + sub if sub else ''}"
        totals[key] = totals.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


class LoadAgent:
    """Serves every instance of the namespace and finishes every BackupJob at once."""

    def __init__(self, client: Any, namespace: str, instances: dict[str, list[str]], interval: int):
        from sqlharbor.kube.leases import renew

        self._renew = renew
        self.client = client
        self.namespace = namespace
        self.instances = instances
        self.interval = interval
        # first full of database i of N "finished" i/N of an interval ago: even due times
        names = [f"{inst}-{db}" for inst, dbs in instances.items() for db in dbs]
        self.backdate = {pd: interval * i / len(names) for i, pd in enumerate(names)}
        self.session = contract.AgentSession(AGENT_ID, uuid.uuid4().hex[:12])
        self.key = SessionKey()
        self.writes = 0  # to the sqlharbor.io resources (leases are not counted)
        self.lsn: dict[str, int] = {}
        self.finished: dict[str, datetime] = {}  # protected database -> last finish
        self.seen: list[tuple[float, str, str, list[str]]] = []  # (time, type, job, pds)
        self.lags: list[tuple[float, float]] = []  # (seen time, lag seconds) of log backups
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._heartbeat, daemon=True),
            threading.Thread(target=self._jobs, daemon=True),
        ]

    def start(self) -> None:
        self._renew(self.client, self.namespace, self.session, 30)
        self.register()
        for thread in self._threads:
            thread.start()

    def register(self) -> None:
        from sqlharbor.api import AgentInfo, DiscoveredDatabase
        from sqlharbor.domain.backupset import DatabaseState, RecoveryModel

        agent = AgentInfo(
            session_id=self.session.token,
            version="bench",
            hostname="bench",
            lease_name=contract.lease_name(AGENT_ID),
            started=datetime.now(UTC),
        ).to_wire()
        for name, databases in self.instances.items():
            status = {
                "agent": agent,
                "sqlVersion": "16.0.1000.6",
                "databaseCount": len(databases),
                "databases": [
                    DiscoveredDatabase(
                        name=db,
                        database_guid=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}/{db}")),
                        recovery_model=RecoveryModel.FULL,
                        state=DatabaseState.ONLINE,
                        size_bytes=1 << 30,
                    ).to_wire()
                    for db in databases
                ],
                "permissions": {"ok": True, "login": "bench"},
            }
            self.client.patch_status("SqlInstance", self.namespace, name, status)
            self.writes += 1

    def _heartbeat(self) -> None:
        while not self.stop.wait(5):
            # keep beating: a missed renewal is within the lease
            with contextlib.suppress(Exception):
                self._renew(self.client, self.namespace, self.session, 30)

    def _jobs(self) -> None:
        while not self.stop.is_set():
            try:
                items, version = self.client.list_raw("BackupJob", self.namespace)
                for item in items:
                    self._consider(item)
                for event in self.client.watch(
                    "BackupJob", self.namespace, resource_version=version, timeout_seconds=30
                ):
                    if self.stop.is_set():
                        return
                    if event.type == "ADDED":
                        self._consider(event.object)
            except Exception:
                time.sleep(0.5)

    def _consider(self, job: dict[str, Any]) -> None:
        if contract.phase_of(job):
            return
        seen = time.time()
        spec = job["spec"]
        kind = spec["type"]
        pds = [d.get("protectedDatabase") or d["name"] for d in spec["databases"]]
        with self.lock:
            if kind == "Log":
                for pd in pds:
                    previous = self.finished.get(pd)
                    if previous is not None:
                        due = previous.timestamp() + self.interval
                        self.lags.append((seen, seen - due))
            self.seen.append((seen, kind, job["metadata"]["name"], pds))
        results = []
        for db, pd in zip(spec["databases"], pds, strict=True):
            now = datetime.now(UTC)
            if kind == "Full" and pd not in self.finished:
                now -= timedelta(seconds=self.backdate.get(pd, 0.0))
            guid = str(
                uuid.uuid5(uuid.NAMESPACE_DNS, f"{spec['instanceRef']['name']}/{db['name']}")
            )
            start_lsn = int(db.get("expectedLastLsn") or self.lsn.get(pd, 10**15))
            last = start_lsn + 100
            self.lsn[pd] = last
            results.append(
                DatabaseResult(
                    name=db["name"],
                    phase=JobPhase.SUCCEEDED,
                    backup_type=BackupType(kind),
                    recovery_point_id=new_recovery_point_id(BackupType(kind), now),
                    database_guid=guid,
                    recovery_model="FULL",
                    first_lsn=str(start_lsn),
                    last_lsn=str(last),
                    checkpoint_lsn=str(start_lsn + 5),
                    database_backup_lsn=str(start_lsn),
                    start=now,
                    finish=now,
                    bytes_read=1 << 20,
                    bytes_stored=1 << 19,
                )
            )
            self.finished[pd] = now
        meta = job["metadata"]
        now = datetime.now(UTC)
        try:  # the agent's two writes: the claim (against the version read), the outcome
            self.client.patch_status(
                "BackupJob",
                self.namespace,
                meta["name"],
                contract.claim("BackupJob", self.session, self.key.public_text, now),
                resource_version=meta["resourceVersion"],
            )
        except Conflict:
            return
        finished = contract.backup_finished(results, None, now)
        self.client.patch_status("BackupJob", self.namespace, meta["name"], finished)
        self.writes += 2

    def close(self) -> None:
        self.stop.set()


def _changing_fields(stack: Any) -> dict[str, list[Any]]:
    """Which ProtectedDatabase status fields change between two reads 3 s apart."""
    items, _ = stack.client.list_raw("ProtectedDatabase", stack.namespace)
    name = items[0]["metadata"]["name"]
    before = stack.client.get_raw("ProtectedDatabase", stack.namespace, name).get("status") or {}
    time.sleep(3)
    after = stack.client.get_raw("ProtectedDatabase", stack.namespace, name).get("status") or {}
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def _docs(
    instances: dict[str, list[str]], interval: int, container: str
) -> Iterable[dict[str, Any]]:
    from sqlharbor_devtools.demo import scenario

    full_hour = (datetime.now(UTC).hour + 12) % 24  # no scheduled full during the run
    yield scenario.vault(container=container)
    yield scenario.policy(full=f"0 {full_hour} * * *", differential=None, log=f"{interval}s")
    for name, databases in instances.items():
        yield {
            "apiVersion": API,
            "kind": "SqlInstance",
            "metadata": {"name": name},
            "spec": {
                "host": f"{name}-vm",
                "instanceName": "MSSQLSERVER",
                "engine": "simulated",
                "agent": AGENT_ID,  # assigned, as agent enroll does
            },
        }
        for db in databases:
            yield scenario.protected_database(name, db)


def _create(stack: Any, docs: list[dict[str, Any]], chunk: int = 500) -> None:
    """kubectl create in chunks, four at a time (the vault and policy first)."""
    stack.kubectl("create", "-f", "-", stdin=yaml.safe_dump_all(docs[:2]))
    rest = docs[2:]
    chunks = [yaml.safe_dump_all(rest[i : i + chunk]) for i in range(0, len(rest), chunk)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda text: stack.kubectl("create", "-f", "-", stdin=text), chunks))


def _folded(stack: Any) -> int:
    """How many ProtectedDatabases show a full in their status (the operator folded it)."""
    items, _ = stack.client.list_raw("ProtectedDatabase", stack.namespace)
    return sum(1 for item in items if (item.get("status") or {}).get("lastFull"))


def measure(
    config: Config, count: int, shape: Shape, baseline: Path | None = None
) -> dict[str, Any]:
    """One size on a control plane of its own (objects of an earlier size would stay:
    without kube-controller-manager a namespace never finishes deleting).  With
    ``baseline`` (a source tree), the operator runs from that tree instead."""
    workdir = config.workdir / f"scale-{count}-{uuid.uuid4().hex[:6]}"
    with control_plane(workdir / "plane") as plane, _operator_from(baseline):
        out = _measure(plane, workdir, count, shape)
    out["variant"] = "baseline" if baseline else "current"
    return out


@contextlib.contextmanager
def _operator_from(tree: Path | None) -> Iterator[None]:
    """Processes started meanwhile (the operator, and its restart in ``_settle``) run
    from ``tree``: its packages ahead of the installed ones."""
    if tree is None:
        yield
        return
    saved = os.environ.get("PYTHONPATH")
    paths = [str(tree), str(tree / "operator"), str(tree / "agent")]
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, *([saved] if saved else [])])
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _measure(plane: Any, workdir: Path, count: int, shape: Shape) -> dict[str, Any]:
    from sqlharbor_devtools.demo.stack import Stack

    from sqlharbor.vault import AzureBlobStore

    stack = Stack(plane, f"bench-scale-{count}", workdir)
    stack.create_namespace()
    kubeconfig = str(plane.kubeconfig)
    instances = {
        f"inst-{i:04d}": [f"db{j:02d}" for j in range(PER_INSTANCE)]
        for i in range(max(1, count // PER_INSTANCE))
    }
    total = sum(len(v) for v in instances.values())
    agent = LoadAgent(stack.client, stack.namespace, instances, shape.interval)
    out: dict[str, Any] = {
        "databases": total,
        "instances": len(instances),
        "interval_seconds": shape.interval,
        "outage_seconds": shape.outage,
    }
    try:
        stack.install_vault_secrets()
        # the load agent writes no backups, so the container is made here: the retention
        # pass then lists every database's (empty) catalog as it would in production
        container = f"scale-{uuid.uuid4().hex[:8]}"
        AzureBlobStore.from_connection_string(plane.blob_connection_string, container)
        began = time.monotonic()
        _create(stack, list(_docs(instances, shape.interval, container)))
        out["create_seconds"] = time.monotonic() - began
        agent.start()
        operator = stack.start_operator(retention_seconds=shape.retention)
        began = time.monotonic()
        stack.wait_for(
            "every database's first full folded into its status",
            lambda: _folded(stack) >= total,
            timeout=max(300, total * 0.1),
            interval=max(2.0, total / 1000),  # a list of 10,000 is 26 MB: not every 2 s
        )
        out["first_fulls_seconds"] = time.monotonic() - began
        out.update(_steady_window(agent, kubeconfig, total, shape.window, operator.log))
        out["operator_peak_rss"] = proc_peak_rss_bytes(operator.popen.pid)
        out["retention_passes_before_rss"] = _retention_passes(operator.log)
        out["status_fields_changing"] = _changing_fields(stack)
        operator.stop()
        stack.processes.remove(operator)
        out.update(_settle(stack, agent, shape))
    finally:
        agent.close()
        stack.stop()
    return out


def _steady_window(
    agent: LoadAgent, kubeconfig: str, total: int, window: float, operator_log: Path
) -> dict[str, Any]:
    """API writes, backups and due->job lag over ``window`` seconds of steady state."""
    passes0 = _retention_passes(operator_log)
    by0 = api_writes_by_resource(kubeconfig)
    mine0, t0 = agent.writes, time.time()
    backups0 = sum(len(p) for *_, p in agent.seen)
    time.sleep(window)  # the measurement window itself, not a wait for a condition
    by1 = api_writes_by_resource(kubeconfig)
    mine1, t1 = agent.writes, time.time()
    passes = _retention_passes(operator_log) - passes0
    delta = {k: v - by0.get(k, 0.0) for k, v in sorted(by1.items()) if v - by0.get(k, 0.0)}
    api = sum(v for k, v in delta.items() if k.split()[1].split("/")[0] in OPERATOR_RESOURCES)
    operator_writes = api - (mine1 - mine0)
    hours = (t1 - t0) / 3600
    db_backups = sum(len(p) for *_, p in agent.seen) - backups0
    # Backup-driven writes: per job its create and (sooner or later) its garbage
    # collection, plus one status fold per database backup; the rest (status refreshes,
    # events, ...) does not depend on the log interval.  The deletes in a short window
    # lag behind the creates (the last 3 jobs per instance and type are kept), so the
    # steady-state figure counts one delete per create.
    created = delta.get("POST backupjobs", 0.0)
    collected = delta.get("DELETE backupjobs", 0.0)
    backup_driven = 2 * created + db_backups
    periodic = max(0.0, operator_writes - created - collected - db_backups)
    per_db_hour_15 = periodic / total / hours + SCALE_TO_15_MIN * backup_driven / max(1, db_backups)
    # a log taken early (aligned with another database's, see scheduling.log_alignment)
    # was not late: its lateness is 0
    raw = [lag for seen, lag in agent.lags if t0 <= seen <= t1]
    lags = [max(0.0, lag) for lag in raw]
    return {
        "logs_taken_early": sum(1 for lag in raw if lag < 0),
        "retention_passes": passes,
        "writes_by_resource": delta,
        "window_seconds": t1 - t0,
        "api_writes": api,
        "agent_writes": mine1 - mine0,
        "operator_writes": operator_writes,
        "database_backups": db_backups,
        "writes_per_db_hour_measured": operator_writes / total / hours,
        "writes_per_db_backup": operator_writes / max(1, db_backups),
        "backup_driven_writes": backup_driven,
        "jobs_created": created,
        "jobs_collected": collected,
        "periodic_writes": periodic,
        "writes_per_db_hour_at_15min": per_db_hour_15,
        "lag_p50": median(lags) if lags else None,
        "lag_p99": percentile(lags, 99) if lags else None,
        "lag_samples": len(lags),
    }


def _retention_passes(operator_log: Path) -> int:
    """Retention passes the operator finished so far (it logs a line at the end of each)."""
    with operator_log.open("rb") as handle:
        return sum(1 for line in handle if b"retention pass:" in line)


def _settle(stack: Any, agent: LoadAgent, shape: Shape) -> dict[str, Any]:
    """Restart after an outage; time until every database that came due during it (the
    backlog) has a new job.  The operator is already stopped."""
    time.sleep(shape.outage)  # the outage is the thing measured against, not a wait
    restarted = time.time()
    with agent.lock:
        backlog = {
            pd
            for pd, last in agent.finished.items()
            if last.timestamp() + shape.interval <= restarted
        }
    operator = stack.start_operator(retention_seconds=shape.retention)

    def caught_up() -> bool:
        with agent.lock:
            fresh = {pd for seen, _, _, pds in agent.seen if seen >= restarted for pd in pds}
        return backlog <= fresh

    stack.wait_for(
        "a job for every database that came due during the outage",
        caught_up,
        timeout=max(300, len(backlog) * 0.5),
        interval=0.5,
    )
    return {
        "settle_after_restart_seconds": time.time() - restarted,
        "restart_backlog": len(backlog),
        "operator_peak_rss_after_restart": proc_peak_rss_bytes(operator.popen.pid),
    }


def run(config: Config) -> Result:
    result = Result(NAME)
    sizes = config.pick((1000, 10000), (100, 1000), (40,))
    if os.environ.get("SQLHARBOR_BENCH_SCALE_SIZES"):  # e.g. "1000" or "1000,10000"
        sizes = tuple(int(n) for n in os.environ["SQLHARBOR_BENCH_SCALE_SIZES"].split(","))
    shape = config.pick(
        Shape(interval=REAL_INTERVAL, window=180.0, outage=60.0, retention=240.0),
        Shape(interval=120, window=90.0, outage=20.0, retention=30.0),
        Shape(interval=30, window=30.0, outage=30.0, retention=10.0),
    )
    # side by side: SQLHARBOR_BENCH_OPERATOR_BASELINE names a source tree of an earlier
    # operator (e.g. a git worktree); each size runs both, alternating which goes first
    tree = os.environ.get("SQLHARBOR_BENCH_OPERATOR_BASELINE")
    baseline = Path(tree) if tree else None
    runs: list[dict[str, Any]] = []
    earlier: list[dict[str, Any]] = []
    for i, count in enumerate(sizes):
        order = [None, baseline] if baseline is None or i % 2 == 0 else [baseline, None]
        for variant in order if baseline else [None]:
            (earlier if variant else runs).append(measure(config, count, shape, variant))
    result.details["runs"] = runs
    result.details["baseline_runs"] = earlier
    for r in runs:
        _rows(result, r)
    for r in earlier:
        _rows(result, r, label=f"baseline ({baseline.name if baseline else ''})")
    if len(runs) >= 2:
        _growth(result, runs[0], runs[-1])
    return result


def _rows(result: Result, r: dict[str, Any], label: str = "") -> None:
    n = f"{label} {r['databases']}".strip()
    measured = r["writes_per_db_hour_measured"]
    result.add(
        f"{n} databases: operator API writes per database per hour (15 min logs)",
        r["writes_per_db_hour_at_15min"],
        "writes",
        target="<= 6",
        met=r["writes_per_db_hour_at_15min"] <= 6,
        note=f"measured at {r['interval_seconds']} s logs: {measured:.1f}/db/h "
        f"({r['operator_writes']:.0f} operator writes in {r['window_seconds']:.0f} s: "
        f"{r['database_backups']} db backups in {r['jobs_created']:.0f} jobs, "
        f"{r['jobs_collected']:.0f} jobs collected, {r['periodic_writes']:.0f} other writes, "
        f"{r.get('retention_passes', 0)} retention passes; "
        f"15-min figure counts create + delete per job and a status fold per db backup)",
    )
    result.add(
        f"{n} databases: due -> job created, p99",
        r["lag_p99"],
        "s",
        target="<= 5 s",
        met=r["lag_p99"] is not None and r["lag_p99"] <= 5,
        note=f"p50 {r['lag_p50']:.2f} s over {r['lag_samples']} log backups "
        f"({r['logs_taken_early']} taken early with an instance-mate's, counted as 0)"
        if r["lag_p50"] is not None
        else "no samples",
    )
    result.add(
        f"{n} databases: operator peak RSS",
        r["operator_peak_rss"] / 1e6,
        "MB",
        target="<= 400 MB (at 10,000, a retention pass included)",
        met=r["operator_peak_rss"] / 1e6 <= 400,
        note=f"{r.get('retention_passes_before_rss', 0)} retention pass(es) had finished",
    )
    result.add(
        f"{n} databases: settle after a {r['outage_seconds']:.0f} s operator outage",
        r["settle_after_restart_seconds"],
        "s",
        note=f"{r['restart_backlog']} databases came due meanwhile; first fulls for all "
        f"folded in {r['first_fulls_seconds']:.0f} s; creating the objects "
        f"{r['create_seconds']:.0f} s",
    )


def _growth(result: Result, small: dict[str, Any], large: dict[str, Any]) -> None:
    factor = large["databases"] / small["databases"]
    per_backup = large["writes_per_db_backup"] / small["writes_per_db_backup"]
    rss = large["operator_peak_rss"] / small["operator_peak_rss"]
    result.add(
        f"growth {small['databases']} -> {large['databases']} databases ({factor:.0f}x): RSS",
        rss,
        "x",
        target=f"<= {factor:.0f}x (linear)",
        met=rss <= factor,
        note=f"writes per db backup x{per_backup:.2f}; lag p99 "
        f"{small['lag_p99'] or 0:.2f} -> {large['lag_p99'] or 0:.2f} s; settle "
        f"{small['settle_after_restart_seconds']:.0f} s ({small['restart_backlog']} due) -> "
        f"{large['settle_after_restart_seconds']:.0f} s ({large['restart_backlog']} due)",
    )
    result.add(
        f"growth {small['databases']} -> {large['databases']} databases: writes per db backup",
        per_backup,
        "x",
        target="<= 1x (constant per database)",
        met=per_backup <= 1.1,
    )
