"""The operator's loop: every tick (and whenever a watch event wakes it) it fails jobs whose
agent died, folds finished jobs into ProtectedDatabase status, dispatches due backups,
refreshes health, validates vaults and policies, and garbage-collects old jobs.

Started by ``handlers`` at operator start-up.  All API writes go through ``KubeClient`` on a
worker thread; status is written only when it changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlharbor.api import (
    BackupJob,
    Condition,
    ConditionStatus,
    DatabaseResult,
    ErrorInfo,
    JobPhase,
    JobReason,
    ProtectedDatabase,
    ProtectedDatabaseStatus,
    contract,
)
from sqlharbor.backupset import BackupType, RecoveryModel
from sqlharbor.errors import ErrorCode, SqlHarborError
from sqlharbor.kube import KubeClient
from sqlharbor_operator import accounting, autoprotect, metrics
from sqlharbor_operator.dispatch import DueBackup, batches, job_body
from sqlharbor_operator.health import assess
from sqlharbor_operator.pruning import RetentionPass
from sqlharbor_operator.resolve import Problem, Resolved, resolve
from sqlharbor_operator.restores import RestorePlanner, vault_catalog_opener
from sqlharbor_operator.scheduling import due, log_alignment, parse_duration
from sqlharbor_operator.state import Key, State
from sqlharbor_operator.validation import Validator

log = logging.getLogger(__name__)

HISTORY_LIMIT = 3  # finished jobs kept per instance, type and outcome (like CronJob's)


#: Status writes in flight at once (the default thread pool runs them).
WRITE_CONCURRENCY = 8
#: Status writes per tick; the rest wait for the next tick (still computed, so metrics stay
#: live), which keeps a burst (10,000 first fulls, a policy edit) from holding up the
#: dispatch of due backups for minutes.
WRITES_PER_TICK = 200
#: What a retention pass moves (point count, earliest restorable time) earns no write of
#: its own: it rides along with the next write (a backup's fold, one log interval away at
#: most) or goes alone once it has waited this long.  A pass every 10 minutes that prunes
#: a point or two of every database would otherwise add up to 6 writes/db/h.
DEFER_AT_MOST = timedelta(hours=1)


class Written(NamedTuple):
    """What the server holds of a status, as digests (see ``_digests``)."""

    urgent: bytes
    full: bytes
    reason: str
    at: datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


class Controller:
    def __init__(
        self,
        client: KubeClient,
        state: State,
        *,
        tick_seconds: float = 1.0,
        retention_interval: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._client = client
        self._state = state
        self._tick = tick_seconds
        self._clock = clock
        self._retry_after: dict[Key, datetime] = {}
        self._written: dict[Key, Written] = {}
        self._validator = Validator(client)
        opener = vault_catalog_opener(client)
        self._restores = RestorePlanner(client, opener)
        self._retention = RetentionPass(opener, retention_interval, self._after_pruning)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except SqlHarborError as exc:
                log.warning("tick: %s", exc)
            except Exception:
                log.exception("tick failed")
            self._state.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._state.wakeup.wait(), timeout=self._tick)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def tick(self) -> None:
        now = self._clock()
        await self._validator.vaults(self._state, now)
        await self._validator.policies(self._state)
        await self._fail_jobs_of_dead_agents(now)
        await self._account_finished_jobs()
        await self._dispatch(now)
        await self._auto_protect()
        await self._refresh_status(now)
        await self._collect_garbage()
        await self._restores.tick(self._state, now)
        await self._retention.tick(self._state, now)

    # -- liveness -----------------------------------------------------------------------
    async def _fail_jobs_of_dead_agents(self, now: datetime) -> None:
        for (ns, name), job in list(self._state.jobs.items()):
            status = job.status
            if status is None or status.phase is not JobPhase.RUNNING or not status.agent_session:
                continue
            leases = self._state.leases
            if not contract.session_lost(leases, ns, status.agent_session, status.start_time, now):
                continue
            body = contract.agent_lost("BackupJob", status.agent_session, now)
            try:
                await self._call(
                    self._client.patch_status,
                    "BackupJob",
                    ns,
                    name,
                    body,
                    resource_version=job.metadata.resource_version,
                )
            except SqlHarborError as exc:
                log.info("could not fail job %s: %s", name, exc)

    # -- accounting ---------------------------------------------------------------------
    async def _account_finished_jobs(self) -> None:
        for (ns, name), job in list(self._state.jobs.items()):
            status = job.status
            uid = job.metadata.uid or name
            if status is None or status.phase is None or not status.phase.finished:
                continue
            if uid in self._state.accounted:
                continue
            await self._account(ns, name, job)
            self._state.accounted.add(uid)

    async def _account(self, ns: str, name: str, job: BackupJob) -> None:
        assert job.status is not None
        completed = job.status.completion_time or self._clock()
        results = {r.name: r for r in job.status.databases}
        for entry in job.spec.databases:
            if not entry.protected_database:
                continue
            key = (ns, entry.protected_database)
            if self._state.busy.get(key) == name:
                del self._state.busy[key]
            pd = self._state.databases.get(key)
            if pd is None:
                continue
            current = pd.status or ProtectedDatabaseStatus()
            result = results.get(entry.name)
            if result is not None and result.phase is JobPhase.SUCCEEDED:
                new = accounting.apply_success(current, result, name, job.spec.copy_only)
                metrics.observe_result(ns, job.spec.type.value, succeeded=True)
                self._retry_after.pop(key, None)
            else:
                if result is None or result.error is None:
                    code = ErrorCode.JOB_FAILED
                    err = job.status.error or ErrorInfo(
                        code=code,
                        message=job.status.message or "failed",
                        remediation=code.remediation,
                    )
                    result = DatabaseResult(name=entry.name, phase=JobPhase.FAILED, error=err)
                new = accounting.apply_failure(current, result, completed)
                metrics.observe_result(ns, job.spec.type.value, succeeded=False)
                failures = new.consecutive_failures or 1
                self._retry_after[key] = self._clock() + timedelta(
                    seconds=min(300, 5 * 2 ** min(failures, 6))
                )
                if new is not current and result.error is not None:
                    await self._event(
                        pd,
                        "BackupFailed",
                        f"{job.spec.type.value} backup failed: "
                        f"{result.error.code}: {result.error.message}",
                        "Warning",
                    )
            self._set_status(key, new)

    def _set_status(self, key: Key, status: ProtectedDatabaseStatus) -> None:
        """A status change not yet on the server (written by ``_refresh_status``)."""
        pd = self._state.databases.get(key)
        if pd is not None:
            self._state.databases[key] = pd.model_copy(update={"status": status})
            self._state.unwritten[key] = status

    # -- scheduling ---------------------------------------------------------------------
    async def _dispatch(self, now: datetime) -> None:
        due_now: list[DueBackup] = []
        for key, pd in self._state.databases.items():
            item = self._due_backup(key, pd, now)
            if item is not None:
                due_now.append(item)
        due_now += self._aligned_logs(due_now, now)
        for batch in batches(due_now):
            body = job_body(batch)
            try:
                created = await self._call(
                    self._client.create, "BackupJob", batch[0].namespace, body
                )
            except SqlHarborError as exc:
                log.warning("cannot create backup job: %s", exc)
                continue
            job_name = created["metadata"]["name"]
            for item in batch:
                self._state.busy[(item.namespace, item.protected_database)] = job_name
            self._state.add_created("BackupJob", created)
            if batch[0].reason is JobReason.AUTO_HEAL:
                for item in batch:
                    pd = self._state.databases[(item.namespace, item.protected_database)]
                    await self._event(
                        pd, "AutoHeal", f"next backup is a full: {item.reason_message}", "Normal"
                    )

    def _aligned_logs(self, due_now: list[DueBackup], now: datetime) -> list[DueBackup]:
        """Log backups taken early, in the same job as a log backup due now on the same
        instance (see ``scheduling.log_alignment``): databases of an instance fall into
        step, so log backups of N databases cost one job per interval, not N."""
        instances = {(i.namespace, i.instance) for i in due_now if i.backup_type is BackupType.LOG}
        if not instances:
            return []
        taken = {(i.namespace, i.protected_database) for i in due_now}
        early: list[DueBackup] = []
        for key, pd in self._state.databases.items():
            if key in taken or (key[0], pd.spec.instance_ref.name) not in instances:
                continue
            item = self._due_backup(key, pd, now, early=True)
            if item is not None:
                early.append(item)
        return early

    def _due_backup(
        self, key: Key, pd: ProtectedDatabase, now: datetime, *, early: bool = False
    ) -> DueBackup | None:
        """The backup ``pd`` needs now; with ``early``, only a scheduled log backup that
        falls within the policy's alignment window."""
        if pd.spec.suspend or key in self._state.busy:
            return None
        if self._retry_after.get(key, now) > now:
            return None
        resolved = resolve(self._state, pd, now)
        if isinstance(resolved, Problem):
            return None
        spec = resolved.policy.spec
        horizon = now + log_alignment(spec) if early else now
        requested = due(spec, pd.status, resolved.database.recovery_model, horizon)
        if requested.backup_type is None:
            return None
        if early and requested.backup_type is not BackupType.LOG:
            return None
        backup_type, reason, message = decide(requested.backup_type, pd.status, resolved, now)
        if backup_type is None or (early and backup_type is not BackupType.LOG):
            return None
        chain = pd.status.chain if pd.status else None
        compression = resolved.policy.spec.compression
        return DueBackup(
            namespace=key[0],
            protected_database=key[1],
            database_name=pd.spec.database_name,
            instance=resolved.instance.metadata.name,
            vault=resolved.vault.metadata.name,
            backup_type=backup_type,
            reason=reason,
            reason_message=message,
            expected_last_lsn=chain.last_lsn if chain and backup_type is BackupType.LOG else None,
            expected_base_checkpoint_lsn=(
                chain.base_checkpoint_lsn
                if chain and backup_type is BackupType.DIFFERENTIAL
                else None
            ),
            compression_level=compression.level if compression.algorithm.value == "zstd" else 0,
        )

    # -- status -------------------------------------------------------------------------
    async def _refresh_status(self, now: datetime) -> None:
        writes: list[Coroutine[Any, Any, None]] = []
        for key, pd in list(self._state.databases.items()):
            status = pd.status or ProtectedDatabaseStatus()
            resolved = resolve(self._state, pd, now)
            problem = (resolved.reason, resolved.message) if isinstance(resolved, Problem) else None
            model: RecoveryModel | None = None
            interval = None
            if isinstance(resolved, Resolved):
                model = resolved.database.recovery_model
                log_spec = resolved.policy.spec.schedules.log
                if log_spec is not None and model is not RecoveryModel.SIMPLE:
                    interval = parse_duration(log_spec.interval)
                status = status.model_copy(
                    update={
                        "recovery_model": model,
                        "database_guid": resolved.database.database_guid,
                    }
                )
            verdict = assess(
                status,
                now=now,
                suspended=pd.spec.suspend,
                problem=problem,
                log_interval=interval,
                recovery_model=model,
            )
            status = accounting.refresh_rpo(status, now)
            status = status.model_copy(
                update={
                    "health": verdict.health,
                    "message": verdict.message,
                    "observed_generation": pd.metadata.generation,
                    "conditions": [
                        Condition(
                            type="Ready",
                            status=ConditionStatus.TRUE if verdict.ready else ConditionStatus.FALSE,
                            reason=verdict.reason,
                            message=verdict.message,
                            observed_generation=pd.metadata.generation,
                        )
                    ],
                }
            )
            metrics.observe_status(key[0], key[1], status)
            if len(writes) < WRITES_PER_TICK:
                write = self._status_write(key, pd, status, verdict.reason, now)
                if write is not None:
                    writes.append(write)
        await bounded(writes, WRITE_CONCURRENCY)

    def _status_write(
        self,
        key: Key,
        pd: ProtectedDatabase,
        status: ProtectedDatabaseStatus,
        reason: str,
        now: datetime,
    ) -> Coroutine[Any, Any, None] | None:
        """The write of ``status`` (and its Event), or None when the server has it or
        when only deferred fields changed (``DEFER_AT_MOST``)."""
        wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        urgent, full = _digests(wire)
        previous = self._written.get(key)
        if previous is None and pd.status is not None and key not in self._state.unwritten:
            # first look since the operator started: what the server holds counts as
            # written, so a restart does not rewrite every status
            held = pd.status.model_dump(mode="json", by_alias=True, exclude_none=True)
            ready = pd.status.conditions[0].reason if pd.status.conditions else ""
            previous = self._written[key] = Written(*_digests(held), ready or "", now)
        if previous is not None and previous.full == full:
            if self._state.unwritten.get(key) is pd.status:
                del self._state.unwritten[key]  # the server holds it already
            return None
        if previous is not None and previous.urgent == urgent and now - previous.at < DEFER_AT_MOST:
            return None  # kept in ``unwritten``: it goes with the next write
        return self._write_status(key, pd, status, reason, wire, Written(urgent, full, reason, now))

    async def _write_status(
        self,
        key: Key,
        pd: ProtectedDatabase,
        status: ProtectedDatabaseStatus,
        reason: str,
        wire: dict[str, Any],
        written: Written,
    ) -> None:
        previous = self._written.get(key)
        if previous is not None and previous.reason != reason:
            await self._event(
                pd,
                reason,
                status.message or reason,
                "Normal" if status.health and status.health.value == "Healthy" else "Warning",
            )
        # conditions carry their transition time
        old_ready = pd.status.conditions[0] if pd.status and pd.status.conditions else None
        for cond in wire.get("conditions", []):
            same = old_ready is not None and old_ready.status.value == cond["status"]
            cond["lastTransitionTime"] = (
                old_ready.last_transition_time.isoformat()
                if same and old_ready is not None and old_ready.last_transition_time
                else self._clock().isoformat()
            )
        # A merge patch keeps whatever it does not mention: send explicit nulls so that a
        # cleared field (chain.fullRequired after a healing full, lastError after a
        # success) is removed on the server too, at every depth.
        body = _with_nulls(status.model_dump(mode="json", by_alias=True), wire)
        try:
            await self._call(self._client.patch_status, "ProtectedDatabase", key[0], key[1], body)
        except SqlHarborError as exc:
            log.warning("status of %s/%s: %s", key[0], key[1], exc)
            return
        self._written[key] = written
        current = self._state.databases.get(key)
        if current is not None and current.status is pd.status:  # nothing new meanwhile
            self._state.databases[key] = current.model_copy(update={"status": status})
            self._state.unwritten.pop(key, None)

    async def _event(self, pd: ProtectedDatabase, reason: str, note: str, type_: str) -> None:
        regarding = {
            "apiVersion": pd.api_version,
            "kind": "ProtectedDatabase",
            "name": pd.metadata.name,
            "namespace": pd.metadata.namespace,
            "uid": pd.metadata.uid,
        }
        await self._call(
            self._client.post_event,
            namespace=pd.metadata.namespace or "",
            regarding=regarding,
            reason=reason,
            note=note,
            type_=type_,
            reporter="operator",
        )

    def _after_pruning(self, key: Key, earliest: datetime | None, kept: int, deleted: int) -> None:
        pd = self._state.databases.get(key)
        if pd is None or pd.status is None:
            return
        status = pd.status.model_copy(deep=True)
        status.recovery_points = kept
        window = status.recovery_window
        if (
            window is not None
            and earliest is not None
            and (window.earliest is None or earliest > window.earliest)
        ):
            window.earliest = earliest
            window.earliest_text = accounting.rfc3339(earliest)
        self._set_status(key, status)
        if deleted:
            log.info("retention deleted %d recovery point(s) of %s/%s", deleted, *key)

    # -- auto-protection ------------------------------------------------------------------
    async def _auto_protect(self) -> None:
        for (ns, _), instance in list(self._state.instances.items()):
            existing = [pd for (pns, _), pd in self._state.databases.items() if pns == ns]
            for body in autoprotect.to_create(instance, existing):
                try:
                    created = await self._call(self._client.create, "ProtectedDatabase", ns, body)
                except SqlHarborError as exc:
                    log.info("auto-protection of %s: %s", body["spec"]["databaseName"], exc)
                    continue
                pd = self._state.add_created("ProtectedDatabase", created)
                if pd is not None:
                    await self._event(
                        pd,
                        "AutoProtected",
                        f"database {body['spec']['databaseName']!r} discovered on "
                        f"{instance.metadata.name} is now protected",
                        "Normal",
                    )

    # -- garbage collection -------------------------------------------------------------
    async def _collect_garbage(self) -> None:
        groups: dict[tuple[str, str, str, str], list[tuple[datetime, str, str]]] = defaultdict(list)
        for (ns, name), job in self._state.jobs.items():
            st = job.status
            if st is None or st.phase is None or not st.phase.finished:
                continue
            if (job.metadata.uid or name) not in self._state.accounted:
                continue
            when = st.completion_time or job.metadata.creation_timestamp or self._clock()
            groups[(ns, job.spec.instance_ref.name, job.spec.type.value, st.phase.value)].append(
                (when, ns, name)
            )
        for entries in groups.values():
            entries.sort(reverse=True)
            for _, ns, name in entries[HISTORY_LIMIT:]:
                await self._call(self._client.delete, "BackupJob", ns, name)
                self._state.jobs.pop((ns, name), None)


