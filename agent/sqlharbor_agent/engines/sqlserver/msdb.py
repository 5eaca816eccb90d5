"""Catalog queries: discovery, the sysadmin check, backup history, file layout, time zone.

Called by ``SqlServerEngine``.  Each function takes a :class:`~.connection.Cursor`, runs
parameterised SELECTs (values are never formatted into the text) and returns the core's
frozen records (``DatabaseInfo``, ``BackupRecord``) or small dataclasses of its own.

A backup set is one ``msdb.dbo.backupset`` row; its media are the
``msdb.dbo.backupmediafamily`` rows of its media set (one per device, and per mirror):
the history query joins them, so a striped backup comes back as several rows that
:func:`backup_records` folds into one record with all its files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlharbor.domain.backupset import (
    BackupMedia,
    BackupRecord,
    BackupType,
    DatabaseInfo,
    DatabaseState,
    MediaFile,
    MediaKind,
    RecoveryModel,
)
from sqlharbor.errors import ErrorCode

from ..base import PermissionCheck
from .connection import Cursor, query
from .tsql import grant_sysadmin_statement

VERSION_SQL = "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS version"

DISCOVERY_SQL = """\
SELECT d.name,
       CONVERT(nvarchar(36), rs.database_guid) AS database_guid,
       d.recovery_model_desc,
       d.state_desc,
       d.is_read_only,
       CAST(CASE WHEN d.database_id <= 4 THEN 1 ELSE 0 END AS bit) AS is_system,
       (SELECT SUM(CAST(mf.size AS bigint)) * 8192
          FROM sys.master_files AS mf WHERE mf.database_id = d.database_id) AS size_bytes,
       ag.name AS availability_group,
       CASE WHEN d.replica_id IS NULL THEN 1
            ELSE sys.fn_hadr_backup_is_preferred_replica(d.name) END AS is_preferred,
       CONVERT(nvarchar(36), rs.recovery_fork_guid) AS recovery_fork_guid
  FROM sys.databases AS d
  LEFT JOIN sys.database_recovery_status AS rs ON rs.database_id = d.database_id
  LEFT JOIN sys.availability_replicas AS ar ON ar.replica_id = d.replica_id
  LEFT JOIN sys.availability_groups AS ag ON ag.group_id = ar.group_id
 WHERE d.database_id <> 2
 ORDER BY d.name"""

PERMISSION_SQL = "SELECT SUSER_SNAME() AS login, IS_SRVROLEMEMBER(N'sysadmin') AS is_sysadmin"

#: One row per backup set and media family (and mirror): ``backup_records`` folds them.
_BACKUPSET_COLUMNS = """\
SELECT bs.backup_set_id, bs.database_name, CONVERT(nvarchar(36), bs.database_guid) AS database_guid,
       bs.type, bs.is_copy_only, bs.first_lsn, bs.last_lsn, bs.checkpoint_lsn,
       bs.database_backup_lsn, bs.differential_base_lsn, bs.backup_start_date,
       bs.backup_finish_date, bs.time_zone, bs.recovery_model, bs.begins_log_chain,
       bs.backup_size,
       CONVERT(nvarchar(36), bs.first_recovery_fork_guid) AS first_recovery_fork_guid,
       CONVERT(nvarchar(36), bs.last_recovery_fork_guid) AS last_recovery_fork_guid,
       bs.fork_point_lsn, bs.server_name, bs.position, bs.media_set_id,
       CONVERT(nvarchar(36), bs.backup_set_uuid) AS backup_set_uuid,
       CONVERT(nvarchar(36), bs.differential_base_guid) AS differential_base_guid,
       mf.physical_device_name, mf.family_sequence_number, mf.mirror, mf.device_type
  FROM msdb.dbo.backupset AS bs
  LEFT JOIN msdb.dbo.backupmediafamily AS mf ON mf.media_set_id = bs.media_set_id"""

_BY_FAMILY = "mf.family_sequence_number, mf.mirror"

#: ``since`` is UTC; ``backup_finish_date`` is server-local, so filter with a day of slack
#: in SQL (offsets are within ±14 h) and exactly in Python after converting.
HISTORY_SQL = f"""\
{_BACKUPSET_COLUMNS}
 WHERE bs.database_name = ? AND bs.type IN ('D', 'I', 'L')
   AND bs.backup_finish_date >= DATEADD(DAY, -1, ?)
 ORDER BY bs.backup_finish_date, bs.backup_set_id, {_BY_FAMILY}"""

#: The backup set written through a device (all its media families, not only that one).
BACKUP_BY_DEVICE_SQL = f"""\
{_BACKUPSET_COLUMNS}
 WHERE bs.media_set_id IN (SELECT d.media_set_id FROM msdb.dbo.backupmediafamily AS d
                            WHERE d.physical_device_name = ?)
 ORDER BY bs.backup_set_id DESC, {_BY_FAMILY}"""

#: The server's UTC offset at a given UTC instant (DST-correct, SQL Server 2022+) ...
OFFSET_AT_SQL = (
    "SELECT DATEPART(TZOFFSET, CAST(? AS datetime2(3)) AT TIME ZONE 'UTC' "
    "AT TIME ZONE CURRENT_TIMEZONE_ID()) AS offset_minutes"
)
#: ... and the current offset, for older versions.
OFFSET_NOW_SQL = "SELECT DATEDIFF(MINUTE, SYSUTCDATETIME(), SYSDATETIME()) AS offset_minutes"

FILES_SQL = """\
SELECT mf.name AS logical_name, mf.type_desc, mf.physical_name
  FROM sys.master_files AS mf WHERE mf.database_id = DB_ID(?) ORDER BY mf.file_id"""

BACKUP_FILES_SQL = """\
SELECT bf.logical_name, CASE bf.file_type WHEN 'L' THEN N'LOG' ELSE N'ROWS' END AS type_desc,
       bf.physical_name
  FROM msdb.dbo.backupfile AS bf
 WHERE bf.backup_set_id = (SELECT MAX(bs.backup_set_id) FROM msdb.dbo.backupset AS bs
                            WHERE bs.database_name = ? AND bs.type = 'D')
 ORDER BY bf.file_number"""

DEFAULT_PATHS_SQL = (
    "SELECT CAST(SERVERPROPERTY('InstanceDefaultDataPath') AS nvarchar(260)) AS data_path, "
    "CAST(SERVERPROPERTY('InstanceDefaultLogPath') AS nvarchar(260)) AS log_path"
)

STATE_SQL = "SELECT state_desc FROM sys.databases WHERE name = ?"

_STATES = {
    "RECOVERY_PENDING": DatabaseState.RECOVERING,
    "EMERGENCY": DatabaseState.SUSPECT,
    "COPYING": DatabaseState.RESTORING,
    "OFFLINE_SECONDARY": DatabaseState.OFFLINE,
}
_TYPES = {"D": BackupType.FULL, "I": BackupType.DIFFERENTIAL, "L": BackupType.LOG}
#: ``backupmediafamily.device_type``: 2 disk, 5 tape, 7 virtual device, 9 URL (Azure);
#: 102 and 105 are permanent (sys.backup_devices) disk and tape devices.
_DEVICE_TYPES = {
    2: MediaKind.DISK,
    102: MediaKind.DISK,
    5: MediaKind.TAPE,
    105: MediaKind.TAPE,
    7: MediaKind.VIRTUAL_DEVICE,
    9: MediaKind.URL,
}
#: ``time_zone`` 127 means unknown.
UNKNOWN_TIME_ZONE = 127


def recovery_model(value: str) -> RecoveryModel:
    """``sys.databases`` says BULK_LOGGED, ``msdb.dbo.backupset`` says BULK-LOGGED."""
    return RecoveryModel(value.upper().replace("-", "_"))


def database_state(value: str) -> DatabaseState:
    """``sys.databases.state_desc`` folded onto the core's five states."""
    if value in _STATES:
        return _STATES[value]
    try:
        return DatabaseState(value)
    except ValueError:
        return DatabaseState.OFFLINE


