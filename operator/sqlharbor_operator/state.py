"""The operator's in-memory view of every watched object, fed by kopf's watch events.

Handlers write into it; the controller reads it.  Nothing here talks to the API server, so
the scheduler's tick never lists anything: with 10,000 protected databases a tick is a walk
over dictionaries.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from sqlharbor.api import (
    BackupJob,
    BackupPolicy,
    BackupVault,
    ProtectedDatabase,
    ProtectedDatabaseStatus,
    RestoreJob,
    SqlInstance,
)
from sqlharbor.api.contract import LeaseInfo

Key = tuple[str, str]  # (namespace, name)

#: What the state never reads of an object's metadata and costs most to keep: the server's
#: field ownership (5-6 KB per object) and kubectl's copy of the whole applied object.
_UNREAD_METADATA = ("managedFields",)
_UNREAD_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)

MODELS: dict[str, Any] = {
    "BackupVault": BackupVault,
    "BackupPolicy": BackupPolicy,
    "SqlInstance": SqlInstance,
    "ProtectedDatabase": ProtectedDatabase,
    "BackupJob": BackupJob,
    "RestoreJob": RestoreJob,
}


@dataclass
class State:
    vaults: dict[Key, BackupVault] = field(default_factory=dict)
    policies: dict[Key, BackupPolicy] = field(default_factory=dict)
    instances: dict[Key, SqlInstance] = field(default_factory=dict)
    databases: dict[Key, ProtectedDatabase] = field(default_factory=dict)
    jobs: dict[Key, BackupJob] = field(default_factory=dict)
    restores: dict[Key, RestoreJob] = field(default_factory=dict)
    leases: dict[Key, LeaseInfo] = field(default_factory=dict)  # (namespace, agent id)
    #: ProtectedDatabase → the job that covers it, from creation until it is accounted.
    busy: dict[Key, str] = field(default_factory=dict)
    accounted: set[str] = field(default_factory=set)  # job uids folded into status
    invalid: dict[Key, str] = field(default_factory=dict)  # objects that failed to parse
    #: ProtectedDatabase statuses the controller changed (a backup folded in, retention)
    #: and has not written yet: a watch event carrying the server's older status must not
    #: undo them (the job they came from is accounted once, never again).
    unwritten: dict[Key, ProtectedDatabaseStatus] = field(default_factory=dict)
    #: ProtectedDatabase → no backup is dispatched before then (after a failure).
    retry_after: dict[Key, datetime] = field(default_factory=dict)
    #: True once every kind was listed at start-up (``tick.Controller.load``): before that
    #: a missing object may only not be seen yet.
    loaded: bool = False
    #: Objects whose deletion was watched while the state was (re)loading: a page listed
    #: before the deletion must not bring them back.
    removed_while_loading: set[tuple[str, Key]] = field(default_factory=set)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def table(self, kind: str) -> dict[Key, Any]:
        tables: dict[str, dict[Key, Any]] = {
            "BackupVault": self.vaults,
            "BackupPolicy": self.policies,
            "SqlInstance": self.instances,
            "ProtectedDatabase": self.databases,
            "BackupJob": self.jobs,
            "RestoreJob": self.restores,
        }
        return tables[kind]

    def upsert(self, kind: str, body: dict[str, Any]) -> Any:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        try:
            obj = MODELS[kind].model_validate(_slim(body))
        except ValidationError as exc:
            self.invalid[key] = f"{kind} {key[1]}: {exc.errors()[0]['msg']}"
            return None
        self.invalid.pop(key, None)
        if kind == "ProtectedDatabase" and key in self.unwritten:
            obj = obj.model_copy(update={"status": self.unwritten[key]})
        self.table(kind)[key] = obj
        self.wakeup.set()
        return obj

    def add_created(self, kind: str, body: dict[str, Any]) -> Any:
        """What a create call returned, unless the watch got there first: its events run on
        the event loop while the call is in flight, so what it holds may already be newer
        (a BackupJob the agent finished at once)."""
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        held = self.table(kind).get(key)
        return held if held is not None else self.upsert(kind, body)

    def set_status(self, key: Key, status: ProtectedDatabaseStatus) -> None:
        """A ProtectedDatabase status change not yet on the server (``status_writes``)."""
        pd = self.databases.get(key)
        if pd is not None:
            self.databases[key] = pd.model_copy(update={"status": status})
            self.unwritten[key] = status

    def forget(self) -> None:
        """Drop everything but the agents' Leases (kept current by their own watch) before
        a reload: what this replica computed while it led may be stale now that another
        led in between (``tick.Controller``)."""
        for kind in MODELS:
            self.table(kind).clear()
        self.busy.clear()
        self.accounted.clear()
        self.invalid.clear()
        self.unwritten.clear()
        self.retry_after.clear()
        self.loaded = False

    def mark_busy(self) -> None:
        """Every database of an unfinished BackupJob is busy: after a start-up or a
        takeover, what an earlier leader dispatched is not dispatched again."""
        for (namespace, name), job in self.jobs.items():
            phase = job.status.phase if job.status else None
            if phase is not None and phase.finished:
                continue
            for entry in job.spec.databases:
                if entry.protected_database:
                    self.busy.setdefault((namespace, entry.protected_database), name)

    def remove(self, kind: str, namespace: str, name: str) -> None:
        if not self.loaded:
            self.removed_while_loading.add((kind, (namespace, name)))
        self.table(kind).pop((namespace, name), None)
        if kind == "ProtectedDatabase":
            self.unwritten.pop((namespace, name), None)
        self.wakeup.set()


def _slim(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without the metadata the operator never reads (``_UNREAD_*``): at 10,000
    ProtectedDatabases that is a third of what the state holds."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if not any(k in meta for k in _UNREAD_METADATA) and not any(
        k in annotations for k in _UNREAD_ANNOTATIONS
    ):
        return body
    slim = {k: v for k, v in meta.items() if k not in _UNREAD_METADATA}
    if annotations:
        slim["annotations"] = {k: v for k, v in annotations.items() if k not in _UNREAD_ANNOTATIONS}
    return {**body, "metadata": slim}
