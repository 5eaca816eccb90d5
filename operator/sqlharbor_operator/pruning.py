"""The retention pass: every ``interval`` the operator reads each protected database's
recovery points from the vault catalog, lets ``sqlharbor.domain.retention.select`` decide what the
policy no longer keeps (chain-aware: nothing a retained point depends on), deletes those
(manifest first, so a point disappears atomically; no key needed), and moves the
database's earliest restorable time and point count in status.  Points under a key the
vault no longer lists are counted apart (``unreadablePoints``, a Warning naming the key)
and never count towards the window.

Started by the tick (in the background, once the state is loaded); ``concurrency``
catalogs are read at once.  A failing vault is logged (once per vault when the whole vault
fails: container missing, access denied) and retried next interval.  What a pass moves is
folded into status by ``fold_pruning``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlharbor.api import BackupPolicy, BackupVault, ProtectedDatabase
from sqlharbor.domain import planner, retention
from sqlharbor.domain.backupset import RecoveryPoint
from sqlharbor.errors import ContainerNotFound, NotLeader, SqlHarborError, VaultAccessDenied
from sqlharbor.restoreplan import KeyChecker, split_readable
from sqlharbor.vault import Catalog
from sqlharbor_operator.accounting import rfc3339
from sqlharbor_operator.logs import fields
from sqlharbor_operator.offload import Offloader
from sqlharbor_operator.state import Key, State

log = logging.getLogger(__name__)

#: (protected database, earliest restorable time or None, recovery points kept, deleted,
#: kept points no listed key opens)
Report = Callable[[Key, datetime | None, int, int, list[RecoveryPoint]], None]


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


@dataclass(frozen=True)
class _Target:
    """What one database's pruning needs, resolved from the operator's state."""

    key: Key
    vault_key: Key
    vault: BackupVault
    policy: BackupPolicy
    identity: str
    guid: str


def _target(state: State, key: Key, pd: ProtectedDatabase) -> _Target | None:
    """None while the database is not resolvable yet (no policy, instance, vault or
    database GUID): nothing of it can be in the vault."""
    ns = key[0]
    policy = state.policies.get((ns, pd.spec.policy_ref.name))
    instance = state.instances.get((ns, pd.spec.instance_ref.name))
    guid = pd.status.database_guid if pd.status else None
    vault_ref = pd.spec.vault_ref or (policy.spec.vault_ref if policy else None)
    vault_key = (ns, vault_ref.name) if vault_ref else None
    vault = state.vaults.get(vault_key) if vault_key else None
    if policy is None or instance is None or guid is None or vault is None or vault_key is None:
        return None
    return _Target(key, vault_key, vault, policy, instance.spec.vault_identity, guid)


def fold_pruning(
    state: State,
    key: Key,
    earliest: datetime | None,
    kept: int,
    deleted: int,
    unreadable: list[RecoveryPoint] | None = None,
) -> None:
    """A pass's result for one database, as a status change not yet written.  Points no
    listed key opens are counted apart and left out of the window (none readable at all:
    no window)."""
    pd = state.databases.get(key)
    if pd is None or pd.status is None:
        return
    status = pd.status.model_copy(deep=True)
    status.recovery_points = kept
    lost = unreadable or []
    status.unreadable_points = len(lost) or None
    status.unreadable_keys = sorted({p.key.describe() for p in lost if p.key is not None})
    if lost and earliest is None:
        status.recovery_window = None
    window = status.recovery_window
    if (
        window is not None
        and earliest is not None
        and (window.earliest is None or earliest > window.earliest)
    ):
        window.earliest = earliest
        window.earliest_text = rfc3339(earliest)
    state.set_status(key, status)
    if deleted:
        log.info(
            "retention deleted %d recovery point(s) of %s/%s",
            deleted,
            *key,
            extra=fields(namespace=key[0], database=key[1]),
        )


class RetentionPass:
    def __init__(
        self,
        open_catalog: Callable[[BackupVault], Catalog],
        interval: timedelta,
        report: Report,
        concurrency: int = 8,
        leads: Callable[[], bool] = lambda: True,
        open_keys: Callable[[BackupVault], KeyChecker] | None = None,
        offload: Offloader | None = None,
    ) -> None:
        self._open = open_catalog
        self._offload = offload or Offloader()
        self._open_keys = open_keys
        self._leads = leads
        self._interval = interval
        self._report = report
        self._concurrency = concurrency
        self._next: datetime | None = None
        self._running: asyncio.Task[None] | None = None
        self._deleted = 0

    async def tick(self, state: State, now: datetime) -> asyncio.Task[None] | None:
        """Start a pass in the background when one is due (and none is running); the
        controller's tick does not wait for it: a pass over 10,000 databases' catalogs
        takes minutes, and due backups must not wait behind it.  Nothing starts before the
        state is loaded (a pass over an empty state would cover nothing for an interval)."""
        if not state.loaded:
            return None
        if self._running is not None and not self._running.done():
            return None
        if self._next is not None and now < self._next:
            return None
        self._next = now + self._interval
        self._running = asyncio.create_task(self.run(state, now), name="sqlharbor-retention")
        return self._running

    async def run(self, state: State, now: datetime) -> None:
        """One pass over every protected database.  A failure of a whole vault (its
        container missing, access denied) is logged once and the vault's other databases
        are skipped for this pass: they would only fail the same way, a line each."""
        skipped: set[Key] = set()
        began, seen, self._deleted = time.monotonic(), 0, 0
        gate = asyncio.Semaphore(self._concurrency)

        async def one(target: _Target) -> None:
            nonlocal seen
            async with gate:
                if target.vault_key in skipped:
                    return
                seen += 1
                await self._prune_logged(target, now, skipped)

        targets = [t for key, pd in list(state.databases.items()) if (t := _target(state, key, pd))]
        await asyncio.gather(*(one(t) for t in targets))
        log.info(
            "retention pass: %d database(s) in %.1f s, %d point(s) deleted, %d vault(s) skipped",
            seen,
            time.monotonic() - began,
            self._deleted,
            len(skipped),
        )

    async def _prune_logged(self, target: _Target, now: datetime, skipped: set[Key]) -> None:
        vault, key = target.vault_key, target.key
        try:
            await self._prune(target, now)
        except ContainerNotFound:
            if vault not in skipped:
                skipped.add(vault)
                log.info("retention: vault %s/%s has no container yet (no backup landed)", *vault)
        except VaultAccessDenied as exc:
            if vault not in skipped:
                skipped.add(vault)
                log.warning("retention: vault %s/%s skipped this pass: %s", *vault, exc)
        except NotLeader:
            return
        except SqlHarborError as exc:
            log.warning(
                "retention of %s/%s: %s", *key, exc, extra=fields(namespace=key[0], database=key[1])
            )
        except Exception:  # one database must not end the pass for the others
            log.exception(
                "retention of %s/%s failed", *key, extra=fields(namespace=key[0], database=key[1])
            )

    async def _prune(self, target: _Target, now: datetime) -> None:
        catalog = await self._offload(self._open, target.vault)
        identity, guid = target.identity, target.guid
        points = await self._offload(catalog.list_points, identity, guid)
        selection = retention.select(points, rules_of(target.policy), now)
        deleted = 0
        for point in selection.delete:
            if not self._leads():  # fencing: a deposed leader deletes nothing more
                raise NotLeader(f"retention of {target.key[0]}/{target.key[1]}: stopped")
            if await self._offload(catalog.delete_point, identity, guid, point.id):
                deleted += 1
        kept = [p for p in points if p.id in selection.keep]
        readable, unreadable = kept, list[RecoveryPoint]()
        if self._open_keys is not None:
            keys = await self._offload(self._open_keys, target.vault)
            readable, unreadable = split_readable(kept, keys)
        windows = planner.recovery_window(readable) if readable else []
        earliest = windows[0].start if windows else None
        self._deleted += deleted
        self._report(target.key, earliest, len(kept), deleted, unreadable)
