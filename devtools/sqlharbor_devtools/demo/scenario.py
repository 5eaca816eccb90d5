"""The demo's resources: a vault on Azurite, a fast policy (full every 5 minutes,
differential every 2, log every 30 s), two simulated instances and their databases, and
the workload's rhythm: busy, then idle long enough for two or three log backups in a row
to find no log (empty log backups, as an idle SQL Server database gets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlharbor.api import API_VERSION, SqlInstanceSpec


@dataclass(frozen=True)
class DemoInstance:
    name: str
    host: str
    instance_name: str
    databases: dict[str, str]  # name -> recovery model

    @property
    def vault_identity(self) -> str:
        spec = SqlInstanceSpec(host=self.host, instance_name=self.instance_name)
        return spec.vault_identity


INSTANCES = (
    DemoInstance(
        "sim-a",
        "demo-vm1",
        "MSSQLSERVER",
        {"sales": "FULL", "inventory": "FULL", "reporting": "SIMPLE"},
    ),
    DemoInstance("sim-b", "demo-vm2", "SQL2", {"hr": "FULL", "finance": "FULL"}),
)


#: (busy seconds, idle seconds) of the demo's workloads: 75 s of quiet holds at least one
#: whole 30 s log interval after the one that takes the last busy log (usually two)
WORKLOAD_IDLE = (120.0, 75.0)


def _obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def vault(name: str = "demo-vault", container: str = "sqlharbor-demo") -> dict[str, Any]:
    return _obj(
        "BackupVault",
        name,
        {
            "azureBlob": {
                "container": container,
                "prefix": "demo",
                "credentials": {"secretRef": {"name": "vault-storage", "key": "connectionString"}},
            },
            "encryption": {"keySecretRef": {"name": "vault-kek", "key": "kek"}},
        },
    )


def policy(
    name: str = "demo-fast",
    vault_name: str = "demo-vault",
    *,
    full: str = "*/5 * * * *",
    differential: str | None = "*/2 * * * *",
    log: str | None = "30s",
) -> dict[str, Any]:
    schedules: dict[str, Any] = {"full": {"schedule": full}}
    if differential:
        schedules["differential"] = {"schedule": differential}
    if log:
        schedules["log"] = {"interval": log}
    return _obj(
        "BackupPolicy",
        name,
        {
            "vaultRef": {"name": vault_name},
            "schedules": schedules,
            "retention": {"daily": {"count": 7}, "weekly": {"count": 4}, "logDays": 7},
            "compression": {"algorithm": "zstd", "level": 3},
        },
    )


def instance(inst: DemoInstance) -> dict[str, Any]:
    return _obj(
        "SqlInstance",
        inst.name,
        {"host": inst.host, "instanceName": inst.instance_name, "engine": "simulated"},
    )


def protected_database(
    instance_name: str, database: str, policy_name: str = "demo-fast"
) -> dict[str, Any]:
    return _obj(
        "ProtectedDatabase",
        f"{instance_name}-{database}",
        {
            "instanceRef": {"name": instance_name},
            "databaseName": database,
            "policyRef": {"name": policy_name},
        },
    )


def all_resources() -> list[dict[str, Any]]:
    docs = [vault(), policy()]
    for inst in INSTANCES:
        docs.append(instance(inst))
        docs.extend(protected_database(inst.name, db) for db in inst.databases)
    return docs