def decide(
    requested: BackupType, status: ProtectedDatabaseStatus | None, resolved: Resolved, now: datetime
) -> tuple[BackupType | None, JobReason, str | None]:
    """Auto-heal: turn the scheduled type into what the chain needs (see sqlharbor.autoheal)."""
    from sqlharbor_operator.heal import heal

    return heal(requested, status, resolved, now)


def _digests(wire: dict[str, Any]) -> tuple[bytes, bytes]:
    """A status's identity for the change check, without and with the fields a retention
    pass moves (``DEFER_AT_MOST``).  Both leave out the RPO (it changes every second; the
    metric carries it live) and the conditions' transition times (stamped at write time).
    16 bytes each per database instead of the whole status."""
    kept = {k: v for k, v in wire.items() if k not in ("rpo", "rpoSeconds", "conditions")}
    kept["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in wire.get("conditions", [])
    ]
    full = _hash(kept)
    kept.pop("recoveryPoints", None)
    window = kept.get("recoveryWindow")
    if isinstance(window, dict):
        kept["recoveryWindow"] = {
            k: v for k, v in window.items() if k not in ("earliest", "earliestText")
        }
    return _hash(kept), full


def _hash(kept: dict[str, Any]) -> bytes:
    return hashlib.blake2b(json.dumps(kept, sort_keys=True).encode(), digest_size=16).digest()


async def bounded(calls: Iterable[Awaitable[None]], limit: int) -> None:
    """Await ``calls`` with at most ``limit`` in flight (a burst of 10,000 status writes
    one after another is 10,000 round trips end to end)."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Awaitable[None]) -> None:
        async with gate:
            await call

    await asyncio.gather(*(one(call) for call in calls))


def _with_nulls(full: Any, wire: Any) -> Any:
    """``wire`` (what to write) plus an explicit null for every field ``full`` has as None."""
    if isinstance(full, dict) and isinstance(wire, dict):
        return {k: (_with_nulls(v, wire[k]) if k in wire else None) for k, v in full.items()}
    return wire
