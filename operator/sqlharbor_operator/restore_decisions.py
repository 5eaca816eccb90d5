"""Restore decisions: validate one RestoreJob and plan it from the vault's catalog, or say
why it is refused or must wait (``decide_restore``).  Reads the in-memory state and the vault's
catalog (storage credentials only, never the key-encryption key); blocking, so
``restores.RestoreDispatcher`` runs it on a worker thread.  Writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlharbor.api import BackupVault, ErrorInfo, RestoreJob, SqlInstance
from sqlharbor.api.jobs import RestorePlanStatus as PlanStatus
from sqlharbor.domain.backupset import RecoveryPoint
from sqlharbor.errors import ErrorCode, SqlHarborError, TemporaryError
from sqlharbor.restoreplan import (
    CatalogReader,
    KeyChecker,
    SourceIdentity,
    find_source,
    load_points,
    plan,
    plan_status,
    split_readable,
    unreadable_note,
)
from sqlharbor_operator.resolve import instance_served
from sqlharbor_operator.state import State

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


def decide_restore(
    state: State,
    job: RestoreJob,
    now: datetime,
    open_catalog: CatalogOpener,
    open_keys: Callable[[BackupVault], KeyChecker] | None = None,
) -> Decision:
    """Validate and plan one RestoreJob.  Blocking (reads the catalog).  With ``open_keys``
    (the vault's keyring), points under a key the vault does not list are left out of the
    plan, and a refusal says how many and which key."""
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
    unreadable: list[RecoveryPoint] = []
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
        if open_keys is not None:
            points, unreadable = split_readable(points, open_keys(vault))
        chosen = plan(points, spec.point_in_time, _lsn_guid(identity, guid, known_guid))
    except TemporaryError as exc:
        return Wait(ErrorCode.VAULT_UNREACHABLE, f"reading the vault's catalog: {exc.message}")
    except SqlHarborError as exc:
        note = unreadable_note(unreadable)
        message = f"{exc.message} ({note})" if note else exc.message
        return _refuse(exc.code, message, exc.remediation, now)
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
