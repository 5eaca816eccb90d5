"""The key census: how many recovery points each key a vault lists wraps, written to the
BackupVault's ``status.keys``.  The API server's vault-keys policy
(config/policy/vault_keys.yaml) reads it to refuse removing a key that still wraps points.

Every ``interval`` (the retention interval), in the background, for each vault: every
database the catalog registers, every point, tallied by the key its catalog line names.
A line written before lines named their key is completed from its manifest (and the line
appended again with its key, so the next census does not read it again).  Points of
unprotected databases and old incarnations count too: removing a key strands them as
much as any other.  A Key Vault key listed without a version counts the points of the
version it resolves to.

Started by the tick (``tick.Controller``); blocking vault reads on worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlharbor.api import BackupVault
from sqlharbor.api.vault import KeyUse
from sqlharbor.domain.backupset import PointKey
from sqlharbor.errors import NotFound, SqlHarborError
from sqlharbor.vault.keyring import point_key
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.vaults import VaultAccess

log = logging.getLogger(__name__)


class KeyCensus:
    def __init__(
        self,
        rt: Runtime,
        open_vault: Callable[[BackupVault], VaultAccess],
        interval: timedelta,
    ) -> None:
        self._rt = rt
        self._open = open_vault
        self._interval = interval
        self._next: datetime | None = None
        self._running: asyncio.Task[None] | None = None

    async def tick(self, now: datetime) -> asyncio.Task[None] | None:
        state = self._rt.state
        if not state.loaded or (self._running is not None and not self._running.done()):
            return None
        if self._next is not None and now < self._next:
            return None
        self._next = now + self._interval
        self._running = asyncio.create_task(self.run(now), name="sqlharbor-key-census")
        return self._running

    async def run(self, now: datetime) -> None:
        for (ns, name), vault in list(self._rt.state.vaults.items()):
            try:
                uses = await self._rt.offload(self.count, vault)
                body = {
                    "keys": [u.to_wire() for u in uses],
                    "keysCounted": now.isoformat(),
                }
                await self._rt.api.patch_status("BackupVault", ns, name, body)
            except SqlHarborError as exc:
                log.warning("key census of BackupVault %s/%s: %s", ns, name, exc)
            except Exception:  # one vault must not end the census of the others
                log.exception("key census of BackupVault %s/%s failed", ns, name)

    def count(self, vault: BackupVault) -> list[KeyUse]:
        """Blocking: the points per listed key, in ``spec.encryption`` order."""
        access = self._open(vault)
        catalog = access.catalog
        tally: Counter[PointKey] = Counter()
        for entry in catalog.databases():
            for point in catalog.list_points(entry.instance, entry.database_guid):
                wrapped = point.key
                if wrapped is None:  # a line from before lines named their key
                    try:
                        manifest = access.vault.manifest(
                            entry.instance, entry.database_guid, point.id
                        )
                    except NotFound:
                        continue
                    completed = manifest.recovery_point()
                    catalog.add_points(entry.instance, [completed])
                    wrapped = completed.key
                if wrapped is not None:
                    tally[wrapped] += 1
        uses = []
        for ref, key in zip(vault.spec.encryption.keys, access.keyring.keys, strict=True):
            named = point_key(key)
            uses.append(
                KeyUse(
                    ref=ref.ref,
                    key_id=named.key_id,
                    key_version=named.key_version,
                    points=tally[named],
                )
            )
        return uses
