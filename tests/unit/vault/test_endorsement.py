"""Endorsement of catalog lines (``vault.endorsement``): who can endorse, what a check
refuses, and which lines a catalog with the keys counts before and after the vault
requires endorsement."""

from __future__ import annotations

import json

import pytest

from sqlharbor.domain.backupset import BackupType, PointKey, RecoveryPoint
from sqlharbor.errors import IntegrityError, InvalidInput
from sqlharbor.vault import Layout, Vault
from sqlharbor.vault.catalog_lines import canonical, entry_line, tombstone_line
from sqlharbor.vault.endorse import endorse
from sqlharbor.vault.endorsement import EndorsementKey, Endorser
from sqlharbor.vault.keyring import PublicWrapper, point_key
from tests.builders.keys import keyring, rsa_key
from tests.builders.records import GUID, T0, backup_record
from tests.builders.stores import MemoryBlobStore

INSTANCE = "HOST\\SQL01"
BODY = b'{"id":"20261124T180000Z-F-00000001"}'


def test_the_endorsement_key_is_the_private_keys_alone() -> None:
    """Deterministic (a rebuilt cluster derives the same one), distinct per key, and not
    derivable from the public half."""
    assert EndorsementKey.derive(rsa_key(0)) == EndorsementKey.derive(rsa_key(0))
    assert EndorsementKey.derive(rsa_key(0)).secret != EndorsementKey.derive(rsa_key(1)).secret
    en = Endorser([rsa_key(0)]).endorse(INSTANCE, GUID, BODY)
    assert en[:2] == [rsa_key(0).key_id, rsa_key(0).key_version]
    assert Endorser([rsa_key(0)]).endorse(INSTANCE, GUID, BODY) == en
    assert "secret" not in repr(EndorsementKey.derive(rsa_key(0)))


def test_a_check_refuses_anything_but_the_same_line_of_the_same_database() -> None:
    endorser = Endorser([rsa_key(0), rsa_key(1)])
    en = Endorser([rsa_key(1)]).endorse(INSTANCE, GUID, BODY)  # by a previous key
    assert endorser.check(INSTANCE, GUID, BODY, en)
    assert not endorser.check(INSTANCE, GUID, BODY.replace(b"F-", b"L-"), en)
    assert not endorser.check("HOST\\OTHER", GUID, BODY, en)
    assert not endorser.check(INSTANCE, GUID.replace("6f", "7f"), BODY, en)
    assert not Endorser([rsa_key(0)]).check(INSTANCE, GUID, BODY, en)  # key not listed
    for garbage in (None, "x", [], [en[0], en[1]], [en[0], en[1], "%%%"], [1, 2, 3]):
        assert not endorser.check(INSTANCE, GUID, BODY, garbage)


def _point(n: int) -> RecoveryPoint:
    record = backup_record(BackupType.LOG, guid=GUID, first_lsn=1000 * n, last_lsn=1000 * n + 1)
    return RecoveryPoint(id=f"20261124T18000{n}Z-L-0000000{n}", record=record)


def test_which_lines_count_before_and_after_endorsement_is_required() -> None:
    store = MemoryBlobStore()
    operator = Vault(store, Layout("p"), keyring(0))
    agent = Vault(store, Layout("p"), PublicWrapper(rsa_key(0).public()))  # no keys
    genuine, legacy, forged = _point(1), _point(2), _point(3)
    operator.catalog.add_points(INSTANCE, [genuine])
    agent.catalog.add_points(INSTANCE, [legacy])  # a line without an endorsement
    segment = Layout("p").points_segment(INSTANCE, GUID, T0)
    bad = json.loads(entry_line(forged))
    bad["en"] = [rsa_key(0).key_id, rsa_key(0).key_version, "AAAA"]
    store.append(segment, json.dumps(bad).encode() + b"\n")

    def listed() -> list[str]:
        catalog = Vault(store, Layout("p"), keyring(0)).catalog  # reads the marker anew
        return [p.id for p in catalog.list_points(INSTANCE, GUID)]

    assert listed() == [genuine.id, legacy.id], "before: unendorsed lines count, bad ones not"
    assert [p.id for p in agent.catalog.list_points(INSTANCE, GUID)] == [
        genuine.id,
        legacy.id,
        forged.id,
    ], "a reader without the keys checks nothing"
    operator.catalog.endorsement.require()
    assert listed() == [genuine.id], "after: only endorsed lines"
    store.append(segment, tombstone_line(genuine.id))  # an unendorsed deletion
    assert listed() == [genuine.id]
    operator.catalog.remove(INSTANCE, genuine)  # the operator's (endorsed) deletion
    assert listed() == []


