"""Indexing: each recovery point an agent reports is checked against its manifest and added to
the vault's catalog by the operator, the only one whose catalog lines count (an agent's
backup SAS can write blobs, catalog segments included, but only lines the operator endorsed
are read: ``vault.endorsement``).

For every succeeded database of a BackupJob, the point's manifest is read with the vault's
management credential and authenticated with the keyring (its tag over every field and its
place), and must describe what the agent reported: its instance, database, type and LSNs,
and have been taken while its job ran (``check_timely``). Only then is it indexed. A point
that fails is not indexed, so no restore plan ever names it; the error is logged, and a
failed authentication (a forged or tampered point) is also announced as a Warning Event on
the job. Adding a point twice is harmless (catalog segments fold duplicates), which is what
happens to the finished jobs still listed after an operator restart.

Called every tick by ``tick.Controller``; blocking vault work runs on worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from sqlharbor.api import BackupJob, BackupVault, DatabaseResult, JobPhase
from sqlharbor.errors import (
    IntegrityError,
    NotFound,
    PermanentError,
    SqlHarborError,
    TemporaryError,
)
from sqlharbor.vault.layout import RecoveryPointId
from sqlharbor.vault.manifest import Manifest
from sqlharbor_operator.logs import fields
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.vaults import VaultAccess

log = logging.getLogger(__name__)


class Indexer:
    """Each tick queues the points reported since, and starts a batch of the queue in the
    background (at most ``concurrency`` at once; the tick does not wait: due backups must
    not wait behind a vault's latency) unless the previous batch still runs.  A point that
    failed for a temporary reason goes back to the queue."""

    def __init__(
        self,
        rt: Runtime,
        open_vault: Callable[[BackupVault], VaultAccess],
        concurrency: int = 8,
    ) -> None:
        self._rt = rt
        self._open = open_vault
        self._concurrency = concurrency
        self._seen: set[tuple[str, str]] = set()  # (job uid, recovery point id) taken
        self._queue: list[tuple[str, BackupJob, DatabaseResult]] = []
        self._running: asyncio.Task[None] | None = None

    async def tick(self) -> asyncio.Task[None] | None:
        """Take every newly reported point (before ``accounting`` drops the job's results
        from memory: this runs first in the tick), and start a batch when none runs."""
        self._queue.extend(self._pending())
        if self._running is not None and not self._running.done():
            return None
        if not self._queue:
            return None
        batch, self._queue = self._queue, []
        self._running = asyncio.create_task(self.run(batch), name="sqlharbor-indexing")
        return self._running

    def _pending(self) -> Iterator[tuple[str, BackupJob, DatabaseResult]]:
        for (ns, name), job in list(self._rt.state.jobs.items()):
            status = job.status
            if status is None or status.phase not in (JobPhase.SUCCEEDED, JobPhase.FAILED):
                continue
            uid = job.metadata.uid or name
            for result in status.databases:
                point = result.recovery_point_id
                if result.phase is JobPhase.SUCCEEDED and point and (uid, point) not in self._seen:
                    self._seen.add((uid, point))
                    yield ns, job, result

    async def run(self, batch: list[tuple[str, BackupJob, DatabaseResult]]) -> None:
        gate = asyncio.Semaphore(self._concurrency)

        async def one(ns: str, job: BackupJob, result: DatabaseResult) -> None:
            async with gate:
                await self._one(ns, job, result)

        await asyncio.gather(*(one(*item) for item in batch))

    async def _one(self, ns: str, job: BackupJob, result: DatabaseResult) -> None:
        point = result.recovery_point_id or ""
        try:
            await self._rt.offload(self._index, ns, job, result)
        except TemporaryError as exc:
            log.warning(
                "indexing %s: %s (next batch)",
                point,
                exc,
                extra=fields(namespace=ns, job=job.metadata.name),
            )
            self._queue.append((ns, job, result))
        except SqlHarborError as exc:
            await self._refused(ns, job, point, exc)
        except Exception:  # one point must not end the batch for the others
            log.exception("indexing %s failed", point)

    def _index(self, ns: str, job: BackupJob, result: DatabaseResult) -> None:
        state = self._rt.state
        vault = state.vaults.get((ns, job.spec.vault_ref.name))
        instance = state.instances.get((ns, job.spec.instance_ref.name))
        if vault is None or instance is None:
            raise PermanentError(
                f"BackupVault {job.spec.vault_ref.name} or SqlInstance "
                f"{job.spec.instance_ref.name} is gone"
            )
        access = self._open(vault)
        scope = instance.spec.vault_identity
        assert result.recovery_point_id is not None
        manifest = access.vault.manifest(
            scope, result.database_guid or "", result.recovery_point_id
        )
        access.vault.authenticate(manifest)
        check_reported(manifest, scope, result)
        check_timely(manifest, job.metadata.creation_timestamp, self._rt.clock())
        access.catalog.add(manifest)
        log.info(
            "indexed recovery point %s of %s",
            result.recovery_point_id,
            result.name,
            extra=fields(namespace=ns, job=job.metadata.name, database=result.name),
        )

    async def _refused(self, ns: str, job: BackupJob, point: str, exc: SqlHarborError) -> None:
        gone = isinstance(exc, NotFound)
        forged = isinstance(exc, IntegrityError)
        log.log(
            logging.ERROR if forged else logging.INFO if gone else logging.WARNING,
            "recovery point %s of BackupJob %s/%s is not indexed: %s",
            point,
            ns,
            job.metadata.name,
            exc,
            extra=fields(namespace=ns, job=job.metadata.name),
        )
        if not forged:
            return  # deleted by retention since, never committed, or not a forgery
        regarding = {
            "apiVersion": job.api_version,
            "kind": "BackupJob",
            "name": job.metadata.name,
            "namespace": ns,
            "uid": job.metadata.uid,
        }
        try:
            await self._rt.api.post_event(
                namespace=ns,
                regarding=regarding,
                reason=str(exc.code),
                note=f"recovery point {point} is not indexed: {exc.message}"[:1024],
                type_="Warning",
                action="Index",
            )
        except SqlHarborError as failed:
            log.warning("event for %s: %s", point, failed)


#: clock difference tolerated between the operator and the VM
CLOCK_SKEW = timedelta(minutes=10)


def check_timely(manifest: Manifest, job_created: datetime | None, now: datetime) -> None:
    """Refuse a point that was not taken while its job ran: its id (which carries when it
    was created) and its finish must fall between the job's creation and now.  An agent
    may overwrite an older point it knows the name of (its backup grant writes) and report
    it again; without this, the operator would endorse the forgery over the original."""
    point = manifest.identity.recovery_point_id
    created = RecoveryPointId.parse(point).created
    low = (job_created or now) - CLOCK_SKEW
    high = now + CLOCK_SKEW
    for what, moment in (("was created", created), ("finished", manifest.backup.finish)):
        if not low <= moment <= high:
            raise IntegrityError(
                f"recovery point {point} {what} at {moment.isoformat()}, outside its job's "
                f"run ({low.isoformat()} .. {high.isoformat()}, {CLOCK_SKEW} of clock skew "
                "allowed)"
            )


def check_reported(manifest: Manifest, scope: str, result: DatabaseResult) -> None:
    """Refuse a manifest that does not describe what the agent reported."""
    backup = manifest.backup
    reported = (scope, result.database_guid, result.backup_type, result.first_lsn, result.last_lsn)
    found = (
        manifest.identity.scope.name,
        manifest.identity.database_id,
        backup.backup_type,
        str(backup.first_lsn),
        str(backup.last_lsn),
    )
    if reported != found:
        raise IntegrityError(
            f"recovery point {manifest.identity.recovery_point_id}: the agent reported "
            f"{reported[2]} LSN {reported[3]}..{reported[4]} of {reported[1]} on {scope}, its "
            f"manifest says {found[2]} LSN {found[3]}..{found[4]} of {found[1]} on {found[0]}"
        )
