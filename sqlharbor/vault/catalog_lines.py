"""The catalog's segment line format: one JSON line per recovery point (``entry_line``), a
tombstone line per deleted point, and the parser that folds a segment into points.

Keys are one or two letters; the fields added with manifest version 2 (recovery forks,
fork point, server, media, backup set uuid, differential base guid, the wrapping key
``w`` and ``ua`` for an unauthenticated version-1 manifest) are written only when they
say something, so a line stays short and lines written before them parse with the
defaults (a line without ``w`` predates it: its key is unknown until a rebuild).

Used by ``vault.catalog`` only; the manifests stay the truth (``Catalog.rebuild``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlharbor.domain.backupset import (
    BackupMedia,
    BackupRecord,
    BackupType,
    MediaFile,
    MediaKind,
    PointKey,
    RecoveryModel,
    RecoveryPoint,
)
from sqlharbor.errors import IntegrityError

log = logging.getLogger(__name__)

_LETTER = {BackupType.FULL: "F", BackupType.DIFFERENTIAL: "D", BackupType.LOG: "L"}
_TYPE = {letter: kind for kind, letter in _LETTER.items()}


#: a line's canonical body (``canonical``) -> its endorsement (``en``)
Seal = Callable[[bytes], list[str]]
#: (a line's canonical body, its ``en`` or None) -> whether the line counts
Check = Callable[[bytes, object], bool]


def canonical(entry: dict[str, Any]) -> bytes:
    """What an endorsement covers: the line's fields but ``en``, keys sorted."""
    body = {k: v for k, v in entry.items() if k != "en"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _sealed(entry: dict[str, Any], seal: Seal | None) -> bytes:
    if seal is not None:
        entry["en"] = seal(canonical(entry))
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def entry_line(point: RecoveryPoint, seal: Seal | None = None) -> bytes:
    """One compact JSON line with every fact of the point (LSNs as decimal strings),
    endorsed with ``seal`` when given."""
    r = point.record
    entry = {
        "id": point.id,
        "t": _LETTER[r.backup_type],
        "n": r.database_name,
        "g": r.database_guid,
        "c": r.is_copy_only,
        "f": str(r.first_lsn),
        "l": str(r.last_lsn),
        "k": str(r.checkpoint_lsn),
        "b": str(r.database_backup_lsn),
        "d": None if r.differential_base_lsn is None else str(r.differential_base_lsn),
        "s": r.start.astimezone(UTC).isoformat(),
        "e": r.finish.astimezone(UTC).isoformat(),
        "m": r.recovery_model.value,
        "z": r.size_bytes,
        "lc": r.begins_log_chain,
        "sid": r.backup_set_id,
    }
    if r.first_recovery_fork_guid:
        entry["rf"] = r.first_recovery_fork_guid
    if r.last_recovery_fork_guid != r.first_recovery_fork_guid:
        entry["rl"] = r.last_recovery_fork_guid
    if r.fork_point_lsn is not None:
        entry["fp"] = str(r.fork_point_lsn)
    if r.server_name:
        entry["sv"] = r.server_name
    if r.backup_set_uuid:
        entry["u"] = r.backup_set_uuid
    if r.differential_base_guid:
        entry["dg"] = r.differential_base_guid
    if r.media is not None:
        entry["md"] = _media_entry(r.media)
    if point.key is not None:
        entry["w"] = [point.key.wrap, point.key.key_id, point.key.key_version]
    if not point.authenticated:
        entry["ua"] = True
    if point.tag:
        entry["at"] = point.tag
    return _sealed(entry, seal)


def _media_entry(media: BackupMedia) -> dict[str, Any]:
    """``{"i": media set id, "p": position, "f": [[name, family, mirror, kind], ...]}``."""
    files = [[f.name, f.family, f.mirror, f.kind.value] for f in media.files]
    return {"i": media.media_set_id, "p": media.position, "f": files}


def _media(entry: dict[str, Any] | None) -> BackupMedia | None:
    if entry is None:
        return None
    return BackupMedia(
        files=tuple(
            MediaFile(name=name, family=family, mirror=mirror, kind=MediaKind(kind))
            for name, family, mirror, kind in entry["f"]
        ),
        position=entry["p"],
        media_set_id=entry["i"],
    )


def tombstone_line(recovery_point_id: str, seal: Seal | None = None) -> bytes:
    return _sealed({"del": recovery_point_id}, seal)


def _point(entry: dict[str, Any]) -> RecoveryPoint:
    diff_base = entry["d"]
    fork_point = entry.get("fp")
    first_fork = entry.get("rf", "")
    record = BackupRecord(
        database_name=entry["n"],
        database_guid=entry["g"],
        backup_type=_TYPE[entry["t"]],
        is_copy_only=entry["c"],
        first_lsn=int(entry["f"]),
        last_lsn=int(entry["l"]),
        checkpoint_lsn=int(entry["k"]),
        database_backup_lsn=int(entry["b"]),
        differential_base_lsn=None if diff_base is None else int(diff_base),
        start=datetime.fromisoformat(entry["s"]),
        finish=datetime.fromisoformat(entry["e"]),
        recovery_model=RecoveryModel(entry["m"]),
        begins_log_chain=entry.get("lc", False),
        size_bytes=entry.get("z", 0),
        backup_set_id=entry.get("sid", ""),
        backup_set_uuid=entry.get("u", ""),
        differential_base_guid=entry.get("dg", ""),
        first_recovery_fork_guid=first_fork,
        last_recovery_fork_guid=entry.get("rl", first_fork),
        fork_point_lsn=None if fork_point is None else int(fork_point),
        server_name=entry.get("sv", ""),
        media=_media(entry.get("md")),
    )
    wrapped = entry.get("w")
    return RecoveryPoint(
        id=entry["id"],
        record=record,
        key=None if wrapped is None else PointKey(*wrapped),
        authenticated=not entry.get("ua", False),
        tag=entry.get("at", ""),
    )


def parse_segment(
    data: bytes, *, name: str = "segment", check: Check | None = None
) -> dict[str, RecoveryPoint]:
    """Entries of one segment by id, tombstones applied, duplicate appends folded; with
    ``check``, a line (entry or tombstone) it refuses is skipped and logged."""
    points: dict[str, RecoveryPoint] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if check is not None and not isinstance(entry, dict):
                raise ValueError("not an object")
            if check is not None and not check(canonical(entry), entry.get("en")):
                log.warning(
                    "catalog %s line %d is not endorsed by the operator: ignored", name, number
                )
                continue
            if "del" in entry:
                points.pop(entry["del"], None)
            else:
                points[entry["id"]] = _point(entry)
        except (ValueError, KeyError, TypeError, AttributeError):
            if check is not None:  # anyone may append: a bad line must not hide the rest
                log.warning("catalog %s line %d is not a valid entry: ignored", name, number)
                continue
            raise IntegrityError(f"catalog {name} line {number} is not a valid entry") from None
    return points


def sort_key(point: RecoveryPoint) -> tuple[datetime, str]:
    return point.record.finish, point.id


def day(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y%m%d}"
