"""Names: one module builds them, components are validated, instance names round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import InvalidName
from sqlharbor.vault import Layout, RecoveryPointId, new_recovery_point_id
from sqlharbor.vault.layout import decode_component, encode_component

GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


@pytest.mark.parametrize(
    "name",
    ["SQL01", "HOST\\INSTANCE", "h\u00f6st\\s\u00fc", ".hidden", "a/b", "x~41", "with space"],
)
def test_instance_names_round_trip_into_one_safe_segment(name: str) -> None:
    encoded = encode_component(name)
    assert "/" not in encoded
    assert "\\" not in encoded
    assert not encoded.startswith(".")
    assert decode_component(encoded) == name


def test_distinct_instances_never_share_a_segment() -> None:
    names = ["HOST\\A", "HOST~5CA", "HOST_A", "host\\a"]
    assert len({encode_component(n) for n in names}) == len(names)


def test_point_names_follow_the_documented_shape() -> None:
    layout = Layout("/backups/prod/")
    point = "20261124T180102Z-F-1a2b3c4d"
    assert layout.manifest_blob("HOST\\SQL01", GUID, point) == (
        f"backups/prod/HOST~5CSQL01/{GUID}/full/{point}/manifest.json"
    )
    assert layout.data_blob("HOST\\SQL01", GUID, point, 1) == (
        f"backups/prod/HOST~5CSQL01/{GUID}/full/{point}/data-0001"
    )
    assert layout.data_blob("HOST\\SQL01", GUID, point) == (
        f"backups/prod/HOST~5CSQL01/{GUID}/full/{point}/data-0000"
    )
    assert layout.data_blob("HOST\\SQL01", GUID, point, 2, stripe=1) == (
        f"backups/prod/HOST~5CSQL01/{GUID}/full/{point}/data-s01-0002"
    )
    names = {
        layout.data_blob("H", GUID, point, part, stripe=s) for s in range(64) for part in (0, 1)
    }
    assert len(names) == 128  # every stripe and part has its own blob
    for stripe, part in ((64, 0), (-1, 0), (0, -1)):
        with pytest.raises(ValueError, match="no data blob"):
            layout.data_blob("H", GUID, point, part, stripe=stripe)
    location = layout.locate("HOST\\SQL01", GUID, point)
    assert location.manifest_blob == layout.manifest_blob("HOST\\SQL01", GUID, point)
    assert location.manifest_path == f"HOST~5CSQL01/{GUID}/full/{point}/manifest.json"
    assert Layout().locate("A", GUID, point).manifest_path == f"A/{GUID}/full/{point}/manifest.json"
    log_point = "20261124T180102Z-L-1a2b3c4d"
    assert "/log/" in layout.manifest_blob("SQL01", GUID, log_point)
    assert layout.parse_manifest_blob(layout.manifest_blob("SQL01", GUID, log_point)) == log_point
    assert layout.parse_manifest_blob(layout.data_blob("SQL01", GUID, log_point)) is None


def test_catalog_and_registry_names() -> None:
    layout = Layout("")
    day = datetime(2026, 11, 24, 23, 59, tzinfo=UTC)
    assert (
        layout.points_segment("SQL01", GUID, day) == f"SQL01/{GUID}/catalog/points/20261124.jsonl"
    )
    assert layout.bases_segment("SQL01", GUID, 2026) == f"SQL01/{GUID}/catalog/bases/2026.jsonl"
    assert layout.registry_blob("A\\B", GUID) == f".sqlharbor/databases/A~5CB/{GUID}.json"


@pytest.mark.parametrize("bad", ["", "a/b", "..", ".x", "a\\b", "x" * 129, "a b"])
def test_bad_components_are_refused(bad: str) -> None:
    with pytest.raises(InvalidName):
        Layout().database_dir("SQL01", bad)


def test_bad_prefix_and_empty_instance_are_refused() -> None:
    with pytest.raises(InvalidName):
        Layout("ok/../etc")
    with pytest.raises(InvalidName):
        Layout().database_dir("", GUID)


def test_recovery_point_ids_sort_by_time_and_parse_back() -> None:
    start = datetime(2026, 11, 24, 18, 1, 2, tzinfo=UTC)
    ids = [new_recovery_point_id(BackupType.LOG, start + timedelta(seconds=s)) for s in (0, 1, 61)]
    assert ids == sorted(ids)
    assert ids[0].startswith("20261124T180102Z-L-")
    parsed = RecoveryPointId.parse(ids[2])
    assert parsed.created == start + timedelta(seconds=61)
    assert parsed.backup_type is BackupType.LOG
    assert new_recovery_point_id(BackupType.DIFFERENTIAL) != new_recovery_point_id(
        BackupType.DIFFERENTIAL
    )
    with pytest.raises(InvalidName):
        RecoveryPointId.parse("20261124T180102Z-X-1a2b3c4d")
