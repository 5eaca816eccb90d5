"""Status writing: every tick each ProtectedDatabase's status is recomputed (health, Ready,
RPO, recovery model) and written only when it changed — API writes per database per hour
are a budget — at most ``writes_per_tick`` per tick, ``write_concurrency`` in flight.

What a retention pass moves (point count, earliest restorable time) rides along with the
next write or goes alone after ``defer_at_most``.  A restarted operator takes what the
server holds as written.  Called by the tick; the only writer of ProtectedDatabase status.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlharbor.api import (
    Condition,
    ConditionStatus,
    ProtectedDatabase,
    ProtectedDatabaseStatus,
)
from sqlharbor.domain.backupset import RecoveryModel
from sqlharbor.errors import SqlHarborError
from sqlharbor_operator import accounting, metrics
from sqlharbor_operator.health import assess
from sqlharbor_operator.logs import fields
from sqlharbor_operator.resolve import Problem, Resolved, resolve
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.scheduling import parse_duration
from sqlharbor_operator.state import Key

log = logging.getLogger(__name__)


class Written(NamedTuple):
    """What the server holds of a status, as digests (see ``digests``)."""

    urgent: bytes
    full: bytes
    reason: str
    at: datetime


class StatusWriter:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._written: dict[Key, Written] = {}

    async def tick(self, now: datetime) -> None:
        writes: list[Callable[[], Awaitable[None]]] = []
        limit = self._rt.settings.writes_per_tick
        for key, pd in list(self._rt.state.databases.items()):
            status, reason = self.compute(pd, now)
            metrics.observe_status(key[0], key[1], status)
            if len(writes) < limit:
                write = self._write_if_changed(key, pd, status, reason, now)
                if write is not None:
                    writes.append(write)
        metrics.retain(self._rt.state.databases.keys())
        await bounded(writes, self._rt.settings.write_concurrency)

    def compute(self, pd: ProtectedDatabase, now: datetime) -> tuple[ProtectedDatabaseStatus, str]:
        """The status ``pd`` should have now, and its Ready reason."""
        status = pd.status or ProtectedDatabaseStatus()
        resolved = resolve(self._rt.state, pd, now)
        problem = (resolved.reason, resolved.message) if isinstance(resolved, Problem) else None
        model: RecoveryModel | None = None
        interval = None
        if isinstance(resolved, Resolved):
            model = resolved.database.recovery_model
            log_spec = resolved.policy.spec.schedules.log
            if log_spec is not None and model is not RecoveryModel.SIMPLE:
                interval = parse_duration(log_spec.interval)
            status = status.model_copy(
                update={"recovery_model": model, "database_guid": resolved.database.database_guid}
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
        ready = Condition(
            type="Ready",
            status=ConditionStatus.TRUE if verdict.ready else ConditionStatus.FALSE,
            reason=verdict.reason,
            message=verdict.message,
            observed_generation=pd.metadata.generation,
        )
        update = {
            "health": verdict.health,
            "message": verdict.message,
            "observed_generation": pd.metadata.generation,
            "conditions": [ready],
        }
        return status.model_copy(update=update), verdict.reason

    def _write_if_changed(
        self,
        key: Key,
        pd: ProtectedDatabase,
        status: ProtectedDatabaseStatus,
        reason: str,
        now: datetime,
    ) -> Callable[[], Awaitable[None]] | None:
        """The write of ``status`` (and its Event), or None when the server has it or
        when only deferred fields changed (``defer_at_most``)."""
        state = self._rt.state
        wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        urgent, full = digests(wire)
        previous = self._written.get(key)
        if previous is None and pd.status is not None and key not in state.unwritten:
            # first look since the operator started: what the server holds counts as
            # written, so a restart does not rewrite every status
            held = pd.status.model_dump(mode="json", by_alias=True, exclude_none=True)
            ready = pd.status.conditions[0].reason if pd.status.conditions else ""
            previous = self._written[key] = Written(*digests(held), ready or "", now)
        if previous is not None and previous.full == full:
            if state.unwritten.get(key) is pd.status:
                del state.unwritten[key]  # the server holds it already
            return None
        deferred = now - previous.at < self._rt.settings.defer_at_most if previous else False
        if previous is not None and previous.urgent == urgent and deferred:
            return None  # kept in ``unwritten``: it goes with the next write
        written = Written(urgent, full, reason, now)
        return functools.partial(self._write, key, pd, status, reason, wire, written)

    async def _write(
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
            healthy = status.health is not None and status.health.value == "Healthy"
            note = status.message or reason
            await self._rt.event(pd, reason, note, "Normal" if healthy else "Warning")
        # conditions carry their transition time
        old_ready = pd.status.conditions[0] if pd.status and pd.status.conditions else None
        for cond in wire.get("conditions", []):
            same = old_ready is not None and old_ready.status.value == cond["status"]
            cond["lastTransitionTime"] = (
                old_ready.last_transition_time.isoformat()
                if same and old_ready is not None and old_ready.last_transition_time
                else self._rt.clock().isoformat()
            )
        # A merge patch keeps whatever it does not mention: send explicit nulls so that a
        # cleared field (chain.fullRequired after a healing full, lastError after a
        # success) is removed on the server too, at every depth.
        body = with_nulls(status.model_dump(mode="json", by_alias=True), wire)
        try:
            await self._rt.api.patch_status("ProtectedDatabase", key[0], key[1], body)
        except SqlHarborError as exc:
            log.warning(
                "status of %s/%s: %s", *key, exc, extra=fields(namespace=key[0], database=key[1])
            )
            return
        self._written[key] = written
        state = self._rt.state
        current = state.databases.get(key)
        if current is not None and current.status is pd.status:  # nothing new meanwhile
            state.databases[key] = current.model_copy(update={"status": status})
            state.unwritten.pop(key, None)


def digests(wire: dict[str, Any]) -> tuple[bytes, bytes]:
    """A status's identity for the change check, without and with the fields a retention
    pass moves (``defer_at_most``).  Both leave out the RPO (it changes every second; the
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


async def bounded(calls: Iterable[Callable[[], Awaitable[None]]], limit: int) -> None:
    """Run ``calls`` with at most ``limit`` in flight (a burst of 10,000 status writes
    one after another is 10,000 round trips end to end); a call not started when the tick
    is cancelled never starts."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(call) for call in calls))


def with_nulls(full: Any, wire: Any) -> Any:
    """``wire`` (what to write) plus an explicit null for every field ``full`` has as None."""
    if isinstance(full, dict) and isinstance(wire, dict):
        return {k: (with_nulls(v, wire[k]) if k in wire else None) for k, v in full.items()}
    return wire
