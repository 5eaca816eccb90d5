"""Restore planning: every new RestoreJob is validated, planned from the vault's catalog and
labelled for the target instance's agent, or failed with a clear error before data moves.

Called once per tick by ``Controller.tick`` (``plan_restores``).  Only RestoreJobs without a
phase (or Pending) are considered; a job the operator planned or failed, or that an agent
runs or finished, is never written again.  The decision (``decide``) reads the in-memory
state and the vault's catalog (storage credentials only, never the key-encryption key);
the writes are a metadata patch (the ``sqlharbor.io/target-instance`` label) and a status
merge patch carrying the ``resourceVersion`` the decision was made on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlharbor.api import BackupVault, ErrorInfo, RestoreJob, RestorePhase, SqlInstance, contract
from sqlharbor.api.jobs import RestorePlan as PlanStatus
from sqlharbor.errors import Conflict, ErrorCode, SqlHarborError, TemporaryError
from sqlharbor.kube import KubeClient
from sqlharbor.restoreplan import (
    CatalogReader,
    SourceIdentity,
    find_source,
    load_points,
    plan,
    plan_status,
)
from sqlharbor.vault import Catalog
from sqlharbor_operator.resolve import instance_served
from sqlharbor_operator.state import Key, State

log = logging.getLogger(__name__)

#: how long a job may wait for its target instance's agent before it fails
SERVED_GRACE = timedelta(minutes=5)


CatalogOpener = Callable[[BackupVault], CatalogReader]


@dataclass(frozen=True)
class Planned:
    plan: PlanStatus
    target_instance: str
    vault: str
    message: str


@dataclass(frozen=True)
class Refused:
    error: ErrorInfo


@dataclass(frozen=True)
class Wait:
    reason: str
    message: str


Decision = Planned | Refused | Wait


def _refuse(code: str, message: str, remediation: str, now: datetime) -> Refused:
    return Refused(ErrorInfo(code=code, message=message, remediation=remediation, time=now))


def decide(state: State, job: RestoreJob, now: datetime, open_catalog: CatalogOpener) -> Decision:
    """Validate and plan one RestoreJob.  Blocking (reads the catalog)."""
    ns = job.metadata.namespace or ""
    spec = job.spec
    target = spec.target.database or spec.target.files
    assert target is not None  # CEL: exactly one kind of target
    instance = state.instances.get((ns, target.instance_ref.name))
    if instance is None:
        return _refuse(
            ErrorCode.TARGET_INSTANCE_NOT_FOUND,
            f"SqlInstance {target.instance_ref.name} does not exist in namespace {ns}",
            "Fix spec.target.*.instanceRef or create the SqlInstance.",
            now,
        )
    if spec.target.database is not None:
        db_target = spec.target.database
        existing = _discovered(instance, db_target.database_name)
        if existing is not None and not db_target.overwrite:
            return _refuse(
                ErrorCode.TARGET_EXISTS,
                f"database {existing!r} already exists on SqlInstance "
                f"{instance.metadata.name}; the restore was refused before any data moved",
                "Restore under a new name (target.database.databaseName), or set "
                "target.database.overwrite: true to replace it.",
                now,
            )
    source = _source(state, job, now)
    if isinstance(source, Refused):
        return source
    vault, instance_identity, name, guid, known_guid = source
    try:
        catalog = open_catalog(vault)
        identity = find_source(
            catalog,
            instance_identity,
            database_name=name,
            database_guid=guid,
            known_guid=known_guid,
        )
        points = load_points(catalog, identity)
        chosen = plan(points, spec.point_in_time, _lsn_guid(identity, guid, known_guid))
    except TemporaryError as exc:
        return Wait(ErrorCode.VAULT_UNREACHABLE, f"reading the vault's catalog: {exc.message}")
    except SqlHarborError as exc:
        return _refuse(exc.code, exc.message, exc.remediation, now)
    not_served = instance_served(state, instance, now)
    if not_served is not None:
        created = job.metadata.creation_timestamp or now
        if now - created < SERVED_GRACE:
            return Wait(not_served.reason, not_served.message)
        return _refuse(not_served.reason, not_served.message, "Start the agent, then retry.", now)
    status = plan_status(chosen, identity.instance, _name_of(identity, chosen.database_guid))
    steps = len(status.steps)
    stop = status.stop_at.isoformat() if status.stop_at else status.stop_at_lsn or "end"
    return Planned(
        status,
        instance.metadata.name,
        vault.metadata.name,
        f"planned {steps} step(s), {status.bytes_total} bytes, stop at {stop}",
    )


def _discovered(instance: SqlInstance, name: str) -> str | None:
    """The discovered database with that name (SQL Server's default collation ignores case)."""
    databases = instance.status.databases if instance.status else []
    return next((d.name for d in databases if d.name.lower() == name.lower()), None)


_Source = tuple[BackupVault, str, str | None, str | None, str | None]


def _source(state: State, job: RestoreJob, now: datetime) -> _Source | Refused:
    """(vault, instance identity, database name, exact guid, known guid) of the source."""
    ns = job.metadata.namespace or ""
    src = job.spec.source
    if src.vault is not None:
        vault = state.vaults.get((ns, src.vault.vault_ref.name))
        if vault is None:
            return _refuse(
                ErrorCode.RESTORE_VAULT_NOT_FOUND,
                f"BackupVault {src.vault.vault_ref.name} does not exist in namespace {ns}",
                "Create the BackupVault pointing at the container that holds the backups.",
                now,
            )
        return vault, src.vault.instance, src.vault.database_name, src.vault.database_guid, None
    assert src.protected_database is not None
    pd = state.databases.get((ns, src.protected_database))
    if pd is None:
        return _refuse(
            ErrorCode.PROTECTED_DATABASE_NOT_FOUND,
            f"ProtectedDatabase {src.protected_database} does not exist in namespace {ns}",
            "Fix spec.source.protectedDatabase, or restore from the vault with spec.source.vault.",
            now,
        )
    policy = state.policies.get((ns, pd.spec.policy_ref.name))
    vault_ref = pd.spec.vault_ref or (policy.spec.vault_ref if policy else None)
    vault = state.vaults.get((ns, vault_ref.name)) if vault_ref else None
    if vault is None:
        return _refuse(
            ErrorCode.RESTORE_VAULT_NOT_FOUND,
            f"the vault of ProtectedDatabase {pd.metadata.name} is not set or does not exist",
            "Set spec.vaultRef on the ProtectedDatabase or its policy.",
            now,
        )
    instance = state.instances.get((ns, pd.spec.instance_ref.name))
    if instance is None:
        return _refuse(
            ErrorCode.SOURCE_INSTANCE_NOT_FOUND,
            f"SqlInstance {pd.spec.instance_ref.name} of ProtectedDatabase {pd.metadata.name} "
            "does not exist; restore from the vault with spec.source.vault instead",
            "Use spec.source.vault with the instance identity (HOST or HOST\\INSTANCE).",
            now,
        )
    status = pd.status
    known = (status.chain.database_guid if status and status.chain else None) or (
        status.database_guid if status else None
    )
    return vault, instance.spec.vault_identity, pd.spec.database_name, None, known


def _lsn_guid(identity: SourceIdentity, guid: str | None, known: str | None) -> str | None:
    """Which incarnation an LSN target means: the one named, else the newest (planner)."""
    return guid or (known if known in identity.guids else None)


def _name_of(identity: SourceIdentity, guid: str) -> str:
    return identity.database_name or guid


# -- the controller's entry point ------------------------------------------------------


class RestorePlanner:
    """Remembers what it decided so a job is planned once, even before the watch catches up."""

    def __init__(self, client: KubeClient, open_catalog: CatalogOpener) -> None:
        self._client = client
        self._open_catalog = open_catalog
        self._done: set[str] = set()
        self._waiting: dict[str, str] = {}
        self._lost: set[str] = set()  # Running jobs failed because their agent died

    async def tick(self, state: State, now: datetime) -> None:
        for key, job in list(state.restores.items()):
            uid = job.metadata.uid or key[1]
            phase = job.status.phase if job.status else None
            if phase is RestorePhase.RUNNING and uid not in self._lost:
                await self._fail_if_agent_lost(state, key, job, uid, now)
                continue
            if uid in self._done or phase not in (None, RestorePhase.PENDING):
                continue
            decision = await asyncio.to_thread(decide, state, job, now, self._open_catalog)
            await self._write(key, job, uid, decision, now)

    async def _fail_if_agent_lost(
        self, state: State, key: Key, job: RestoreJob, uid: str, now: datetime
    ) -> None:
        """A Running restore whose agent session stopped renewing its lease is failed."""
        status = job.status
        if status is None or not status.agent_session:
            return
        if not contract.session_lost(
            state.leases, key[0], status.agent_session, status.start_time, now
        ):
            return
        body = contract.agent_lost("RestoreJob", status.agent_session, now)
        try:
            await asyncio.to_thread(
                self._client.patch_status,
                "RestoreJob",
                key[0],
                key[1],
                body,
                resource_version=job.metadata.resource_version,
            )
        except SqlHarborError as exc:  # Conflict included: look again next tick
            log.info("could not fail RestoreJob %s/%s: %s", key[0], key[1], exc)
            return
        self._lost.add(uid)

    async def _write(
        self, key: Key, job: RestoreJob, uid: str, decision: Decision, now: datetime
    ) -> None:
        ns, name = key
        body: dict[str, Any]
        version = job.metadata.resource_version
        if isinstance(decision, Wait):
            if self._waiting.get(uid) == decision.message:
                return
            body = contract.restore_waiting(decision.message)
        elif isinstance(decision, Refused):
            body = contract.failed("RestoreJob", decision.error, now)
        else:
            try:
                labelled = await asyncio.to_thread(
                    self._client.patch_metadata,
                    "RestoreJob",
                    ns,
                    name,
                    {
                        "labels": {contract.LABEL_TARGET_INSTANCE: decision.target_instance},
                        "annotations": {contract.ANNOTATION_VAULT: decision.vault},
                    },
                )
            except SqlHarborError as exc:
                log.warning("cannot label RestoreJob %s/%s: %s", ns, name, exc)
                return
            version = labelled["metadata"]["resourceVersion"]
            body = contract.restore_planned(
                decision.plan, decision.message, job.metadata.generation
            )
        try:
            await asyncio.to_thread(
                self._client.patch_status,
                "RestoreJob",
                ns,
                name,
                body,
                resource_version=version,
            )
        except Conflict:
            return  # changed meanwhile: decide again on the next tick
        except SqlHarborError as exc:
            log.warning("status of RestoreJob %s/%s: %s", ns, name, exc)
            return
        if isinstance(decision, Wait):
            self._waiting[uid] = decision.message
            return
        self._done.add(uid)
        self._waiting.pop(uid, None)
        log.info("RestoreJob %s/%s: %s", ns, name, body["message"])


def vault_catalog_opener(client: KubeClient) -> Callable[[BackupVault], Catalog]:
    """Open a vault's catalog with the operator's access to its storage Secret (cached)."""
    from sqlharbor.restoreplan import open_catalog

    cache: dict[tuple[str, str, int | None], Catalog] = {}

    def opener(vault: BackupVault) -> Catalog:
        key = (vault.metadata.namespace or "", vault.metadata.name, vault.metadata.generation)
        if key not in cache:
            cache[key] = open_catalog(vault, client.secret_value)
        return cache[key]

    return opener