def test_a_line_endorsed_by_a_key_no_longer_listed_is_not_listed() -> None:
    """It cannot be told from a forgery naming a made-up key: whatever its ``w`` says."""
    store = MemoryBlobStore()
    old = Vault(store, Layout("p"), keyring(1))
    under_old = RecoveryPoint(_point(1).id, _point(1).record, key=_key_of(1))
    under_new = RecoveryPoint(_point(2).id, _point(2).record, key=_key_of(0))
    old.catalog.add_points(INSTANCE, [under_old, under_new])
    assert len(Vault(store, Layout("p"), keyring(0, 1)).catalog.list_points(INSTANCE, GUID)) == 2
    assert Vault(store, Layout("p"), keyring(0)).catalog.list_points(INSTANCE, GUID) == []


def _key_of(n: int) -> PointKey:
    return point_key(rsa_key(n))


def test_the_canonical_form_ignores_the_endorsement_and_key_order() -> None:
    line = json.loads(entry_line(_point(1)))
    assert canonical(line) == canonical({**dict(reversed(line.items())), "en": ["a", "b", "c"]})


def test_rebuilding_an_endorsed_catalog_from_manifests_needs_a_review() -> None:
    """A rebuild endorses whatever manifests it finds, so in a vault that requires
    endorsement it runs only when told the manifests were reviewed."""
    store = MemoryBlobStore()
    vault = Vault(store, Layout("p"), keyring(0))
    writer = vault.open_writer(INSTANCE, "Sales", GUID, BackupType.FULL)
    writer.write(b"pages")
    writer.commit(backup_record(BackupType.FULL, guid=GUID))
    assert vault.catalog.rebuild(INSTANCE, GUID).points == 1  # not required yet
    vault.catalog.endorsement.require()
    with pytest.raises(InvalidInput, match="trust_manifests"):
        vault.catalog.rebuild(INSTANCE, GUID)
    assert vault.catalog.rebuild(INSTANCE, GUID, trust_manifests=True).points == 1
    assert len(vault.catalog.list_points(INSTANCE, GUID)) == 1


def test_a_bad_line_is_skipped_not_fatal_for_a_reader_with_the_keys() -> None:
    """Anyone holding a backup grant may append to a segment: garbage must not hide the
    database's other points from the operator (a reader without keys still refuses it)."""
    store = MemoryBlobStore()
    operator = Vault(store, Layout("p"), keyring(0))
    operator.catalog.endorsement.require()
    operator.catalog.add_points(INSTANCE, [_point(1)])
    segment = Layout("p").points_segment(INSTANCE, GUID, T0)
    for garbage in (b"not json\n", b"[1, 2]\n", b'{"del": [1]}\n', b'{"id": "x"}\n'):
        store.append(segment, garbage)
    assert [p.id for p in operator.catalog.list_points(INSTANCE, GUID)] == [_point(1).id]
    with pytest.raises(IntegrityError):
        Vault(store, Layout("p"), PublicWrapper(rsa_key(0).public())).catalog.list_points(
            INSTANCE, GUID
        )


def test_endorse_reads_past_a_marker_an_agent_wrote_first() -> None:
    store = MemoryBlobStore()
    legacy = Vault(store, Layout("p"), PublicWrapper(rsa_key(0).public()))
    writer = legacy.open_writer(INSTANCE, "Sales", GUID, BackupType.FULL)
    writer.write(b"pages")
    writer.commit(backup_record(BackupType.FULL, guid=GUID))
    store.put(Layout("p").endorsement_marker(), b"forged")  # hides every legacy line
    operator = Vault(store, Layout("p"), keyring(0))
    assert operator.catalog.list_points(INSTANCE, GUID) == []
    report = endorse(Vault(store, Layout("p"), keyring(0)))
    assert (report.points, report.endorsed, report.required) == (1, 1, True)
    assert len(Vault(store, Layout("p"), keyring(0)).catalog.list_points(INSTANCE, GUID)) == 1