def version(cursor: Cursor) -> str:
    return str(query(cursor, VERSION_SQL)[0]["version"])


def discover(cursor: Cursor) -> list[DatabaseInfo]:
    return [_database(row) for row in query(cursor, DISCOVERY_SQL)]


def _database(row: Mapping[str, Any]) -> DatabaseInfo:
    return DatabaseInfo(
        name=str(row["name"]),
        database_guid=str(row["database_guid"] or "").lower(),
        recovery_model=recovery_model(str(row["recovery_model_desc"])),
        state=database_state(str(row["state_desc"])),
        size_bytes=int(row["size_bytes"] or 0),
        read_only=bool(row["is_read_only"]),
        is_system=bool(row["is_system"]),
        availability_group=row["availability_group"],
        is_preferred_backup_replica=bool(row["is_preferred"]),
        recovery_fork_guid=_guid(row.get("recovery_fork_guid")),
    )


def check_permissions(cursor: Cursor) -> PermissionCheck:
    row = query(cursor, PERMISSION_SQL)[0]
    login = str(row["login"])
    if row["is_sysadmin"] == 1:
        return PermissionCheck(ok=True, login=login, message=f"{login} is a member of sysadmin")
    return PermissionCheck(
        ok=False,
        login=login,
        message=(
            f"login {login} is not a member of the sysadmin server role; "
            "backups through VDI need sysadmin"
        ),
        code=ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP,
        remediation_tsql=grant_sysadmin_statement(login),
    )


