"""Auto-protection: ProtectedDatabases the operator should create for databases an agent
discovered on an instance with ``spec.autoProtection.enabled``.  Pure; the controller
creates what this returns.

Skipped: tempdb and model (never backed up), names matching ``exclude`` (fnmatch), and
databases that already have a ProtectedDatabase for that instance (whoever made it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from sqlharbor.api import API_VERSION, ProtectedDatabase, SqlInstance, contract

NEVER = {"tempdb", "model"}


def resource_name(instance: str, database: str) -> str:
    """A valid, stable object name for any database name (quotes, spaces, unicode...)."""
    slug = re.sub(r"[^a-z0-9]+", "-", database.lower()).strip("-")[:40] or "db"
    digest = hashlib.sha256(database.encode()).hexdigest()[:6]
    return f"{instance[:180]}-{slug}-{digest}"


def to_create(instance: SqlInstance, existing: Iterable[ProtectedDatabase]) -> list[dict[str, Any]]:
    spec = instance.spec.auto_protection
    if spec is None or not spec.enabled or spec.policy_ref is None or instance.status is None:
        return []
    name = instance.metadata.name
    protected = {pd.spec.database_name for pd in existing if pd.spec.instance_ref.name == name}
    bodies = []
    for db in instance.status.databases:
        if db.name.lower() in NEVER or db.name in protected:
            continue
        if any(fnmatchcase(db.name, pattern) for pattern in spec.exclude):
            continue
        pd_spec: dict[str, Any] = {
            "instanceRef": {"name": name},
            "databaseName": db.name,
            "policyRef": {"name": spec.policy_ref.name},
        }
        if spec.vault_ref is not None:
            pd_spec["vaultRef"] = {"name": spec.vault_ref.name}
        bodies.append(
            {
                "apiVersion": API_VERSION,
                "kind": "ProtectedDatabase",
                "metadata": {
                    "name": resource_name(name, db.name),
                    "namespace": instance.metadata.namespace,
                    "labels": {
                        contract.LABEL_AUTO_PROTECTED: contract.truthy_label(),
                        contract.LABEL_INSTANCE: name,
                    },
                },
                "spec": pd_spec,
            }
        )
    return bodies
