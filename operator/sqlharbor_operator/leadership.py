"""Leader election on a ``coordination.k8s.io`` Lease, with fencing.

Every replica watches and keeps its state warm; only the holder of the Lease runs the
controller's tick (``tick.Controller``), and every write it makes — API writes through
``FencedApi``, vault deletes in a retention pass — first asks ``Leadership.holds()``.

The rules are client-go's (``tools/leaderelection``), decided on this process's monotonic
clock, never on the timestamps in the Lease (clocks of two machines disagree):

- the leader renews every ``renew_seconds``; it *holds* the lease only while its last
  successful renewal was *sent* less than ``deadline`` (two thirds of the lease duration)
  ago, so a leader that cannot renew — paused, partitioned, API server down — stops
  writing at least a third of a lease duration before anyone else may take over;
- a candidate takes over only when the Lease record has not changed for a whole
  ``leaseDurationSeconds`` as *it* observed it, or when the holder released it (SIGTERM:
  ``release``) — every takeover is a replace conditioned on the ``resourceVersion`` it
  read, so two candidates never both win.

What is left: a write that passed ``holds()`` and then sat in a paused process for longer
than the margin reaches the API server late.  The margin (a third of the lease, 3.3 s by
default) bounds that window the same way client-go's does; deterministic writes (statuses
with a ``resourceVersion``) fail with a conflict if the new leader wrote in between.

Written here rather than using ``kubernetes_asyncio.leaderelection``: that elector decides on
wall-clock time, has no fencing question to ask between renewals, and does not release the
Lease on shutdown (client-go's ``ReleaseOnCancel``), which the ≤ 3 s SIGTERM hand-over
needs.  Started by ``handlers``; ``main`` builds its ``ElectionSettings``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlharbor.errors import SqlHarborError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ElectionSettings:
    namespace: str
    identity: str
    name: str = "sqlharbor-operator"
    lease_seconds: float = 10.0
    #: How often the leader renews (and a candidate looks at the Lease).
    renew_seconds: float = 2.0

    @property
    def deadline(self) -> float:
        """A renewal sent longer ago than this no longer lets the leader write."""
        return self.lease_seconds * 2 / 3


class LeaseApi(Protocol):
    """``sqlharbor.kube.aio.AsyncKubeClient``'s Lease calls (fakes in tests)."""

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def write_lease(
        self, namespace: str, name: str, spec: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]: ...


def _micro_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Leadership:
    """One replica's view of the election.  ``run`` loops until cancelled; ``holds``
    answers the fencing question; ``on_change(leading)`` is called on every transition."""

    def __init__(
        self,
        api: LeaseApi,
        settings: ElectionSettings,
        on_change: Callable[[bool], None] = lambda _: None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api, self.settings, self._on_change = api, settings, on_change
        self._monotonic, self._wall = monotonic, wall
        self._renewed_at: float | None = None  # when our last successful write was sent
        self._observed: tuple[Any, ...] | None = None  # the other holder's record, as seen
        self._observed_at = 0.0
        self._leading = False
        self.holder: str | None = None  # as last read: for logs and status

    def holds(self) -> bool:
        renewed = self._renewed_at
        return renewed is not None and self._monotonic() - renewed < self.settings.deadline

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except SqlHarborError as exc:  # the API server unreachable, throttling…
                log.warning("leader election: %s", exc)
            self._notice()
            delay = self.settings.renew_seconds if self.holds() else self.settings.renew_seconds / 2
            await asyncio.sleep(delay)

    async def step(self) -> None:
        """One look at the Lease: create it, renew it, wait, or take it over."""
        s = self.settings
        sent = self._monotonic()
        lease = await self._api.read_lease(s.namespace, s.name)
        if lease is None:
            await self._write(self._acquired(transitions=0), None, sent)
            return
        spec: dict[str, Any] = lease.get("spec") or {}
        version = str(lease["metadata"]["resourceVersion"])
        holder = spec.get("holderIdentity") or None
        self.holder = holder
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == s.identity:
            renewed = {**spec, "renewTime": _micro_time(self._wall())}
            renewed["leaseDurationSeconds"] = int(s.lease_seconds)
            await self._write(renewed, version, sent)
            return
        self._renewed_at = None  # someone else's (or free): we do not hold it
        record = (holder, spec.get("renewTime"), spec.get("acquireTime"), version)
        if record != self._observed:
            self._observed, self._observed_at = record, self._monotonic()
        duration = float(spec.get("leaseDurationSeconds") or s.lease_seconds)
        if holder is not None and self._monotonic() - self._observed_at < duration:
            return
        log.info("leader election: taking over the lease from %s", holder or "nobody")
        await self._write(self._acquired(transitions=transitions + 1), version, sent)

    async def release(self) -> None:
        """Give the lease up at once (graceful shutdown): stop writing first, then tell the
        others, who take over on their next look instead of after a lease duration."""
        if not self.holds():
            return
        self._renewed_at = None
        self._notice()
        s = self.settings
        try:
            lease = await self._api.read_lease(s.namespace, s.name)
            spec: dict[str, Any] = (lease or {}).get("spec") or {}
            if lease is None or spec.get("holderIdentity") != s.identity:
                return
            released = {**spec, "holderIdentity": None, "leaseDurationSeconds": 1}
            released["renewTime"] = _micro_time(self._wall())
            await self._api.write_lease(
                s.namespace, s.name, released, str(lease["metadata"]["resourceVersion"])
            )
            log.info("leader election: released the lease")
        except SqlHarborError as exc:
            log.warning("leader election: could not release the lease: %s", exc)

    def _acquired(self, *, transitions: int) -> dict[str, Any]:
        """The Lease spec of this replica taking it (creating or taking over)."""
        now = _micro_time(self._wall())
        return {
            "holderIdentity": self.settings.identity,
            "leaseDurationSeconds": int(self.settings.lease_seconds),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def _write(self, spec: dict[str, Any], version: str | None, sent: float) -> None:
        s = self.settings
        try:
            await self._api.write_lease(s.namespace, s.name, spec, version)
        except SqlHarborError as exc:
            log.debug("leader election: write lost: %s", exc)  # a Conflict: another won
            return
        self._renewed_at = sent
        self.holder = s.identity

    def _notice(self) -> None:
        leading = self.holds()
        if leading != self._leading:
            self._leading = leading
            if leading:
                log.info("leader election: %s leads", self.settings.identity)
            else:
                log.warning("leader election: %s no longer leads", self.settings.identity)
            self._on_change(leading)
