"""Auto-protection: ProtectedDatabases the operator creates for databases an agent
discovered on an instance with ``spec.autoProtection.enabled``.  ``to_create`` is pure;
``AutoProtector`` (called by the tick) creates what it returns and posts an Event.

Skipped: tempdb and model (never backed up), names matching ``exclude`` (fnmatch), and
databases that already have a ProtectedDatabase for that instance (whoever made it).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from sqlharbor.api import API_VERSION, ProtectedDatabase, SqlInstance, contract
from sqlharbor.errors import SqlHarborError
from sqlharbor_operator.runtime import Runtime

log = logging.getLogger(__name__)

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


class AutoProtector:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def tick(self) -> None:
        state = self._rt.state
        for (ns, _), instance in list(state.instances.items()):
            existing = [pd for (pns, _), pd in state.databases.items() if pns == ns]
            for body in to_create(instance, existing):
                database = body["spec"]["databaseName"]
                try:
                    created = await self._rt.api.create("ProtectedDatabase", ns, body)
                except SqlHarborError as exc:
                    log.info("auto-protection of %s: %s", database, exc)
                    continue
                pd = state.add_created("ProtectedDatabase", created)
                if pd is not None:
                    note = (
                        f"database {database!r} discovered on {instance.metadata.name} "
                        "is now protected"
                    )
                    await self._rt.event(pd, "AutoProtected", note, "Normal")
