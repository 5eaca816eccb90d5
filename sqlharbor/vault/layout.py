"""Every object-store name the vault uses, built in this one module.

The writer, the reader, the catalog and retention all ask a ``Layout`` for names and
never join strings themselves, so the on-disk shape of the vault lives here::

    <prefix>/<instance>/<database-guid>/<kind>/<recovery-point-id>/data-0000
    <prefix>/<instance>/<database-guid>/<kind>/<recovery-point-id>/data-s01-0000
    <prefix>/<instance>/<database-guid>/<kind>/<recovery-point-id>/manifest.json
    <prefix>/<instance>/<database-guid>/catalog/bases/<yyyy>.jsonl
    <prefix>/<instance>/<database-guid>/catalog/points/<yyyymmdd>.jsonl
    <prefix>/.sqlharbor/databases/<instance>/<database-guid>.json

Instance names (``HOST\\INSTANCE``) are encoded reversibly: every character outside
``[A-Za-z0-9._-]`` (and a leading ``.``, which keeps ``.sqlharbor`` reserved) becomes
``~`` plus the two hex digits of each of its UTF-8 bytes.  Recovery point ids sort by
time: ``20261124T180102Z-F-1a2b3c4d`` (UTC second, F/D/L, 8 random hex digits).  The data
of stripe 0 (every point written so far) is in ``data-<part>``; stripe ``n > 0`` (one per
VDI device when a backup is striped) in ``data-s<nn>-<part>``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import InvalidName

MANIFEST_NAME = "manifest.json"
REGISTRY_DIR = ".sqlharbor"

_TYPE_LETTER = {BackupType.FULL: "F", BackupType.DIFFERENTIAL: "D", BackupType.LOG: "L"}
_LETTER_TYPE = {letter: kind for kind, letter in _TYPE_LETTER.items()}
_KIND_DIR = {BackupType.FULL: "full", BackupType.DIFFERENTIAL: "diff", BackupType.LOG: "log"}
_ID_RE = re.compile(r"^(\d{8}T\d{6}Z)-([FDL])-([0-9a-f]{8})$")
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_COMPONENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ENCODED_RE = re.compile(r"~([0-9A-F]{2})")
#: SQL Server writes a backup to at most 64 devices; the vault keeps one stripe per device.
MAX_STRIPES = 64


def encode_component(value: str) -> str:
    """Encode ``value`` (an instance name, say ``HOST\\SQL01``) into one safe name segment."""
    if not value:
        raise InvalidName("an empty name cannot be stored in the vault")
    out: list[str] = []
    for position, char in enumerate(value):
        if char in _SAFE and not (position == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def decode_component(encoded: str) -> str:
    """Invert ``encode_component``."""
    raw = bytearray()
    position = 0
    while position < len(encoded):
        match = _ENCODED_RE.match(encoded, position)
        if match:
            raw.append(int(match.group(1), 16))
            position = match.end()
        else:
            raw.extend(encoded[position].encode("utf-8"))
            position += 1
    return raw.decode("utf-8")


def validate_component(value: str, what: str) -> str:
    """Check a plain segment (a database guid, a recovery point id); return it unchanged."""
    if not _COMPONENT_RE.match(value):
        raise InvalidName(
            f"{what} {value!r} is not a valid vault name segment "
            "(1-128 of letters, digits, '.', '_', '-', starting with a letter or digit)"
        )
    return value


def new_recovery_point_id(backup_type: BackupType, at: datetime | None = None) -> str:
    """A fresh, time-sortable recovery point id such as ``20261124T180102Z-F-1a2b3c4d``."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{_TYPE_LETTER[backup_type]}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class RecoveryPointId:
    """A parsed recovery point id."""

    value: str
    created: datetime
    backup_type: BackupType

    @classmethod
    def parse(cls, value: str) -> RecoveryPointId:
        match = _ID_RE.match(value)
        if not match:
            raise InvalidName(
                f"{value!r} is not a recovery point id (like 20261124T180102Z-F-1a2b3c4d)"
            )
        created = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return cls(value=value, created=created, backup_type=_LETTER_TYPE[match.group(2)])


def kind_dir(backup_type: BackupType) -> str:
    """The ``<kind>`` folder for a backup type (``full``, ``diff``, ``log``)."""
    return _KIND_DIR[backup_type]


