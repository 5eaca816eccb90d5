"""The catalog: a compact, rebuildable index of a vault's recovery points.

One-minute log backups make 525,600 recovery points a year per database; a restore
plan must not list or read their manifests.  Per database the catalog keeps append
blobs of JSON lines (one line per point, a few hundred bytes):

* ``catalog/points/<yyyymmdd>.jsonl``: every point that finished that UTC day;
* ``catalog/bases/<yyyy>.jsonl``: the fulls and differentials that finished that year;

and per vault ``.sqlharbor/databases/<instance>/<guid>.json`` so a new cluster can find
every database after losing the old one.  ``RecoveryPointWriter.commit`` appends after
the manifest is written; retention appends a tombstone line after deleting a point.
``list_points`` reads one listing plus the day segments in range; ``base_before`` and
``window`` read one listing and usually one or two segments.  The manifests stay the
truth: ``rebuild`` regenerates a database's segments from them, dropping entries whose
manifest is gone and adding what the index missed.

Called by the vault facade, the operator (status: recovery window), the restore
planner and the CLI.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlharbor.domain.backupset import BackupType, RecoveryPoint
from sqlharbor.errors import BlobNotFound, IntegrityError, InvalidInput
from sqlharbor.vault.catalog_lines import (
    Check,
    day,
    entry_line,
    parse_segment,
    sort_key,
    tombstone_line,
)
from sqlharbor.vault.endorsement import Endorsement, Endorser
from sqlharbor.vault.layout import Layout, decode_component, segment_key
from sqlharbor.vault.manifest import Manifest
from sqlharbor.vault.manifest_read import read_manifest
from sqlharbor.vault.reader import data_blobs
from sqlharbor.vault.store import BlobStore

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MAX_APPEND_BYTES = 4 * 1024 * 1024
_BASES = frozenset({BackupType.FULL, BackupType.DIFFERENTIAL})


# -- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseEntry:
    """A database the vault holds recovery points of."""

    instance: str
    database_name: str
    database_guid: str


@dataclass(frozen=True)
class CatalogSpan:
    """``earliest_full``: the oldest full (nothing restores before its finish);
    ``latest``: the newest recovery point.  Both None for an empty catalog."""

    earliest_full: RecoveryPoint | None
    latest: RecoveryPoint | None


@dataclass(frozen=True)
class RebuildReport:
    points: int
    segments_written: int
    segments_removed: int
    unreadable_manifests: tuple[str, ...]


# -- the catalog -------------------------------------------------------------------------


class Catalog:
    """Reads and appends the index; ``parallelism`` bounds concurrent blob reads."""

    def __init__(
        self,
        store: BlobStore,
        layout: Layout,
        *,
        parallelism: int = 8,
        endorser: Endorser | None = None,
    ):
        self._store = store
        self._layout = layout
        self._parallelism = parallelism
        self._registered: set[DatabaseEntry] = set()
        self._endorsement = Endorsement(store, layout, endorser)

    @property
    def endorsement(self) -> Endorsement:
        """Which lines count, and the vault's marker (``vault.endorsement``)."""
        return self._endorsement

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        workers = min(self._parallelism, len(items))
        with ThreadPoolExecutor(workers, thread_name_prefix="vault-catalog") as pool:
            return list(pool.map(fn, items))

    # -- writing ------------------------------------------------------------------

    def add(self, manifest: Manifest) -> None:
        """Index one committed recovery point (called after its manifest is written)."""
        ident = manifest.identity
        self.register(ident.scope.name, manifest.backup.database_name, ident.database_id)
        self.add_points(ident.scope.name, [manifest.recovery_point()])

    def add_points(self, instance: str, points: Iterable[RecoveryPoint]) -> None:
        """Append many points, one append per segment touched (bulk import, rebuild)."""
        lines: dict[str, list[bytes]] = {}
        for point in points:
            line = entry_line(point, self._endorsement.seal(instance, point.record.database_guid))
            for name in self._segments_of(instance, point):
                lines.setdefault(name, []).append(line)
        self._map(lambda item: self._append_lines(*item), list(lines.items()))

    def delete_point(self, instance: str, database_guid: str, recovery_point_id: str) -> bool:
        """Delete a recovery point without the key: the manifest FIRST (the point disappears
        at once), then the data blobs of every stripe, then a tombstone in the index.  False
        when it was already gone.  Keeping what retained points depend on is the caller's
        duty."""
        location = self._layout.locate(instance, database_guid, recovery_point_id)
        try:
            body = self._store.get(location.manifest_blob)
        except BlobNotFound:
            return False
        manifest = read_manifest(body, location)
        self._store.delete(location.manifest_blob)
        for name in data_blobs(self._layout, manifest):
            self._store.delete(name)
        self.remove(instance, manifest.recovery_point())
        return True

    def remove(self, instance: str, point: RecoveryPoint) -> None:
        """Append tombstones for a deleted point (its manifest is already gone)."""
        line = tombstone_line(
            point.id, self._endorsement.seal(instance, point.record.database_guid)
        )
        for name in self._segments_of(instance, point):
            self._store.append(name, line)

    def register(self, instance: str, database_name: str, database_guid: str) -> None:
        """Record (once per process) that the vault holds this database."""
        entry = DatabaseEntry(instance, database_name, database_guid)
        if entry in self._registered:
            return
        body = json.dumps(
            {"instance": instance, "database_name": database_name, "database_guid": database_guid}
        ).encode()
        self._store.put(self._layout.registry_blob(instance, database_guid), body)
        self._registered.add(entry)

    def _segments_of(self, instance: str, point: RecoveryPoint) -> list[str]:
        guid = point.record.database_guid
        finish = point.record.finish
        names = [self._layout.points_segment(instance, guid, finish)]
        if point.record.backup_type in _BASES:
            names.append(self._layout.bases_segment(instance, guid, finish.astimezone(UTC).year))
        return names

    def _append_lines(self, name: str, lines: list[bytes]) -> None:
        piece: list[bytes] = []
        size = 0
        for line in lines:
            if piece and size + len(line) > MAX_APPEND_BYTES:
                self._store.append(name, b"".join(piece))
                piece, size = [], 0
            piece.append(line)
            size += len(line)
        if piece:
            self._store.append(name, b"".join(piece))

    # -- reading ----------------------------------------------------------------

    def _segment_names(self, directory: str) -> list[str]:
        return sorted(b.name for b in self._store.list(directory) if b.name.endswith(".jsonl"))

    def _read_segment(self, name: str, check: Check | None) -> dict[str, RecoveryPoint]:
        try:
            return parse_segment(self._store.get(name), name=name, check=check)
        except BlobNotFound:
            return {}  # removed by a concurrent rebuild

    def _read_segments(self, names: Sequence[str], check: Check | None) -> list[RecoveryPoint]:
        points: dict[str, RecoveryPoint] = {}
        for segment in self._map(lambda name: self._read_segment(name, check), names):
            points.update(segment)
        return sorted(points.values(), key=sort_key)

    def list_points(
        self,
        instance: str,
        database_guid: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        verify: bool = False,
    ) -> list[RecoveryPoint]:
        """Points that finished in [since, until] (UTC, inclusive), oldest first.

        Reads one listing and only the day segments in range.  With ``verify``, also
        checks every point's manifest and drops the ones that are gone (costly).
        """
        names = self._segment_names(self._layout.points_dir(instance, database_guid))
        low = day(since) if since else ""
        high = day(until) if until else "99999999"
        chosen = [n for n in names if low <= segment_key(n) <= high]
        points = [
            p
            for p in self._read_segments(chosen, self._endorsement.check(instance, database_guid))
            if (since is None or p.record.finish >= since)
            and (until is None or p.record.finish <= until)
        ]
        return self._existing(instance, points) if verify else points

    def _existing(self, instance: str, points: list[RecoveryPoint]) -> list[RecoveryPoint]:
        def exists(point: RecoveryPoint) -> bool:
            name = self._layout.manifest_blob(instance, point.record.database_guid, point.id)
            return self._store.exists(name)

        present = self._map(exists, points)
        return [p for p, ok in zip(points, present, strict=True) if ok]

    def bases(
        self,
        instance: str,
        database_guid: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[RecoveryPoint]:
        """Fulls and differentials that finished in [since, until], oldest first."""
        names = self._segment_names(self._layout.bases_dir(instance, database_guid))
        low = f"{since.astimezone(UTC).year:04d}" if since else ""
        high = f"{until.astimezone(UTC).year:04d}" if until else "9999"
        chosen = [n for n in names if low <= segment_key(n) <= high]
        return [
            p
            for p in self._read_segments(chosen, self._endorsement.check(instance, database_guid))
            if (since is None or p.record.finish >= since)
            and (until is None or p.record.finish <= until)
        ]

    def _scan_bases(
        self, instance: str, database_guid: str, newest_first: bool
    ) -> Iterator[RecoveryPoint]:
        names = self._segment_names(self._layout.bases_dir(instance, database_guid))
        check = self._endorsement.check(instance, database_guid)
        for name in reversed(names) if newest_first else names:
            points = sorted(self._read_segment(name, check).values(), key=sort_key)
            yield from reversed(points) if newest_first else points

    def base_before(
        self,
        instance: str,
        database_guid: str,
        at: datetime,
        *,
        types: frozenset[BackupType] = _BASES,
        include_copy_only: bool = True,
    ) -> RecoveryPoint | None:
        """The latest full/differential that finished at or before ``at``."""
        for point in self._scan_bases(instance, database_guid, newest_first=True):
            r = point.record
            if (
                r.finish <= at
                and r.backup_type in types
                and (include_copy_only or not r.is_copy_only)
            ):
                return point
        return None

    def window(self, instance: str, database_guid: str) -> CatalogSpan:
        """The oldest full and the newest recovery point."""
        earliest = next(
            (
                p
                for p in self._scan_bases(instance, database_guid, newest_first=False)
                if p.record.backup_type is BackupType.FULL
            ),
            None,
        )
        latest = None
        check = self._endorsement.check(instance, database_guid)
        for name in reversed(self._segment_names(self._layout.points_dir(instance, database_guid))):
            segment = self._read_segment(name, check)
            if segment:
                latest = max(segment.values(), key=sort_key)
                break
        return CatalogSpan(earliest_full=earliest, latest=latest)

    def databases(self) -> list[DatabaseEntry]:
        """Every database the vault holds, from the vault's own registry."""
        directory = self._layout.registry_dir()
        names = [b.name for b in self._store.list(directory) if b.name.endswith(".json")]

        def read(name: str) -> DatabaseEntry | None:
            try:
                doc = json.loads(self._store.get(name))
                return DatabaseEntry(doc["instance"], doc["database_name"], doc["database_guid"])
            except BlobNotFound:
                return None
            except (ValueError, KeyError, TypeError):
                encoded_instance = name[len(directory) :].split("/", 1)[0]
                log.warning(
                    "unreadable registry entry for instance %s", decode_component(encoded_instance)
                )
                return None

        entries = [e for e in self._map(read, names) if e is not None]
        return sorted(entries, key=lambda e: (e.instance, e.database_name, e.database_guid))

    # -- rebuild ----------------------------------------------------------------

    def rebuild(
        self, instance: str, database_guid: str, *, trust_manifests: bool = False
    ) -> RebuildReport:
        """Regenerate the database's segments from its manifests alone.

        Run it when no writer of this database is committing (a point committed during
        the rebuild may be missed; run it again).  Segments are rewritten one by one.  In
        a vault that requires endorsement it would endorse every manifest it finds, one
        an agent planted too: refused unless ``trust_manifests`` says that was reviewed.
        """
        if self._endorsement.sealing and self._endorsement.required() and not trust_manifests:
            raise InvalidInput(
                "rebuilding an endorsed catalog from manifests would endorse any manifest "
                "an agent wrote; pass trust_manifests=True after reviewing them"
            )
        layout = self._layout
        manifest_names = [
            b.name
            for b in self._store.list(layout.database_dir(instance, database_guid))
            if layout.parse_manifest_blob(b.name) is not None
        ]
        manifests = self._map(
            lambda name: self._load_manifest(instance, database_guid, name), manifest_names
        )
        good = [m for m in manifests if isinstance(m, Manifest)]
        bad = tuple(name for name, m in zip(manifest_names, manifests, strict=True) if m is None)
        points = sorted((m.recovery_point() for m in good), key=sort_key)
        wanted: dict[str, list[bytes]] = {}
        seal = self._endorsement.seal(instance, database_guid)
        for point in points:
            line = entry_line(point, seal)
            for name in self._segments_of(instance, point):
                wanted.setdefault(name, []).append(line)
        existing = self._segment_names(layout.points_dir(instance, database_guid))
        existing += self._segment_names(layout.bases_dir(instance, database_guid))
        stale = [n for n in existing if n not in wanted]
        self._map(self._store.delete, stale)

        def rewrite(item: tuple[str, list[bytes]]) -> None:
            self._store.delete(item[0])
            self._append_lines(*item)

        self._map(rewrite, list(wanted.items()))
        if good:
            newest = max(good, key=lambda m: m.backup.finish).backup.database_name
            self._registered.discard(DatabaseEntry(instance, newest, database_guid))
            self.register(instance, newest, database_guid)
        return RebuildReport(len(points), len(wanted), len(stale), bad)

    def _load_manifest(self, instance: str, database_guid: str, name: str) -> Manifest | None:
        point_id = self._layout.parse_manifest_blob(name)
        assert point_id is not None  # listed because it parses
        location = self._layout.locate(instance, database_guid, point_id)
        try:
            if location.manifest_blob != name:
                raise IntegrityError(f"{name} is not where recovery point {point_id} belongs")
            return read_manifest(self._store.get(name), location)
        except BlobNotFound:
            return None
        except IntegrityError as exc:
            log.warning("skipping unreadable manifest %s: %s", name, exc)
            return None
