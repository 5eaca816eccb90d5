"""Grants: each claimed job gets exactly the storage rights and keys it needs, sealed to the
agent session that claimed it (``contract.grants``); the agent holds nothing else.

- A BackupJob: a container SAS allowing create and write only, and the vault's public
  wrapping key.  The agent wraps each new point's data key with it and can open nothing.
- A RestoreJob: every planned point's manifest is read and authenticated here (its tag,
  its place, and the plan's LSNs against it: a catalog entry pointing elsewhere is caught
  before any data moves), then one read-only SAS per blob of the plan and each point's
  data key are granted.

A job that cannot be granted (vault gone or unusable, a tampered point) is failed with a
stable code, against the version read; a temporary failure (storage unreachable) is tried
again next tick.  Called every tick by ``tick.Controller``; blocking work runs on worker
threads.  The grant's contents never reach a log line, an Event or a message.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import datetime
from typing import cast

from sqlharbor.api import (
    BackupJob,
    BackupVault,
    ErrorInfo,
    JobPhase,
    RestoreJob,
    RestorePhase,
    contract,
)
from sqlharbor.api.contract.grants import BackupGrant, RestoreGrant, sealed_grant
from sqlharbor.api.contract.sealing import grant_context
from sqlharbor.api.jobs import RestorePlanStatus
from sqlharbor.errors import (
    Conflict,
    ErrorCode,
    IntegrityError,
    PermanentError,
    SqlHarborError,
    TemporaryError,
)
from sqlharbor.vault.reader import data_blobs
from sqlharbor_operator.logs import fields
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.vaults import VaultAccess

log = logging.getLogger(__name__)

Job = BackupJob | RestoreJob


class Granter:
    """Remembers the jobs it granted or failed, so each is written once."""

    def __init__(self, rt: Runtime, open_vault: Callable[[BackupVault], VaultAccess]) -> None:
        self._rt = rt
        self._open = open_vault
        self._done: set[str] = set()

    async def tick(self, now: datetime) -> None:
        for kind in contract.CLAIMABLE:  # BackupJob, RestoreJob
            for (ns, name), job in list(self._rt.state.table(kind).items()):
                if self._wanted(job):
                    await self._grant(kind, ns, name, job, now)

    def _wanted(self, job: Job) -> bool:
        status = job.status
        return (
            status is not None
            and status.phase in (JobPhase.RUNNING, RestorePhase.RUNNING)
            and status.grant is None
            and bool(status.agent_key)
            and (job.metadata.uid or "") not in self._done
        )

    async def _grant(self, kind: str, ns: str, name: str, job: Job, now: datetime) -> None:
        assert job.status is not None
        assert job.status.agent_key
        expires = now + self._rt.settings.grant_lifetime
        try:
            if kind == "BackupJob":
                grant: BackupGrant | RestoreGrant = await self._rt.offload(
                    self._backup_grant, ns, cast(BackupJob, job), expires
                )
            else:
                grant = await self._rt.offload(
                    self._restore_grant, ns, cast(RestoreJob, job), expires
                )
            context = grant_context(
                kind, ns, name, job.metadata.uid or "", job.status.agent_session or ""
            )
            body = {"grant": sealed_grant(grant, agent_key=job.status.agent_key, context=context)}
        except TemporaryError as exc:
            log.warning(
                "%s %s/%s: cannot grant yet: %s",
                kind,
                ns,
                name,
                exc,
                extra=fields(namespace=ns, job=name),
            )
            return
        except SqlHarborError as exc:
            body = contract.failed(kind, ErrorInfo.of(exc), now)
            log.warning(
                "%s %s/%s refused: %s", kind, ns, name, exc, extra=fields(namespace=ns, job=name)
            )
        try:
            await self._rt.api.patch_status(
                kind, ns, name, body, resource_version=job.metadata.resource_version
            )
        except Conflict:
            return  # changed meanwhile (the agent died, the operator failed it): next tick
        except SqlHarborError as exc:
            log.warning("%s %s/%s: %s", kind, ns, name, exc, extra=fields(namespace=ns, job=name))
            return
        self._done.add(job.metadata.uid or "")
        if "grant" in body:
            log.info(
                "%s %s/%s granted to session %s until %s",
                kind,
                ns,
                name,
                job.status.agent_session,
                expires.isoformat(timespec="seconds"),
                extra=fields(namespace=ns, job=name),
            )

    def _vault(self, ns: str, name: str | None) -> VaultAccess:
        vault = self._rt.state.vaults.get((ns, name or ""))
        if vault is None:
            raise PermanentError(f"BackupVault {name} does not exist", code=ErrorCode.GRANT_REFUSED)
        return self._open(vault)

    # -- blocking: on a worker thread -----------------------------------------------------
    def _backup_grant(self, ns: str, job: BackupJob, expires: datetime) -> BackupGrant:
        access = self._vault(ns, job.spec.vault_ref.name)
        public = access.keyring.public()
        return BackupGrant(
            account_url=access.issuer.account_url,
            container=access.issuer.container,
            prefix=access.vault.layout.prefix,
            expires=expires,
            sas=access.issuer.backup_grant(expires),
            wrapping_key=public.to_jwk(),
            key_id=public.key_id,
            key_version=public.key_version,
        )

    def _restore_grant(self, ns: str, job: RestoreJob, expires: datetime) -> RestoreGrant:
        assert job.status is not None
        plan = job.status.plan
        if plan is None or not plan.steps:
            raise PermanentError("the RestoreJob has no plan", code=ErrorCode.RESTORE_PLAN_MISSING)
        access = self._vault(ns, job.metadata.annotations.get(contract.ANNOTATION_VAULT))
        keys, blobs = checked_plan(access, plan)
        return RestoreGrant(
            account_url=access.issuer.account_url,
            container=access.issuer.container,
            prefix=access.vault.layout.prefix,
            expires=expires,
            blobs=access.issuer.restore_grant(blobs, expires),
            data_keys={point: base64.b64encode(key).decode("ascii") for point, key in keys.items()},
        )


def checked_plan(
    access: VaultAccess, plan: RestorePlanStatus
) -> tuple[dict[str, bytes], list[str]]:
    """The data key of each planned point and every blob the restore reads, after each
    manifest was authenticated, matched against its plan step, and found to be the one the
    operator endorsed when it indexed the point (the catalog line's manifest tag: a
    manifest an agent wrote over it, or a point no endorsed line names, is refused)."""
    vault = access.vault
    keys: dict[str, bytes] = {}
    blobs: list[str] = []
    endorsed = _endorsed_tags(access, plan)
    for step in plan.steps:
        point = step.recovery_point_id
        manifest = vault.manifest(plan.instance, plan.database_guid, point)
        tag = manifest.authentication.tag if manifest.authentication else ""
        if endorsed.get(point) != tag:  # before any key is unwrapped
            raise IntegrityError(
                f"recovery point {point}: its manifest is not the one the operator indexed "
                "(no endorsed catalog entry names it, or one names another manifest)"
            )
        data_key = vault.authenticate(manifest)
        backup = manifest.backup
        if (backup.backup_type, str(backup.first_lsn), str(backup.last_lsn)) != (
            step.backup_type,
            step.first_lsn,
            step.last_lsn,
        ):
            raise IntegrityError(
                f"recovery point {point}: the vault's catalog says {step.backup_type.value} "
                f"LSN {step.first_lsn}..{step.last_lsn}, its manifest "
                f"{backup.backup_type.value} LSN {backup.first_lsn}..{backup.last_lsn}: "
                "the catalog entry does not describe this point (rebuild the catalog)"
            )
        keys[point] = data_key
        blobs.append(vault.layout.manifest_blob(plan.instance, plan.database_guid, point))
        blobs.extend(data_blobs(vault.layout, manifest))
    return keys, blobs


def _endorsed_tags(access: VaultAccess, plan: RestorePlanStatus) -> dict[str, str]:
    """The manifest tag each catalog line over the plan's span records, by point id
    (lines the vault's endorsement rules skip are not there)."""
    if not plan.steps:
        return {}
    finishes = [step.finish for step in plan.steps]
    points = access.catalog.list_points(
        plan.instance, plan.database_guid, since=min(finishes), until=max(finishes)
    )
    return {p.id: p.tag for p in points}
