"""The operator's loop: load the state once, then every tick (and whenever a watch event
wakes it) validate vaults and policies, fail jobs whose agent died, fold finished jobs into
status, dispatch due backups, auto-protect, write changed statuses, collect old jobs, plan
restores, and start a retention pass when one is due.

Started by ``handlers`` at operator start-up with the ``Runtime`` it built.  Each concern is
a module of its own; this one only orders them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlharbor.api import KINDS, BackupVault
from sqlharbor.errors import SqlHarborError
from sqlharbor.vault import Catalog
from sqlharbor_operator.accounting import Accountant
from sqlharbor_operator.autoprotect import AutoProtector
from sqlharbor_operator.dispatch import Dispatcher
from sqlharbor_operator.garbage import GarbageCollector
from sqlharbor_operator.liveness import Liveness
from sqlharbor_operator.pruning import RetentionPass, fold_pruning
from sqlharbor_operator.restores import RestoreDispatcher
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.status_writes import StatusWriter
from sqlharbor_operator.validation import Validator

log = logging.getLogger(__name__)

#: Lists one kind in one namespace (None: all namespaces) a page at a time:
#: ``AsyncKubeClient.list_pages``.
ListPages = Callable[[str, str | None], AsyncIterator[list[dict[str, Any]]]]


class Controller:
    def __init__(self, rt: Runtime, open_catalog: Callable[[BackupVault], Catalog]) -> None:
        self.rt = rt
        self.validator = Validator(rt.api)
        self.liveness = Liveness(rt)
        self.accountant = Accountant(rt)
        self.dispatcher = Dispatcher(rt)
        self.protector = AutoProtector(rt)
        self.status = StatusWriter(rt)
        self.garbage = GarbageCollector(rt)
        self.restores = RestoreDispatcher(rt, open_catalog)
        self.retention = RetentionPass(
            open_catalog,
            rt.settings.retention_interval,
            functools.partial(fold_pruning, rt.state),
            rt.settings.retention_concurrency,
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
                        if key not in state.table(kind.kind):  # the watch may be newer
                            state.upsert(kind.kind, body)
        state.loaded = True
        log.info("loaded the state: %d objects", sum(len(state.table(k.kind)) for k in KINDS))

    async def run(self, list_pages: ListPages) -> None:
        state = self.rt.state
        while not state.loaded:
            try:
                await self.load(list_pages)
            except SqlHarborError as exc:
                log.warning("loading the state: %s (retrying)", exc)
                await asyncio.sleep(self.rt.settings.tick_seconds)
        while True:
            try:
                await self.tick()
            except SqlHarborError as exc:
                log.warning("tick: %s", exc)
            except Exception:
                log.exception("tick failed")
            state.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wakeup.wait(), timeout=self.rt.settings.tick_seconds)

    async def tick(self) -> None:
        now = self.rt.clock()
        state = self.rt.state
        await self.validator.vaults(state, now)
        await self.validator.policies(state)
        await self.liveness.tick(now)
        await self.accountant.tick()
        await self.dispatcher.tick(now)
        await self.protector.tick()
        await self.status.tick(now)
        await self.garbage.tick()
        await self.restores.tick(now)
        await self.retention.tick(state, now)
