"""Every label, annotation and finalizer name sqlharbor puts on objects (part of
``sqlharbor.api.contract``)."""

from __future__ import annotations

from sqlharbor.api._base import GROUP

#: BackupJob, auto-protected ProtectedDatabase: the SqlInstance it belongs to.
LABEL_INSTANCE = f"{GROUP}/instance"
#: BackupJob: Full, Differential or Log.
LABEL_BACKUP_TYPE = f"{GROUP}/type"
#: BackupJob: created by the operator's scheduler ("true").
LABEL_SCHEDULED = f"{GROUP}/scheduled"
#: ProtectedDatabase: created by auto-protection ("true").
LABEL_AUTO_PROTECTED = f"{GROUP}/auto-protected"
#: RestoreJob: the SqlInstance whose agent runs the planned restore (set by the operator).
LABEL_TARGET_INSTANCE = f"{GROUP}/target-instance"
#: The enrolled agent an object belongs to: a Lease its sessions renew; a BackupJob or
#: RestoreJob assigned to it (set by the operator from the SqlInstance's ``spec.agent``; the
#: fence policy lets only that agent write the job's status); its ServiceAccount and Role.
LABEL_AGENT = f"{GROUP}/agent"
#: RestoreJob: the BackupVault the plan reads from (agents cannot read ProtectedDatabases).
ANNOTATION_VAULT = f"{GROUP}/vault"
#: sqlharbor adds no finalizer to any object (its delete handlers are optional).
FINALIZERS: tuple[str, ...] = ()


def reporting_controller(component: str) -> str:
    """``reportingController`` of the Events a component posts (``sqlharbor.io/operator``)."""
    return f"{GROUP}/{component}"


def truthy_label(value: bool = True) -> str:
    return "true" if value else "false"
