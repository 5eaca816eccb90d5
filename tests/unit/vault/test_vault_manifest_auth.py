"""Authenticated manifests (``sqlharbor.vault.manifest_auth``): every version-2 manifest is
sealed with a tag keyed from its point's data key; an edited field, a stripped tag, or a
manifest copied to another point with its identity rewritten to fit is refused when the
reader opens the point, before a byte of data is read."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import ErrorCode, IntegrityError
from sqlharbor.vault import Manifest, Vault
from sqlharbor.vault.manifest_auth import seal, verify
from tests.builders.records import backup_record
from tests.builders.stores import MemoryBlobStore

GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
INSTANCE = "HOST\\SQL01"
MakeVault = Callable[..., Vault]


def _commit(vault: Vault, data: bytes = b"x" * 3000) -> Manifest:
    writer = vault.open_writer(INSTANCE, "Sales", GUID, BackupType.FULL)
    writer.write(data)
    return writer.commit(backup_record(BackupType.FULL, guid=GUID))


def _rewrite(store: MemoryBlobStore, vault: Vault, point: str, edit: Callable[[Any], None]) -> None:
    name = vault.layout.manifest_blob(INSTANCE, GUID, point)
    doc = json.loads(store.blobs[name])
    edit(doc)
    store.blobs[name] = json.dumps(doc).encode()


def _open_refused(vault: Vault, store: MemoryBlobStore, point: str, match: str) -> None:
    manifest = vault.manifest(INSTANCE, GUID, point)  # it parses and sits in its place
    store.reset()
    with pytest.raises(IntegrityError, match=match) as caught:
        vault.open_reader(manifest)
    assert caught.value.code is ErrorCode.VAULT_INTEGRITY_FAILURE
    assert point in str(caught.value)
    assert not [n for n in store.gets if "/data-" in n], "refused before data moves"


def test_a_committed_manifest_is_sealed_and_verifies(make_vault: MakeVault) -> None:
    vault = make_vault()
    manifest = vault.manifest(INSTANCE, GUID, _commit(vault).identity.recovery_point_id)
    assert manifest.authentication is not None
    assert not manifest.legacy_unauthenticated
    with vault.open_reader(manifest) as reader:
        assert reader.read() == b"x" * 3000


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("backup", "last_lsn", "999999999999999999"),
        ("backup", "database_name", "Payroll"),
        ("backup", "start", "2020-01-01T00:00:00Z"),
        ("data", "compression_level", 1),
        ("integrity", "raw_sha256", "0" * 64),
    ],
)
def test_an_edited_field_is_refused(
    make_vault: MakeVault, store: MemoryBlobStore, section: str, field: str, value: Any
) -> None:
    vault = make_vault()
    point = _commit(vault).identity.recovery_point_id
    _rewrite(store, vault, point, lambda doc: doc[section].__setitem__(field, value))
    _open_refused(vault, store, point, "its manifest failed authentication")


def test_a_stripped_tag_is_refused(make_vault: MakeVault, store: MemoryBlobStore) -> None:
    vault = make_vault()
    point = _commit(vault).identity.recovery_point_id
    _rewrite(store, vault, point, lambda doc: doc.__setitem__("authentication", None))
    _open_refused(vault, store, point, "carries no authentication tag")


def test_a_manifest_copied_over_another_with_its_identity_rewritten_is_refused(
    make_vault: MakeVault, store: MemoryBlobStore
) -> None:
    vault = make_vault()
    one, two = _commit(vault, b"a" * 3000), _commit(vault, b"b" * 3000)
    target = two.identity.recovery_point_id
    doc = json.loads(one.to_json())
    doc["identity"] = json.loads(two.to_json())["identity"]  # now it "belongs" there
    store.blobs[vault.layout.manifest_blob(INSTANCE, GUID, target)] = json.dumps(doc).encode()
    _open_refused(vault, store, target, "failed authentication")


def test_the_tag_needs_the_points_own_data_key(make_vault: MakeVault) -> None:
    manifest = _commit(make_vault())
    with pytest.raises(IntegrityError, match="failed authentication"):
        verify(manifest, b"\x00" * 32)
    resealed = seal(manifest.model_copy(update={"authentication": None}), b"\x01" * 32)
    assert resealed.authentication != manifest.authentication


def test_the_tag_of_a_fixed_document_and_key_is_pinned() -> None:
    """A stored tag must verify forever: HKDF info, HMAC, payload canonicalisation and the
    model's JSON output are all pinned by this one vector (a change breaks every point)."""
    from tests.unit.vault.test_vault_manifest_v2 import fixed_document

    manifest = Manifest.parse(json.dumps(fixed_document()).encode())
    sealed = seal(manifest, bytes(range(32)))
    assert sealed.authentication is not None
    assert sealed.authentication.tag == PINNED_TAG
    verify(sealed, bytes(range(32)))


PINNED_TAG = "tXth5qFBvzSsxlvoFQnIslCFz6Z4BsnUI/P+1QoKabc="
