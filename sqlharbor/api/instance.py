"""``SqlInstance``: one SQL Server instance on one VM, the unit an agent serves.  Spec by the
user (or by the agent's registration); status by the agent."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import ConfigDict, Field

from sqlharbor.api._base import (
    ApiModel,
    Condition,
    ErrorInfo,
    LocalObjectReference,
    SecretKeyReference,
    StatusModel,
    cel,
    validations,
)
from sqlharbor.domain.backupset import DatabaseState, RecoveryModel


class EngineKind(enum.StrEnum):
    SQLSERVER = "sqlserver"
    SIMULATED = "simulated"


class Authentication(enum.StrEnum):
    SQL = "sql"
    INTEGRATED = "integrated"


class ConnectionSpec(ApiModel):
    """How the agent connects to the instance (it runs on the same VM)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.authentication != 'sql' || has(self.credentialsSecretRef)",
                "connection.credentialsSecretRef is required with authentication: sql",
                ".credentialsSecretRef",
            )
        )
    )

    driver: str = Field(
        default="ODBC Driver 18 for SQL Server", description="ODBC driver name.", max_length=128
    )
    port: int | None = Field(
        default=None, description="TCP port; omit to use the instance name.", ge=1, le=65535
    )
    authentication: Authentication = Field(
        default=Authentication.INTEGRATED,
        description="integrated (the agent's OS identity) or sql (login and password).",
    )
    credentials_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description="Secret key holding 'user:password' for SQL authentication.",
    )
    encrypt: bool = Field(default=True, description="Encrypt the connection (TLS).")
    trust_server_certificate: bool = Field(
        default=False, description="Accept the server's certificate without validation."
    )


class AutoProtection(ApiModel):
    """Protect new databases on this instance without a human."""

    enabled: bool = Field(default=False, description="Create ProtectedDatabases automatically.")
    policy_ref: LocalObjectReference | None = Field(
        default=None, description="Policy for automatically protected databases."
    )
    vault_ref: LocalObjectReference | None = Field(
        default=None, description="Vault override for automatically protected databases."
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Database names (fnmatch patterns) never auto-protected.",
        max_length=256,
    )


class SqlInstanceSpec(ApiModel):
    """One SQL Server instance and how to reach it."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.autoProtection) || !self.autoProtection.enabled || "
                "has(self.autoProtection.policyRef)",
                "autoProtection.policyRef is required when autoProtection.enabled is true",
                ".autoProtection.policyRef",
            )
        )
    )

    host: str = Field(
        description="The VM's host name, as the agent on it reports it.",
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$",
    )
    instance_name: str = Field(
        default="MSSQLSERVER",
        description="SQL Server instance name (MSSQLSERVER is the default instance).",
        min_length=1,
        max_length=16,
        pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$",
    )
    agent: str | None = Field(
        default=None,
        description=(
            "The enrolled agent (kubectl sqlharbor agent enroll) that serves this instance: "
            "only its identity may claim this instance's jobs and write its status. Unset: "
            "no agent may."
        ),
        min_length=1,
        max_length=47,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
    )
    engine: EngineKind = Field(
        default=EngineKind.SQLSERVER,
        description="sqlserver, or simulated (the stand-in used by demos and tests).",
    )
    connection: ConnectionSpec = Field(
        default_factory=ConnectionSpec, description="How the agent connects."
    )
    max_concurrent_backups: int = Field(
        default=20, description="Backups the agent runs at once on this VM.", ge=1, le=64
    )
    auto_protection: AutoProtection | None = Field(
        default=None, description="Protect new databases automatically."
    )

    @property
    def vault_identity(self) -> str:
        """How the vault names this instance: HOST, or HOST\\INSTANCE for a named one."""
        if self.instance_name.upper() == "MSSQLSERVER":
            return self.host
        return f"{self.host}\\{self.instance_name}"


class AgentInfo(StatusModel):
    """The agent session serving this instance."""

    session_id: str = Field(description="Changes every time the agent process starts.")
    version: str = Field(default="", description="Agent version.")
    hostname: str = Field(default="", description="Host the agent runs on.")
    lease_name: str = Field(default="", description="coordination.k8s.io Lease it renews.")
    started: datetime | None = Field(default=None, description="When this session started.")


class DiscoveredDatabase(StatusModel):
    """A database as the agent last discovered it."""

    name: str = Field(description="Database name.")
    database_guid: str = Field(description="sys.database_recovery_status.database_guid.")
    recovery_model: RecoveryModel = Field(description="FULL, BULK_LOGGED or SIMPLE.")
    state: DatabaseState = Field(description="ONLINE, RESTORING, ...")
    size_bytes: int = Field(default=0, description="Data and log size in bytes.")
    read_only: bool = Field(default=False, description="Whether the database is read-only.")
    availability_group: str | None = Field(default=None, description="AG name, if any.")
    recovery_fork_guid: str | None = Field(
        default=None,
        description="sys.database_recovery_status.recovery_fork_guid: changes when the "
        "database is restored in place.",
    )


class PermissionStatus(StatusModel):
    """Whether the agent's login can back up and restore."""

    ok: bool = Field(description="True when the login has what it needs.")
    login: str = Field(default="", description="The login checked.")
    error: ErrorInfo | None = Field(default=None, description="What is missing and the fix.")


class SqlInstanceStatus(StatusModel):
    """What the agent knows of the instance."""

    agent: AgentInfo | None = Field(default=None, description="The current agent session.")
    sql_version: str | None = Field(default=None, description="SQL Server version string.")
    last_discovery: datetime | None = Field(default=None, description="Last discovery time.")
    database_count: int | None = Field(default=None, description="Databases discovered.")
    databases: list[DiscoveredDatabase] = Field(
        default_factory=list, description="Databases discovered on the instance."
    )
    permissions: PermissionStatus | None = Field(default=None, description="Permission check.")
    observed_generation: int | None = Field(default=None, description="Generation observed.")
    conditions: list[Condition] = Field(default_factory=list, description="Observations.")
