"""The retention pass: every ``interval`` the operator reads each protected database's
recovery points from the vault catalog, lets ``sqlharbor.retention.select`` decide what the
policy no longer keeps (chain-aware: nothing a retained point depends on), deletes those
(manifest first, so a point disappears atomically; no key needed), and moves the
database's earliest restorable time and point count in status.

Called by ``Controller.tick``; a failing vault is logged and retried next interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlharbor import planner, retention
from sqlharbor.api import BackupPolicy, BackupVault, ProtectedDatabase
from sqlharbor.errors import SqlHarborError
from sqlharbor.vault import Catalog
from sqlharbor_operator.state import Key, State

log = logging.getLogger(__name__)

#: (protected database, earliest restorable time or None, recovery points kept, deleted)
Report = Callable[[Key, datetime | None, int, int], None]


def rules_of(policy: BackupPolicy) -> retention.Rules:
    r = policy.spec.retention
    return retention.Rules(
        log_days=r.log_days,
        daily=r.daily.count if r.daily else None,
        weekly=r.weekly.count if r.weekly else None,
        monthly=r.monthly.count if r.monthly else None,
        yearly=r.yearly.count if r.yearly else None,
        zone=policy.spec.time_zone,
    )


class RetentionPass:
    def __init__(
        self, open_catalog: Callable[[BackupVault], Catalog], interval: timedelta, report: Report
    ) -> None:
        self._open = open_catalog
        self._interval = interval
        self._report = report
        self._next: datetime | None = None
        self._running: asyncio.Task[None] | None = None

    async def tick(self, state: State, now: datetime) -> asyncio.Task[None] | None:
        """Start a pass in the background when one is due (and none is running); the
        controller's tick does not wait for it: a pass over 10,000 databases' catalogs
        takes minutes, and due backups must not wait behind it."""
        if self._running is not None and not self._running.done():
            return None
        if self._next is not None and now < self._next:
            return None
        self._next = now + self._interval
        self._running = asyncio.create_task(self.run(state, now), name="sqlharbor-retention")
        return self._running

    async def run(self, state: State, now: datetime) -> None:
        """One pass over every protected database."""
        for key, pd in list(state.databases.items()):
            try:
                await self._prune(state, key, pd, now)
            except SqlHarborError as exc:
                log.warning("retention of %s/%s: %s", key[0], key[1], exc)
            except Exception:  # one database must not end the pass for the others
                log.exception("retention of %s/%s failed", key[0], key[1])

    async def _prune(self, state: State, key: Key, pd: ProtectedDatabase, now: datetime) -> None:
        ns = key[0]
        policy = state.policies.get((ns, pd.spec.policy_ref.name))
        instance = state.instances.get((ns, pd.spec.instance_ref.name))
        guid = pd.status.database_guid if pd.status else None
        if policy is None or instance is None or guid is None:
            return
        vault_ref = pd.spec.vault_ref or policy.spec.vault_ref
        vault = state.vaults.get((ns, vault_ref.name)) if vault_ref else None
        if vault is None:
            return
        catalog = self._open(vault)
        identity = instance.spec.vault_identity
        points = await asyncio.to_thread(catalog.list_points, identity, guid)
        selection = retention.select(points, rules_of(policy), now)
        deleted = 0
        for point in selection.delete:
            if await asyncio.to_thread(catalog.delete_point, identity, guid, point.id):
                deleted += 1
        kept = [p for p in points if p.id in selection.keep]
        windows = planner.recovery_window(kept) if kept else []
        earliest = windows[0].start if windows else None
        self._report(key, earliest, len(kept), deleted)
