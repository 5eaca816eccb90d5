"""The operator's loop: load the state once, then every tick (and whenever a watch event
wakes it) validate vaults and policies, fail jobs whose agent died, grant claimed jobs their
storage rights and keys, fold finished jobs into status, index their recovery points in the
vault's catalog, dispatch due backups, auto-protect, write changed statuses, collect old jobs, plan
restores, assign jobs to their instances' agents, and start a retention pass and a key
census when one is due.

Started by ``handlers`` at operator start-up with the ``Runtime`` it built.  Each concern is
a module of its own; this one only orders them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlharbor.api import KINDS
from sqlharbor.errors import SqlHarborError
from sqlharbor_operator.accounting import Accountant
from sqlharbor_operator.assignment import Assigner
from sqlharbor_operator.autoprotect import AutoProtector
from sqlharbor_operator.dispatch import Dispatcher
from sqlharbor_operator.garbage import GarbageCollector
from sqlharbor_operator.grants import Granter
from sqlharbor_operator.indexing import Indexer
from sqlharbor_operator.key_census import KeyCensus
from sqlharbor_operator.liveness import Liveness
from sqlharbor_operator.pruning import RetentionPass, fold_pruning
from sqlharbor_operator.restores import RestoreDispatcher
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.status_writes import StatusWriter
from sqlharbor_operator.validation import Validator
from sqlharbor_operator.vaults import VaultOpener

log = logging.getLogger(__name__)

#: Lists one kind in one namespace (None: all namespaces) a page at a time:
#: ``AsyncKubeClient.list_pages``.
ListPages = Callable[[str, str | None], AsyncIterator[list[dict[str, Any]]]]


class Controller:
    def __init__(self, rt: Runtime, vaults: VaultOpener) -> None:
        self.rt = rt
        self.validator = Validator(rt.api, vaults.probe_key_vault, rt.offload)
        self.granter = Granter(rt, vaults)
        self.indexer = Indexer(rt, vaults)
        self.census = KeyCensus(rt, vaults, rt.settings.retention_interval)
        self.liveness = Liveness(rt)
        self.accountant = Accountant(rt)
        self.dispatcher = Dispatcher(rt)
        self.protector = AutoProtector(rt)
        self.status = StatusWriter(rt)
        self.garbage = GarbageCollector(rt)
        self.restores = RestoreDispatcher(rt, vaults.catalog, vaults.keyring)
        self.assigner = Assigner(rt)
        self.retention = RetentionPass(
            vaults.catalog,
            rt.settings.retention_interval,
            functools.partial(fold_pruning, rt.state),
            rt.settings.retention_concurrency,
            rt.leads,
            vaults.keyring,
            rt.offload,
        )

    async def load(self, list_pages: ListPages) -> None:
        """List every kind once (kopf's watches then keep the state current): the tick and
        the first retention pass see everything from the start."""
        state = self.rt.state
        namespaces: tuple[str | None, ...] = self.rt.settings.namespaces or (None,)
        for kind in KINDS:
            for namespace in namespaces:
                async for page in list_pages(kind.kind, namespace):
                    for body in page:
                        key = (body["metadata"]["namespace"], body["metadata"]["name"])
                        if key in state.table(kind.kind):  # the watch may be newer
                            continue
                        if (kind.kind, key) not in state.removed_while_loading:
                            state.upsert(kind.kind, body)
        state.removed_while_loading.clear()
        state.loaded = True

    async def _load(self, list_pages: ListPages) -> None:
        state = self.rt.state
        while not state.loaded:
            try:
                await self.load(list_pages)
            except SqlHarborError as exc:
                log.warning("loading the state: %s (retrying)", exc)
                await asyncio.sleep(self.rt.settings.tick_seconds)
        counts = ", ".join(f"{len(state.table(k.kind))} {k.plural}" for k in KINDS)
        log.info("state loaded: %s", counts)

    async def run(self, list_pages: ListPages) -> None:
        """Load the state (standbys too: their state stays warm), then tick while this
        replica leads.  A replica that led, lost the lease and leads again reloads first:
        what it computed then (unwritten statuses, accounted jobs) may be stale now."""
        state = self.rt.state
        await self._load(list_pages)
        led, stale = False, False
        while True:
            if self.rt.leads():
                if not led:
                    if stale:
                        log.info("leading again: reloading the state")
                        state.forget()
                        await self._load(list_pages)
                    state.mark_busy()
                    led = True
                try:
                    await self.tick()
                except SqlHarborError as exc:
                    log.warning("tick: %s", exc)
                except Exception:
                    log.exception("tick failed")
            elif led:
                led, stale = False, True
            state.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wakeup.wait(), timeout=self.rt.settings.tick_seconds)

    async def tick(self) -> None:
        """One round of every concern, in order; it stops early when this replica stops
        leading (each write is fenced anyway: ``runtime.FencedApi``)."""
        now = self.rt.clock()
        state = self.rt.state
        rounds: list[Callable[[], Awaitable[object]]] = [
            lambda: self.validator.vaults(state, now),
            lambda: self.validator.policies(state),
            lambda: self.liveness.tick(now),
            lambda: self.granter.tick(now),
            self.indexer.tick,  # before accounting, which drops a finished job's results
            self.accountant.tick,
            lambda: self.dispatcher.tick(now),
            self.protector.tick,
            lambda: self.status.tick(now),
            self.garbage.tick,
            lambda: self.restores.tick(now),
            self.assigner.tick,
            lambda: self.retention.tick(state, now),
            lambda: self.census.tick(now),
        ]
        for concern in rounds:
            if not self.rt.leads():
                return
            await concern()
