"""Turn a RestoreJob's source and point in time into a plan read from the vault's catalog.

Shared by the operator (``sqlharbor_operator.restores`` plans every new RestoreJob) and the
CLI (``sqlharbor points`` / ``sqlharbor restore``).  Reading the catalog needs only the
vault's storage credentials, never the key-encryption key.  Everything here is plain
functions over a ``Catalog``; the caller supplies how Secrets are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlharbor.api import BackupVault
from sqlharbor.api.jobs import PlanStep, RestorePlanStatus, RestorePoint
from sqlharbor.domain.backupset import BackupType, RecoveryPoint
from sqlharbor.domain.planner import (
    AtLsn,
    AtRecoveryPoint,
    AtTime,
    Latest,
    RestorePlan,
    RestoreTarget,
    plan_restore,
    recovery_window,
)
from sqlharbor.errors import ErrorCode, InvalidInput, SourceNotFound
from sqlharbor.vault import Catalog, DatabaseEntry, Layout
from sqlharbor.vault.endorsement import Endorser
from sqlharbor.vault.keyring import Keyring
from sqlharbor.vault_access import SecretReader, open_store


class CatalogReader(Protocol):
    """The part of ``sqlharbor.vault.Catalog`` planning reads."""

    def databases(self) -> list[DatabaseEntry]: ...

    def list_points(
        self,
        instance: str,
        database_guid: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        verify: bool = False,
    ) -> list[RecoveryPoint]: ...


def open_catalog(
    vault: BackupVault, read_secret: SecretReader, keys: Keyring | None = None
) -> Catalog:
    """The vault's catalog with its management credential; with the vault's ``keys`` it
    also applies catalog endorsement (``vault.endorsement``), without them it checks none."""
    endorser = Endorser(keys.keys) if keys is not None else None
    return Catalog(
        open_store(vault, read_secret), Layout(vault.spec.azure_blob.prefix), endorser=endorser
    )


@dataclass(frozen=True)
class SourceIdentity:
    """A database as the vault knows it: instance identity and one or more incarnations."""

    instance: str
    database_name: str
    guids: tuple[str, ...]


def find_source(
    catalog: CatalogReader,
    instance: str,
    *,
    database_name: str | None = None,
    database_guid: str | None = None,
    known_guid: str | None = None,
) -> SourceIdentity:
    """Every incarnation (GUID) of the database on ``instance`` the vault's registry holds.

    By GUID: exactly that incarnation.  By name: every GUID registered under that name
    (a database overwritten by a restore has a new GUID; the older backups still count).
    """
    entries: Sequence[DatabaseEntry] = [e for e in catalog.databases() if e.instance == instance]
    if database_guid is not None:
        chosen = [e for e in entries if e.database_guid.lower() == database_guid.lower()]
    else:
        chosen = [
            e
            for e in entries
            if (database_name is not None and e.database_name == database_name)
            or (known_guid is not None and e.database_guid.lower() == known_guid.lower())
        ]
    if not chosen:
        what = f"GUID {database_guid}" if database_guid else f"name {database_name!r}"
        names = sorted({e.database_name for e in entries})[:10]
        raise SourceNotFound(
            f"the vault holds no database with {what} on instance {instance!r} "
            f"(databases there: {', '.join(names) or 'none'})"
        )
    guids = tuple(dict.fromkeys(e.database_guid for e in chosen))
    return SourceIdentity(instance, database_name or chosen[0].database_name, guids)


def load_points(catalog: CatalogReader, source: SourceIdentity) -> list[RecoveryPoint]:
    """Every recovery point of every incarnation of the source, oldest first."""
    points: list[RecoveryPoint] = []
    for guid in source.guids:
        points.extend(catalog.list_points(source.instance, guid))
    points.sort(key=lambda p: (p.record.finish, p.id))
    return points


def parse_time(text: str) -> datetime:
    """RFC 3339 (UTC unless an offset is given)."""
    cleaned = text.strip().replace("t", "T").replace("z", "Z")
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not an RFC 3339 time", code=ErrorCode.INVALID_RESTORE_POINT
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def target_of(point: RestorePoint, guid: str | None = None) -> RestoreTarget:
    if point.time is not None:
        return AtTime(parse_time(point.time))
    if point.lsn is not None:
        return AtLsn(int(point.lsn), guid, point.recovery_fork)
    if point.recovery_point_id is not None:
        return AtRecoveryPoint(point.recovery_point_id)
    return Latest()


def plan(
    points: Sequence[RecoveryPoint], point: RestorePoint, guid: str | None = None
) -> RestorePlan:
    """``plan_restore`` for an API ``RestorePoint``; ``PlanError`` names the nearest times."""
    return plan_restore(points, target_of(point, guid))


def plan_status(plan: RestorePlan, instance: str, database_name: str) -> RestorePlanStatus:
    """The plan as RestoreJob status."""
    steps = [
        PlanStep(
            recovery_point_id=p.id,
            backup_type=p.record.backup_type,
            first_lsn=str(p.record.first_lsn),
            last_lsn=str(p.record.last_lsn),
            finish=p.record.finish,
            bytes_stored=p.record.size_bytes,
        )
        for p in plan.steps
    ]
    return RestorePlanStatus(
        instance=instance,
        database_guid=plan.database_guid,
        database_name=database_name,
        steps=steps,
        stop_at=plan.stop_time,
        stop_at_lsn=None if plan.stop_lsn is None else str(plan.stop_lsn),
        bytes_total=plan.total_bytes,
    )


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def windows(points: Sequence[RecoveryPoint]) -> list[Window]:
    """The restorable time intervals, oldest first (a log gap splits them)."""
    return [Window(w.start, w.end) for w in recovery_window(points)]


class KeyChecker(Protocol):
    def opens(self, point: RecoveryPoint) -> bool: ...


def split_readable(
    points: Sequence[RecoveryPoint], keys: KeyChecker
) -> tuple[list[RecoveryPoint], list[RecoveryPoint]]:
    """(points a listed key opens, points under a key the vault does not list)."""
    readable = [p for p in points if keys.opens(p)]
    unreadable = [p for p in points if not keys.opens(p)]
    return readable, unreadable


def unreadable_note(unreadable: Sequence[RecoveryPoint]) -> str:
    """``N point(s) under key K ... are unreadable``, or "" when there are none."""
    if not unreadable:
        return ""
    keys = sorted({p.key.describe() for p in unreadable if p.key is not None})
    return (
        f"{len(unreadable)} recovery point(s) are unreadable: wrapped with "
        f"{', '.join(keys)}, which the vault does not list (spec.encryption.previousKeys)"
    )


def describe_point(point: RecoveryPoint) -> str:
    r = point.record
    kind = {BackupType.FULL: "Full", BackupType.DIFFERENTIAL: "Diff", BackupType.LOG: "Log"}
    copy = " (copy-only)" if r.is_copy_only else ""
    unauthenticated = "" if point.authenticated else "  [version 1: unauthenticated]"
    return (
        f"{point.id}  {kind[r.backup_type]:<4} {r.finish.astimezone(UTC).isoformat()}  "
        f"LSN {r.first_lsn}..{r.last_lsn}  {r.size_bytes} B{copy}{unauthenticated}"
    )


__all__ = [
    "CatalogReader",
    "KeyChecker",
    "SecretReader",
    "SourceIdentity",
    "Window",
    "describe_point",
    "find_source",
    "load_points",
    "open_catalog",
    "parse_time",
    "plan",
    "plan_status",
    "split_readable",
    "target_of",
    "unreadable_note",
    "windows",
]
