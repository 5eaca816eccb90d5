"""Benchmark 6: measured RPO with 30-second log backups on one agent.

The real operator and one real agent (processes, via ``sqlharbor_devtools.demo.stack.Stack``) with
the simulated engine under a workload; N databases protected by a policy with a daily
full and a 30 s log interval.  After every database has its first restorable point, the
harness samples every ProtectedDatabase's status every few seconds and records
now - status.recoveryWindow.latest.  Target: p99 <= 60 s.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from benchmarks.common import Config, Result, median, percentile, proc_peak_rss_bytes
from benchmarks.plane import control_plane
from sqlharbor.api import JobPhase, contract

NAME = "rpo"
INSTANCE = "rpo-sim"
HOST = "bench-vm"


def _latest(item: dict[str, Any]) -> datetime | None:
    window = (item.get("status") or {}).get("recoveryWindow") or {}
    latest = window.get("latest")
    return datetime.fromisoformat(latest.replace("Z", "+00:00")) if latest else None


def run(config: Config) -> Result:
    from sqlharbor_devtools.demo import scenario
    from sqlharbor_devtools.demo.stack import Stack

    result = Result(NAME)
    count = config.pick(200, 10, 3)
    duration = config.pick(240.0, 120.0, 20.0)
    interval = config.pick(5.0, 5.0, 2.0)
    rate = max(5.0, count / 4)
    workdir = config.workdir / f"rpo-{uuid.uuid4().hex[:6]}"
    with control_plane(workdir / "plane") as plane:
        stack = Stack(plane, f"bench-rpo-{uuid.uuid4().hex[:6]}", workdir / "stack")
        stack.create_namespace()
        try:
            stack.install_vault_secrets()
            root = stack.workdir / "simulated"
            dbs = [f"db{i:04d}=FULL" for i in range(count)]
            stack.seed(root, HOST, dbs)
            stack.start_workload("rpo", root, HOST, dbs, rate=rate)
            docs: list[dict[str, Any]] = [
                scenario.vault(container=f"rpo-{uuid.uuid4().hex[:8]}"),
                scenario.policy(full="0 0 * * *", differential=None, log="30s"),
                scenario.instance(scenario.DemoInstance(INSTANCE, HOST, "MSSQLSERVER", {})),
            ]
            docs += [scenario.protected_database(INSTANCE, d.split("=")[0]) for d in dbs]
            stack.apply(docs)
            operator = stack.start_operator()
            instances = [
                {"name": INSTANCE, "engine": "simulated", "simulated": {"rootDir": str(root)}}
            ]
            kubeconfig = stack.enroll_agent("rpo-vm", [INSTANCE])
            agent = stack.start_agent(
                "rpo-vm", stack.write_agent_config("rpo-vm", instances, kubeconfig)
            )
            began = time.monotonic()

            def all_restorable() -> bool:
                items, _ = stack.client.list_raw("ProtectedDatabase", stack.namespace)
                return len(items) == count and all(_latest(i) for i in items)

            stack.wait_for(
                "every database to have a restorable point",
                all_restorable,
                timeout=config.pick(900, 300, 180),
                interval=2,
            )
            first_protected = time.monotonic() - began
            samples: list[float] = []
            per_round: list[float] = []
            peaks = {"operator": 0, "agent": 0}
            end = time.monotonic() + duration
            while time.monotonic() < end:
                items, _ = stack.client.list_raw("ProtectedDatabase", stack.namespace)
                now = datetime.now(UTC)
                values = [
                    (now - latest).total_seconds()
                    for latest in (_latest(i) for i in items)
                    if latest is not None
                ]
                samples += values
                per_round.append(max(values))
                for name, proc in (("operator", operator), ("agent", agent)):
                    peaks[name] = max(peaks[name], proc_peak_rss_bytes(proc.popen.pid))
                time.sleep(interval)
            jobs, _ = stack.client.list_raw("BackupJob", stack.namespace)
            phases: dict[str, int] = {}
            for job in jobs:
                phase = contract.phase_of(job) or JobPhase.PENDING
                phases[phase] = phases.get(phase, 0) + 1
        finally:
            stack.stop()
            stack.kubectl("delete", "namespace", stack.namespace, "--wait=false", check=False)
    p99 = percentile(samples, 99)
    result.details.update(
        databases=count,
        sample_seconds=duration,
        samples=len(samples),
        first_protected_seconds=first_protected,
        jobs=phases,
        worst_per_round=per_round,
        peak_rss=peaks,
    )
    result.add(
        f"RPO p99, {count} databases, 30 s logs, one agent",
        p99,
        "s",
        target="<= 60 s",
        met=p99 <= 60,
        note=f"median {median(samples):.0f} s, max {max(samples):.0f} s over {len(samples)} "
        f"samples / {duration:.0f} s; all protected after {first_protected:.0f} s; "
        f"jobs kept after GC {phases}; "
        f"peak RSS operator {peaks['operator'] / 1e6:.0f} MB, agent {peaks['agent'] / 1e6:.0f} MB",
    )
    return result