@dataclass(frozen=True)
class PointLocation:
    """Where a recovery point's manifest lives: what a reader checks the manifest against."""

    instance: str
    database_guid: str
    recovery_point_id: str
    #: the full object name
    manifest_blob: str
    #: the name relative to the vault prefix (what the manifest's identity records)
    manifest_path: str


@dataclass(frozen=True)
class Layout:
    """Builds names under one vault prefix (``""`` for the container root)."""

    prefix: str = ""

    def __post_init__(self) -> None:
        cleaned = self.prefix.strip("/")
        for segment in cleaned.split("/") if cleaned else []:
            validate_component(segment, "vault prefix segment")
        object.__setattr__(self, "prefix", cleaned)

    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def database_dir(self, instance: str, database_guid: str) -> str:
        """``<prefix>/<instance>/<guid>/``: everything one database owns."""
        guid = validate_component(database_guid, "database guid")
        return f"{self._root()}{encode_component(instance)}/{guid}/"

    def point_dir(self, instance: str, database_guid: str, recovery_point_id: str) -> str:
        parsed = RecoveryPointId.parse(recovery_point_id)
        base = self.database_dir(instance, database_guid)
        return f"{base}{kind_dir(parsed.backup_type)}/{recovery_point_id}/"

    def data_blob(
        self,
        instance: str,
        database_guid: str,
        recovery_point_id: str,
        part: int = 0,
        *,
        stripe: int = 0,
    ) -> str:
        """One part of one stripe's data stream (a blob holds at most 50,000 blocks)."""
        if not 0 <= stripe < MAX_STRIPES or part < 0:
            raise ValueError(f"no data blob for stripe {stripe}, part {part}")
        point = self.point_dir(instance, database_guid, recovery_point_id)
        if stripe == 0:
            return f"{point}data-{part:04d}"
        return f"{point}data-s{stripe:02d}-{part:04d}"

    def manifest_blob(self, instance: str, database_guid: str, recovery_point_id: str) -> str:
        return f"{self.point_dir(instance, database_guid, recovery_point_id)}{MANIFEST_NAME}"

    def locate(self, instance: str, database_guid: str, recovery_point_id: str) -> PointLocation:
        """The manifest's name and what its identity must say to be read from there."""
        name = self.manifest_blob(instance, database_guid, recovery_point_id)
        return PointLocation(
            instance=instance,
            database_guid=database_guid,
            recovery_point_id=recovery_point_id,
            manifest_blob=name,
            manifest_path=name.removeprefix(self._root()),
        )

    def parse_manifest_blob(self, name: str) -> str | None:
        """The recovery point id of a manifest blob name, or None for any other blob."""
        parts = name.rsplit("/", 3)
        if len(parts) != 4 or parts[3] != MANIFEST_NAME or parts[1] not in _KIND_DIR.values():
            return None
        try:
            return RecoveryPointId.parse(parts[2]).value
        except InvalidName:
            return None

    # -- catalog --------------------------------------------------------------------

    def catalog_dir(self, instance: str, database_guid: str) -> str:
        return f"{self.database_dir(instance, database_guid)}catalog/"

    def bases_dir(self, instance: str, database_guid: str) -> str:
        return f"{self.catalog_dir(instance, database_guid)}bases/"

    def bases_segment(self, instance: str, database_guid: str, year: int) -> str:
        """Fulls and differentials that finished in ``year`` (UTC)."""
        return f"{self.bases_dir(instance, database_guid)}{year:04d}.jsonl"

    def points_dir(self, instance: str, database_guid: str) -> str:
        return f"{self.catalog_dir(instance, database_guid)}points/"

    def points_segment(self, instance: str, database_guid: str, day: datetime) -> str:
        """Every recovery point that finished on ``day`` (UTC)."""
        return f"{self.points_dir(instance, database_guid)}{day.astimezone(UTC):%Y%m%d}.jsonl"

    def registry_dir(self) -> str:
        return f"{self._root()}{REGISTRY_DIR}/databases/"

    def endorsement_marker(self) -> str:
        """Present: every catalog line must be endorsed (``vault.endorsement``)."""
        return f"{self._root()}{REGISTRY_DIR}/catalog-endorsed.json"

    def registry_blob(self, instance: str, database_guid: str) -> str:
        guid = validate_component(database_guid, "database guid")
        return f"{self.registry_dir()}{encode_component(instance)}/{guid}.json"


def segment_key(name: str) -> str:
    """The ``yyyy`` / ``yyyymmdd`` of a catalog segment blob name."""
    return name.rsplit("/", 1)[-1].removesuffix(".jsonl")
