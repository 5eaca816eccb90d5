"""Typed resources: ``Resource[Spec, Status]`` plus the registry of the six kinds with their
CRD metadata (plural, short names, printer columns).

The operator, the agent and the CLI parse API objects into these; the CRD generator reads
the registry.  Builders for tests live in ``sqlharbor.api.builders``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sqlharbor.api._base import API_VERSION, GROUP, VERSION, ApiModel
from sqlharbor.api.contract import BACKUP_JOB, RESTORE_JOB, PhaseMachine
from sqlharbor.api.instance import SqlInstanceSpec, SqlInstanceStatus
from sqlharbor.api.jobs import BackupJobSpec, BackupJobStatus, RestoreJobSpec, RestoreJobStatus
from sqlharbor.api.policy import BackupPolicySpec, BackupPolicyStatus
from sqlharbor.api.protection import ProtectedDatabaseSpec, ProtectedDatabaseStatus
from sqlharbor.api.vault import BackupVaultSpec, BackupVaultStatus

SpecT = TypeVar("SpecT", bound=ApiModel)
StatusT = TypeVar("StatusT", bound=BaseModel)


class ObjectMeta(BaseModel):
    """The parts of metadata sqlharbor reads; everything else is kept as it came."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = Field(default=None, alias="resourceVersion")
    creation_timestamp: datetime | None = Field(default=None, alias="creationTimestamp")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Resource(BaseModel, Generic[SpecT, StatusT]):
    """A custom resource as stored by the API server."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    status: StatusT | None = None

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": self.metadata.model_dump(mode="json", by_alias=True, exclude_none=True),
            "spec": self.spec.to_wire(),
        }
        if self.status is not None:
            body["status"] = self.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        return body


BackupVault = Resource[BackupVaultSpec, BackupVaultStatus]
BackupPolicy = Resource[BackupPolicySpec, BackupPolicyStatus]
SqlInstance = Resource[SqlInstanceSpec, SqlInstanceStatus]
ProtectedDatabase = Resource[ProtectedDatabaseSpec, ProtectedDatabaseStatus]
BackupJob = Resource[BackupJobSpec, BackupJobStatus]
RestoreJob = Resource[RestoreJobSpec, RestoreJobStatus]


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    """One custom resource kind and how it is served."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[ApiModel]
    status: type[BaseModel]
    description: str
    columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)
    #: JSON paths usable in field selectors (agents watch only their instance's jobs).
    selectable_fields: tuple[str, ...] = ()
    #: The phase state machine the API server enforces on status (``api.contract``).
    phases: PhaseMachine | None = None

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
READY = PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status')

KINDS: tuple[Kind, ...] = (
    Kind(
        "BackupVault",
        "backupvaults",
        ("bvault",),
        BackupVaultSpec,
        BackupVaultStatus,
        "An Azure Blob container (and prefix) holding encrypted recovery points.",
        (
            PrinterColumn("Container", ".spec.azureBlob.container"),
            PrinterColumn("Prefix", ".spec.azureBlob.prefix"),
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Key", ".status.keyId", priority=1),
            PrinterColumn("Message", ".status.message", priority=1),
            AGE,
        ),
    ),
    Kind(
        "BackupPolicy",
        "backuppolicies",
        ("bpol",),
        BackupPolicySpec,
        BackupPolicyStatus,
        "Backup schedules (full, differential, log), retention and compression.",
        (
            PrinterColumn("Full", ".spec.schedules.full.schedule"),
            PrinterColumn("Differential", ".spec.schedules.differential.schedule"),
            PrinterColumn("Log", ".spec.schedules.log.interval"),
            PrinterColumn("Log Days", ".spec.retention.logDays", "integer"),
            PrinterColumn("Databases", ".status.protectedDatabases", "integer"),
            READY,
            AGE,
        ),
    ),
    Kind(
        "SqlInstance",
        "sqlinstances",
        ("sqli",),
        SqlInstanceSpec,
        SqlInstanceStatus,
        "One SQL Server instance on one VM, served by the sqlharbor agent on that VM.",
        (
            PrinterColumn("Host", ".spec.host"),
            PrinterColumn("Instance", ".spec.instanceName"),
            PrinterColumn("Engine", ".spec.engine"),
            PrinterColumn("Databases", ".status.databaseCount", "integer"),
            READY,
            PrinterColumn("Reason", '.status.conditions[?(@.type=="Ready")].reason'),
            PrinterColumn("Version", ".status.sqlVersion", priority=1),
            AGE,
        ),
    ),
    Kind(
        "ProtectedDatabase",
        "protecteddatabases",
        ("sqlpdb",),
        ProtectedDatabaseSpec,
        ProtectedDatabaseStatus,
        "One database protected by a policy; status shows health, last backups, recovery "
        "window and RPO.",
        (
            PrinterColumn("Instance", ".spec.instanceRef.name"),
            PrinterColumn("Database", ".spec.databaseName"),
            PrinterColumn("Policy", ".spec.policyRef.name"),
            PrinterColumn("Health", ".status.health"),
            PrinterColumn("Last Backup", ".status.lastBackupTime", "date"),
            PrinterColumn("Earliest", ".status.recoveryWindow.earliestText"),
            PrinterColumn("Latest", ".status.recoveryWindow.latestText"),
            PrinterColumn("RPO", ".status.rpo"),
            PrinterColumn("Chain", ".status.logChain", priority=1),
            PrinterColumn("Points", ".status.recoveryPoints", "integer", priority=1),
            PrinterColumn("Message", ".status.message", priority=1),
        ),
    ),
    Kind(
        "BackupJob",
        "backupjobs",
        ("bjob",),
        BackupJobSpec,
        BackupJobStatus,
        "One backup run on one instance (several databases for log backups).",
        (
            PrinterColumn("Instance", ".spec.instanceRef.name"),
            PrinterColumn("Type", ".spec.type"),
            PrinterColumn("Reason", ".spec.reason"),
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("OK", ".status.succeeded", "integer"),
            PrinterColumn("Failed", ".status.failed", "integer"),
            PrinterColumn("Progress", ".status.progress.percent", "integer", priority=1),
            PrinterColumn("Message", ".status.message", priority=1),
            AGE,
        ),
        (".spec.instanceRef.name",),
        BACKUP_JOB,
    ),
    Kind(
        "RestoreJob",
        "restorejobs",
        ("rjob",),
        RestoreJobSpec,
        RestoreJobStatus,
        "A restore of one database to a point in time, an LSN, a recovery point or the latest.",
        (
            PrinterColumn("Source", ".spec.source.protectedDatabase"),
            PrinterColumn("Target", ".spec.target.database.databaseName"),
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Step", ".status.currentStep", "integer"),
            PrinterColumn("Progress", ".status.progress.percent", "integer"),
            PrinterColumn("Message", ".status.message", priority=1),
            AGE,
        ),
        (),
        RESTORE_JOB,
    ),
)

KINDS_BY_NAME: dict[str, Kind] = {k.kind: k for k in KINDS}

__all__ = [
    "GROUP",
    "KINDS",
    "KINDS_BY_NAME",
    "VERSION",
    "BackupJob",
    "BackupPolicy",
    "BackupVault",
    "Kind",
    "ObjectMeta",
    "PrinterColumn",
    "ProtectedDatabase",
    "Resource",
    "RestoreJob",
    "SqlInstance",
]