def server_local_to_utc(local: datetime, time_zone: int, fallback_offset_minutes: int) -> datetime:
    """A server-local ``datetime`` from msdb as aware UTC (``time_zone``: 15-minute units)."""
    minutes = fallback_offset_minutes if time_zone == UNKNOWN_TIME_ZONE else time_zone * 15
    return (local.replace(tzinfo=None) - timedelta(minutes=minutes)).replace(tzinfo=UTC)


def _lsn(value: Any) -> int:
    return int(Decimal(value)) if value is not None else 0


def _guid(value: Any) -> str:
    return str(value or "").lower()


def media_kind(device_type: Any) -> MediaKind:
    """``backupmediafamily.device_type`` as a ``MediaKind`` (UNKNOWN when NULL or new)."""
    if device_type is None:
        return MediaKind.UNKNOWN
    return _DEVICE_TYPES.get(int(device_type), MediaKind.UNKNOWN)


def media_file(row: Mapping[str, Any]) -> MediaFile | None:
    """The ``backupmediafamily`` part of a joined row (None when the set has no family row)."""
    if row.get("physical_device_name") is None and row.get("family_sequence_number") is None:
        return None
    return MediaFile(
        name=str(row.get("physical_device_name") or ""),
        family=int(row.get("family_sequence_number") or 1),
        mirror=int(row.get("mirror") or 0),
        kind=media_kind(row.get("device_type")),
    )


def backup_records(
    rows: Iterable[Mapping[str, Any]], fallback_offset_minutes: int = 0
) -> list[BackupRecord]:
    """Joined ``backupset`` / ``backupmediafamily`` rows folded into one record per backup
    set (a striped or mirrored set has a row per device), in the order the sets come."""
    sets: dict[str, tuple[Mapping[str, Any], list[MediaFile]]] = {}
    for row in rows:
        key = str(row["backup_set_id"])
        _, files = sets.setdefault(key, (row, []))
        file = media_file(row)
        if file is not None and file not in files:
            files.append(file)
    return [
        backup_record(first, fallback_offset_minutes, files=files) for first, files in sets.values()
    ]


