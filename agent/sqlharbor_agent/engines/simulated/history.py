"""The simulated instance's msdb: ``backupset`` and ``backupmediafamily``.

Written by ``backup`` when a backup finishes, read by ``SimulatedEngine.history``.  As
in msdb, times are the server's local wall clock with the row's ``time_zone`` (15-minute
units east of UTC); they come back as UTC through the SQL Server plugin's own
``server_local_to_utc``, so both engines convert the same way.  Each backup set names
its media: the virtual device our backups stream through (a GUID, as VDI names it), or
the ``.bak`` / ``.trn`` files another tool wrote (one per stripe).  A backup set's id is
a GUID already (fixed when the backup starts, named in its stream), so it doubles as
msdb's ``backup_set_uuid``; a differential's row keeps its base's (``differential_base_guid``,
"" in rows written before it was kept).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlharbor.domain.backupset import (
    BackupMedia,
    BackupRecord,
    BackupType,
    MediaFile,
    MediaKind,
    RecoveryModel,
)
from sqlharbor_agent.engines.simulated.tables import from_us, to_us
from sqlharbor_agent.engines.sqlserver.msdb import server_local_to_utc

#: msdb's ``time_zone`` range: UTC-12:00 .. UTC+14:00 in 15-minute units
MIN_TIME_ZONE, MAX_TIME_ZONE = -48, 56
_MINUTE_US = 60_000_000


@dataclass(frozen=True)
class Server:
    """What msdb records about the server itself: ``@@SERVERNAME`` and its UTC offset."""

    name: str
    #: msdb's ``time_zone``: the server's offset from UTC in 15-minute units (4 = UTC+1)
    time_zone: int = 0

    def __post_init__(self) -> None:
        if not MIN_TIME_ZONE <= self.time_zone <= MAX_TIME_ZONE:
            raise ValueError(
                f"time_zone {self.time_zone} is outside {MIN_TIME_ZONE}..{MAX_TIME_ZONE} "
                "(15-minute units from UTC)"
            )

    def local_us(self, utc_us: int) -> int:
        """A UTC instant as this server's wall clock (microseconds, naive)."""
        return utc_us + self.time_zone * 15 * _MINUTE_US


def virtual_device() -> tuple[MediaFile, ...]:
    """Our backups: one virtual device, named by a fresh GUID like the VDI client does."""
    return (MediaFile(str(uuid.uuid4()), 1, 0, MediaKind.VIRTUAL_DEVICE),)


def disk_files(
    server: Server, database: str, kind: BackupType, start_us: int, stripes: int = 1
) -> tuple[MediaFile, ...]:
    """Another tool's backup files: ``D:\\Backup\\<db>\\<db>_<TYPE>_<local time>[_n].bak|.trn``."""
    local = from_us(server.local_us(start_us)).replace(tzinfo=None)
    stem = f"{database}_{kind.value.upper()}_{local:%Y%m%d_%H%M%S}"
    suffix = ".trn" if kind is BackupType.LOG else ".bak"
    return tuple(
        MediaFile(
            f"D:\\Backup\\{database}\\{stem}{f'_{n}' if stripes > 1 else ''}{suffix}",
            n,
            0,
            MediaKind.DISK,
        )
        for n in range(1, stripes + 1)
    )


def next_media_set_id(con: sqlite3.Connection) -> str:
    (last,) = con.execute(
        "SELECT COALESCE(MAX(CAST(media_set_id AS INTEGER)), 0) FROM backupset"
    ).fetchone()
    return str(int(last) + 1)


_COLUMNS = (
    "backup_set_id, database_name, database_guid, backup_type, is_copy_only, first_lsn, "
    "last_lsn, checkpoint_lsn, database_backup_lsn, differential_base_lsn, start_local_us, "
    "finish_local_us, time_zone, recovery_model, begins_log_chain, size_bytes, "
    "first_recovery_fork_guid, last_recovery_fork_guid, fork_point_lsn, server_name, "
    "media_set_id, position, differential_base_guid"
)


