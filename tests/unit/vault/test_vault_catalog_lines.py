"""Catalog lines carry every fact of a record (recovery forks, fork point, server, media,
backup set uuids) compactly, and lines written before those facts existed still parse,
with the defaults."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sqlharbor.domain.backupset import (
    BackupMedia,
    BackupType,
    MediaFile,
    MediaKind,
    RecoveryPoint,
)
from sqlharbor.errors import IntegrityError
from sqlharbor.vault.catalog_lines import entry_line, parse_segment
from tests.builders.records import backup_record

FORK_A = "11111111-2222-3333-4444-555555555555"
FORK_B = "66666666-7777-8888-9999-000000000000"
POINT = "20261124T181000Z-L-00000002"

#: A line exactly as the catalog wrote it before recovery forks, server and media existed
#: (the golden version-1 fixture holds the same kind of line).
OLD_LINE = (
    b'{"id":"20261124T180102Z-F-0000c0de","t":"F","n":"Sales",'
    b'"g":"6f9619ff-8b86-d011-b42d-00c04fc964ff","c":false,"f":"98765432109876543210000",'
    b'"l":"98765432109876543214200","k":"98765432109876543210010",'
    b'"b":"98765432109876543120000","d":null,"s":"2026-11-24T18:01:02+00:00",'
    b'"e":"2026-11-24T18:01:32+00:00","m":"FULL","z":180224,"lc":true,"sid":"4711"}\n'
)


def _striped_log() -> RecoveryPoint:
    record = dataclasses.replace(
        backup_record(BackupType.LOG),
        first_recovery_fork_guid=FORK_A,
        last_recovery_fork_guid=FORK_B,
        fork_point_lsn=98_765_432_109_876_543_212_000,
        server_name="HOST\\SQL01",
        media=BackupMedia(
            files=(
                MediaFile("dev-1", family=1, kind=MediaKind.VIRTUAL_DEVICE),
                MediaFile("dev-2", family=2, mirror=1, kind=MediaKind.VIRTUAL_DEVICE),
            ),
            position=3,
            media_set_id="7e1f0c2a-0000-4000-8000-00000000beef",
        ),
    )
    return RecoveryPoint(POINT, record)


def test_every_new_fact_round_trips() -> None:
    point = _striped_log()
    line = entry_line(point)
    assert parse_segment(line) == {POINT: point}
    entry = json.loads(line)
    assert (entry["rf"], entry["rl"], entry["fp"]) == (FORK_A, FORK_B, "98765432109876543212000")
    assert entry["md"]["f"][1] == ["dev-2", 2, 1, "VirtualDevice"]
    # one fork (the usual case) is written once
    same_fork = dataclasses.replace(
        point.record, last_recovery_fork_guid=FORK_A, fork_point_lsn=None, media=None
    )
    line = entry_line(RecoveryPoint(POINT, same_fork))
    assert b'"rl"' not in line
    assert b'"md"' not in line
    assert parse_segment(line)[POINT].record == same_fork


def test_backup_set_uuids_round_trip_and_are_written_only_when_known() -> None:
    full_uuid = "a3c5e7f9-0000-4000-8000-0000000000f1"
    full = RecoveryPoint(
        "20261124T180102Z-F-00000001", backup_record(BackupType.FULL, backup_set_uuid=full_uuid)
    )
    diff = RecoveryPoint(
        "20261124T181000Z-D-00000002",
        backup_record(
            BackupType.DIFFERENTIAL,
            backup_set_uuid="a3c5e7f9-0000-4000-8000-0000000000d2",
            differential_base_guid=full_uuid,
        ),
    )
    lines = entry_line(full) + entry_line(diff)
    assert parse_segment(lines) == {full.id: full, diff.id: diff}
    entry = json.loads(entry_line(diff))
    assert (entry["u"], entry["dg"]) == (diff.record.backup_set_uuid, full_uuid)
    assert "dg" not in json.loads(entry_line(full))
    [old] = parse_segment(OLD_LINE).values()
    assert (old.record.backup_set_uuid, old.record.differential_base_guid) == ("", "")


def test_defaults_add_nothing_to_a_line_and_old_lines_parse() -> None:
    plain = RecoveryPoint(POINT, backup_record(BackupType.LOG))
    assert set(json.loads(entry_line(plain))) == set(json.loads(OLD_LINE))
    [old] = parse_segment(OLD_LINE).values()
    r = old.record
    assert (r.first_recovery_fork_guid, r.last_recovery_fork_guid) == ("", "")
    assert (r.fork_point_lsn, r.server_name, r.media) == (None, "", None)
    assert r.first_lsn == 98_765_432_109_876_543_210_000
    assert entry_line(old) == OLD_LINE  # an old entry rewritten (rebuild) is the same line


@pytest.mark.parametrize(
    "media",
    [b'{"i":"x","p":1,"f":[["dev",1,0]]}', b'{"i":"x","p":1,"f":[["d",1,0,"Floppy"]]}', b"[]"],
)
def test_a_damaged_media_entry_names_its_line(media: bytes) -> None:
    line = OLD_LINE.replace(b"}\n", b',"md":' + media + b"}\n")
    with pytest.raises(IntegrityError, match="seg line 2"):
        parse_segment(OLD_LINE + line, name="seg")