def backup_record(
    row: Mapping[str, Any],
    fallback_offset_minutes: int = 0,
    *,
    files: Iterable[MediaFile] | None = None,
) -> BackupRecord:
    """One ``msdb.dbo.backupset`` row as the core's ``BackupRecord`` (its media files from
    ``files``, else from the row's own ``backupmediafamily`` columns)."""
    tz = int(row["time_zone"]) if row["time_zone"] is not None else UNKNOWN_TIME_ZONE
    diff_base = row["differential_base_lsn"]
    fork_point = row.get("fork_point_lsn")
    if files is None:
        own = media_file(row)
        files = () if own is None else (own,)
    media_set_id = row.get("media_set_id")
    media = BackupMedia(
        files=tuple(sorted(files, key=lambda f: (f.family, f.mirror))),
        position=int(row.get("position") or 1),
        media_set_id="" if media_set_id is None else str(media_set_id),
    )
    return BackupRecord(
        database_name=str(row["database_name"]),
        database_guid=str(row["database_guid"] or "").lower(),
        backup_type=_TYPES[str(row["type"]).strip()],
        is_copy_only=bool(row["is_copy_only"]),
        first_lsn=_lsn(row["first_lsn"]),
        last_lsn=_lsn(row["last_lsn"]),
        checkpoint_lsn=_lsn(row["checkpoint_lsn"]),
        database_backup_lsn=_lsn(row["database_backup_lsn"]),
        differential_base_lsn=_lsn(diff_base) if diff_base is not None else None,
        start=server_local_to_utc(row["backup_start_date"], tz, fallback_offset_minutes),
        finish=server_local_to_utc(row["backup_finish_date"], tz, fallback_offset_minutes),
        recovery_model=recovery_model(str(row["recovery_model"])),
        begins_log_chain=bool(row["begins_log_chain"]),
        size_bytes=int(row["backup_size"] or 0),
        backup_set_id=str(row["backup_set_id"]),
        backup_set_uuid=_guid(row.get("backup_set_uuid")),
        differential_base_guid=_guid(row.get("differential_base_guid")),
        first_recovery_fork_guid=_guid(row.get("first_recovery_fork_guid")),
        last_recovery_fork_guid=_guid(row.get("last_recovery_fork_guid")),
        fork_point_lsn=_lsn(fork_point) if fork_point is not None else None,
        server_name=str(row.get("server_name") or ""),
        media=media if media.files or media.media_set_id else None,
    )


def current_offset_minutes(cursor: Cursor) -> int:
    return int(query(cursor, OFFSET_NOW_SQL)[0]["offset_minutes"])


def offset_minutes_at(cursor: Cursor, moment_utc: datetime) -> int:
    """The server's UTC offset at ``moment_utc`` (falls back to the current offset)."""
    naive = moment_utc.astimezone(UTC).replace(tzinfo=None)
    try:
        return int(query(cursor, OFFSET_AT_SQL, naive)[0]["offset_minutes"])
    except Exception:
        return current_offset_minutes(cursor)


def history(cursor: Cursor, database: str, since: datetime | None) -> list[BackupRecord]:
    since_utc = since.astimezone(UTC) if since else datetime(1900, 1, 2, tzinfo=UTC)
    rows = query(cursor, HISTORY_SQL, database, since_utc.replace(tzinfo=None))
    offset = current_offset_minutes(cursor)
    records = backup_records(rows, offset)
    return [r for r in records if r.finish >= since_utc] if since else records


def backup_by_device(cursor: Cursor, device_name: str) -> BackupRecord | None:
    """The (latest) backup set written through the virtual device named ``device_name``."""
    rows = query(cursor, BACKUP_BY_DEVICE_SQL, device_name)
    records = backup_records(rows, current_offset_minutes(cursor)) if rows else []
    return records[0] if records else None


@dataclass(frozen=True)
class DatabaseFile:
    logical_name: str
    is_log: bool
    physical_name: str


def database_files(cursor: Cursor, database: str) -> list[DatabaseFile]:
    """Logical file names: from ``sys.master_files`` if the source database lives here,
    else from the latest full in ``msdb.dbo.backupfile``; empty if neither knows."""
    rows = query(cursor, FILES_SQL, database) or query(cursor, BACKUP_FILES_SQL, database)
    return [
        DatabaseFile(str(r["logical_name"]), str(r["type_desc"]) == "LOG", str(r["physical_name"]))
        for r in rows
    ]


def default_paths(cursor: Cursor) -> tuple[str, str]:
    row = query(cursor, DEFAULT_PATHS_SQL)[0]
    return str(row["data_path"]), str(row["log_path"])


def state_of(cursor: Cursor, database: str) -> str | None:
    rows = query(cursor, STATE_SQL, database)
    return str(rows[0]["state_desc"]) if rows else None