def insert_record(
    con: sqlite3.Connection, record: BackupRecord, server: Server, *, out_of_band: bool
) -> None:
    media = record.media or BackupMedia()
    con.execute(
        f"INSERT INTO backupset ({_COLUMNS}, out_of_band) VALUES ({', '.join('?' * 24)})",
        (
            record.backup_set_id,
            record.database_name,
            record.database_guid,
            record.backup_type.value,
            int(record.is_copy_only),
            record.first_lsn,
            record.last_lsn,
            record.checkpoint_lsn,
            record.database_backup_lsn,
            record.differential_base_lsn,
            server.local_us(to_us(record.start)),
            server.local_us(to_us(record.finish)),
            server.time_zone,
            record.recovery_model.value,
            int(record.begins_log_chain),
            record.size_bytes,
            record.first_recovery_fork_guid,
            record.last_recovery_fork_guid,
            record.fork_point_lsn,
            record.server_name,
            media.media_set_id,
            media.position,
            record.differential_base_guid,
            int(out_of_band),
        ),
    )
    con.executemany(
        "INSERT OR IGNORE INTO backupmediafamily (media_set_id, family_sequence_number, "
        "mirror, physical_device_name, device_type) VALUES (?, ?, ?, ?, ?)",
        [(media.media_set_id, f.family, f.mirror, f.name, f.kind.value) for f in media.files],
    )


def select_records(con: sqlite3.Connection, name: str, since_us: int | None) -> list[BackupRecord]:
    """The database's backup sets, oldest first (by their UTC finish)."""
    utc_finish = f"finish_local_us - time_zone * {15 * _MINUTE_US}"
    sql = f"SELECT {_COLUMNS} FROM backupset WHERE database_name = ?"
    args: tuple[object, ...] = (name,)
    if since_us is not None:
        sql += f" AND {utc_finish} >= ?"
        args += (since_us,)
    rows = con.execute(f"{sql} ORDER BY {utc_finish}, id", args).fetchall()
    files = _media_files(con, {row[20] for row in rows})
    return [_record(row, files) for row in rows]


def _media_files(con: sqlite3.Connection, media_set_ids: set[str]) -> dict[str, list[MediaFile]]:
    files: dict[str, list[MediaFile]] = defaultdict(list)
    if not media_set_ids:
        return files
    ids = sorted(media_set_ids)
    cursor = con.execute(
        "SELECT media_set_id, physical_device_name, family_sequence_number, mirror, device_type "
        f"FROM backupmediafamily WHERE media_set_id IN ({', '.join('?' * len(ids))}) "
        "ORDER BY media_set_id, family_sequence_number, mirror",
        ids,
    )
    for media_set_id, device, family, mirror, kind in cursor:
        files[media_set_id].append(MediaFile(device, family, mirror, MediaKind(kind)))
    return files


def _utc(local_us: int, time_zone: int) -> datetime:
    return server_local_to_utc(from_us(local_us).replace(tzinfo=None), time_zone, 0)


def _record(row: tuple[Any, ...], files: dict[str, list[MediaFile]]) -> BackupRecord:
    (bsid, name, guid, btype, copy_only, first, last, ckpt, dblsn, diffbase) = row[:10]
    (start, finish, time_zone, model, begins, size) = row[10:16]
    (first_fork, last_fork, fork_point, server_name, media_set_id, position) = row[16:22]
    diff_base_guid = row[22]
    media = (
        BackupMedia(tuple(files.get(media_set_id, ())), position, media_set_id)
        if media_set_id
        else None
    )
    return BackupRecord(
        database_name=name,
        database_guid=guid,
        backup_type=BackupType(btype),
        is_copy_only=bool(copy_only),
        first_lsn=first,
        last_lsn=last,
        checkpoint_lsn=ckpt,
        database_backup_lsn=dblsn,
        differential_base_lsn=diffbase,
        start=_utc(start, time_zone),
        finish=_utc(finish, time_zone),
        recovery_model=RecoveryModel(model),
        begins_log_chain=bool(begins),
        size_bytes=size,
        backup_set_id=bsid,
        backup_set_uuid=bsid,
        differential_base_guid=diff_base_guid,
        first_recovery_fork_guid=first_fork,
        last_recovery_fork_guid=last_fork,
        fork_point_lsn=fork_point,
        server_name=server_name,
        media=media,
    )
