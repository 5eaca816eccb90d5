"""Key rotation on Azurite: points under key A, rotate to B (A kept as a previous key), both
restore; ``rekey`` re-wraps A's points with B (manifests only, resumable); A removed, all
restore; a point under a key the vault does not list is unreadable, left out of the
window, and named in the planner's refusal."""

from __future__ import annotations

import json

import pytest

from sqlharbor.api.jobs import RestorePoint
from sqlharbor.cli.points import print_points
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import BlobNotFound, KeyUnavailable, PlanError
from sqlharbor.restoreplan import plan, split_readable, windows
from sqlharbor.vault import AzureBlobStore, Layout, Manifest, Vault
from sqlharbor.vault.keyring import Keyring
from sqlharbor.vault.rekey import rekey
from sqlharbor.vault.wrapping import SecretRsaKey
from tests.builders.keys import rsa_key
from tests.builders.records import backup_record

INSTANCE = "VM01\\SQL2022"
GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
A, B, C = rsa_key(0), rsa_key(1), rsa_key(2)


def _vault(store: AzureBlobStore, *keys: SecretRsaKey) -> Vault:
    return Vault(store, Layout("rot"), Keyring(list(keys)))


def _backup(vault: Vault, kind: BackupType, first: int, last: int, data: bytes) -> Manifest:
    writer = vault.open_writer(INSTANCE, "Sales", GUID, kind)
    writer.write(data)
    return writer.commit(backup_record(kind, guid=GUID, first_lsn=first, last_lsn=last))


def _restore(vault: Vault, manifest: Manifest) -> bytes:
    with vault.open_reader(manifest) as reader:
        return reader.read()


def _data(store: AzureBlobStore) -> dict[str, bytes]:
    return {b.name: store.get(b.name) for b in store.list("rot/") if "/data-" in b.name}


def test_rotate_rekey_and_remove_the_old_key(azure_store: AzureBlobStore) -> None:
    under_a = _vault(azure_store, A)
    full = _backup(under_a, BackupType.FULL, 1000, 2000, b"full " * 500)
    log1 = _backup(under_a, BackupType.LOG, 2000, 2100, b"log one " * 200)
    rotated = _vault(azure_store, B, A)
    log2 = _backup(rotated, BackupType.LOG, 2100, 2200, b"log two " * 200)
    assert log2.encryption.data_key.key_id == B.key_id
    payloads = {m.identity.recovery_point_id: _restore(rotated, m) for m in (full, log1, log2)}

    # B and A, A's points wrapped with A: listed, readable
    readable, unreadable = split_readable(
        rotated.catalog.list_points(INSTANCE, GUID), Keyring([B, A])
    )
    assert (len(readable), unreadable) == (3, [])
    # B alone (A removed without a rekey, past the vault-keys policy): the lines A
    # endorsed cannot be told from forgeries, so A's points are not listed at all
    only_b = _vault(azure_store, B)
    points = only_b.catalog.list_points(INSTANCE, GUID)
    assert [p.id for p in points] == [log2.identity.recovery_point_id]
    readable, unreadable = split_readable(points, Keyring([B]))
    assert unreadable == []
    assert windows(readable) == []  # no full: nothing is restorable
    with pytest.raises(PlanError):
        plan(readable, RestorePoint(latest=True))
    with pytest.raises(KeyUnavailable, match=A.key_id):
        only_b.open_reader(full)

    # rekey: manifests re-wrapped with B, data untouched, catalog updated, resumable
    data_before = _data(azure_store)
    seen: list[tuple[int, int]] = []
    report = rekey(rotated, Keyring([B, A]), progress=lambda d, t, s: seen.append((d, t)))
    assert (report.points, report.rekeyed, report.current, report.failed) == (3, 2, 1, [])
    assert seen[-1] == (2, 2)
    assert _data(azure_store) == data_before
    keys = {p.key.key_id for p in only_b.catalog.list_points(INSTANCE, GUID) if p.key}
    assert keys == {B.key_id}
    again = rekey(rotated, Keyring([B, A]))
    assert (again.rekeyed, again.current) == (0, 3)

    # A removed: every point restores with B alone, byte for byte
    for point in only_b.catalog.list_points(INSTANCE, GUID):
        manifest = only_b.manifest(INSTANCE, GUID, point.id)
        assert manifest.encryption.data_key.key_id == B.key_id
        only_b.authenticate(manifest)
        assert _restore(only_b, manifest) == payloads[point.id]
    assert split_readable(only_b.catalog.list_points(INSTANCE, GUID), Keyring([B]))[1] == []


def test_an_interrupted_rekey_is_finished_by_running_it_again(azure_store: AzureBlobStore) -> None:
    under_a = _vault(azure_store, A)
    made = [_backup(under_a, BackupType.FULL, 1000 + i, 2000 + i, b"x" * 100) for i in range(3)]

    def stop_after_one(done: int, total: int, seconds: float) -> None:
        raise KeyboardInterrupt

    rotated = _vault(azure_store, B, A)
    with pytest.raises(KeyboardInterrupt):
        rekey(rotated, Keyring([B, A]), progress=stop_after_one)
    first = rekey(rotated, Keyring([B, A]))
    assert (first.rekeyed, first.current) == (2, 1)
    for m in made:
        again = rotated.manifest(INSTANCE, GUID, m.identity.recovery_point_id)
        assert again.encryption.data_key.key_id == B.key_id


def test_rekey_refuses_a_tampered_point_and_never_revives_a_deleted_one(
    azure_store: AzureBlobStore,
) -> None:
    under_a = _vault(azure_store, A)
    kept = _backup(under_a, BackupType.FULL, 1000, 2000, b"kept" * 100)
    edited = _backup(under_a, BackupType.FULL, 3000, 4000, b"edited" * 100)
    name = Layout("rot").manifest_blob(INSTANCE, GUID, edited.identity.recovery_point_id)
    doc = json.loads(azure_store.get(name))
    doc["backup"]["database_name"] = "Forged"
    azure_store.put(name, json.dumps(doc).encode())
    report = rekey(_vault(azure_store, B, A), Keyring([B, A]))
    assert report.rekeyed == 1
    assert [p for p, _ in report.failed] == [edited.identity.recovery_point_id]
    assert "failed authentication" in report.failed[0][1]
    assert json.loads(azure_store.get(name))["backup"]["database_name"] == "Forged"  # left as is
    assert kept.identity.recovery_point_id
    # a manifest deleted meanwhile (retention) is not written back
    gone = "rot/never/there/manifest.json"
    with pytest.raises(BlobNotFound):
        azure_store.replace(gone, b"{}")
    assert not azure_store.exists(gone)


def test_points_shows_unreadable_points_outside_the_window(
    azure_store: AzureBlobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # wrapped with C, indexed (endorsed) while B was current and C still listed
    under_c = Vault(azure_store, Layout("rot"), Keyring([C]), indexes=False)
    _vault(azure_store, B, C).catalog.add(_backup(under_c, BackupType.FULL, 1000, 2000, b"c" * 100))
    _backup(_vault(azure_store, B), BackupType.FULL, 3000, 4000, b"b" * 100)
    points = _vault(azure_store, B).catalog.list_points(INSTANCE, GUID)
    print_points(points, 0, Keyring([B]))
    out = capsys.readouterr().out
    assert "2 recovery point(s)" not in out
    assert "1 recovery point(s)" in out
    assert f"UNREADABLE: 1 recovery point(s) are unreadable: wrapped with key {C.key_id}" in out
