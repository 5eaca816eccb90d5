"""Catalog endorsement against a real Azurite and real grants (``vault.endorsement``).

An agent's backup SAS (create + write on the container, what every backup job gets) is
used the way a compromised VM would: to write a self-consistent point under another
instance's database (its own data key, wrapped with the vault's public key, its manifest
sealed with it), to write a catalog line for it over the catalog segment, to write a
manifest over an indexed point, and to write the vault's endorsement marker.  The
operator's view (a ``Vault`` with the keyring) lists only what it endorsed, and a restore
plan naming the forged point is refused before any key or data is granted.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlharbor_operator.grants import checked_plan
from sqlharbor_operator.vaults import VaultAccess

from sqlharbor.api.jobs import PlanStep, RestorePlanStatus
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import IntegrityError
from sqlharbor.vault import AzureBlobStore, Layout, Manifest, Vault
from sqlharbor.vault.catalog_lines import entry_line
from sqlharbor.vault.endorse import endorse
from sqlharbor.vault.keyring import PublicWrapper
from sqlharbor.vault.sas import SasIssuer
from sqlharbor.vault.store_sas import ContainerSasStore
from tests.builders.keys import keyring, rsa_key
from tests.builders.records import GUID, backup_record

pytestmark = pytest.mark.integration

VICTIM = "HOST\\VICTIM"
PREFIX = "it/prod"


def _write(vault: Vault, first: int, point_id: str | None = None) -> Manifest:
    writer = vault.open_writer(VICTIM, "Sales", GUID, BackupType.FULL, recovery_point_id=point_id)
    writer.write(b"pages" * 1000)
    return writer.commit(backup_record(BackupType.FULL, guid=GUID, first_lsn=first))


def _plan(manifest: Manifest) -> RestorePlanStatus:
    b = manifest.backup
    step = PlanStep(
        recovery_point_id=manifest.identity.recovery_point_id,
        backup_type=b.backup_type,
        first_lsn=str(b.first_lsn),
        last_lsn=str(b.last_lsn),
        finish=b.finish,
    )
    return RestorePlanStatus(
        instance=VICTIM, database_guid=GUID, database_name="Sales", steps=[step]
    )


@pytest.fixture
def setup(vault_azurite: str) -> tuple[VaultAccess, Vault]:
    """The operator's access to a new vault (endorsement required, one genuine point
    indexed), and a thief's vault over the same container with a backup grant."""
    container = f"e-{uuid.uuid4().hex[:12]}"
    store = AzureBlobStore.from_connection_string(vault_azurite, container)
    ring = keyring()
    operator = Vault(store, Layout(PREFIX), ring)
    operator.catalog.endorsement.require()  # what the operator does for a new vault
    _write(operator, 1000)  # genuine, indexed on commit
    issuer = SasIssuer.from_connection_string(vault_azurite, container)
    grant = ContainerSasStore.open(
        issuer.account_url, container, issuer.backup_grant(datetime.now(UTC) + timedelta(hours=1))
    )
    thief = Vault(grant, Layout(PREFIX), PublicWrapper(rsa_key().public()), indexes=False)
    return VaultAccess(operator, ring, issuer), thief


def test_a_forged_point_and_catalog_line_are_not_listed_nor_granted(
    setup: tuple[VaultAccess, Vault],
) -> None:
    access, thief = setup
    genuine = access.catalog.list_points(VICTIM, GUID)
    assert len(genuine) == 1
    forged = _write(thief, 5000)  # a self-consistent point the victim never took
    segment = access.vault.layout.points_segment(VICTIM, GUID, forged.backup.finish)
    thief.store.put(segment, entry_line(genuine[0]) + entry_line(forged.recovery_point()))
    marker = access.vault.layout.endorsement_marker()
    thief.store.put(marker, b'{"version": 1}')  # an agent may write one: only stricter

    reread = Vault(access.vault.store, Layout(PREFIX), access.keyring).catalog
    assert reread.endorsement.required()
    assert reread.list_points(VICTIM, GUID) == [], "no line the thief wrote counts"
    with pytest.raises(IntegrityError, match="not the one the operator indexed"):
        checked_plan(access, _plan(forged))


def test_a_manifest_written_over_an_indexed_point_is_refused(
    setup: tuple[VaultAccess, Vault],
) -> None:
    access, thief = setup
    [genuine] = access.catalog.list_points(VICTIM, GUID)
    layout = access.vault.layout
    name = layout.manifest_blob(VICTIM, GUID, genuine.id)
    original = access.vault.store.get(name)
    # the thief writes a whole new point under the same id, then puts its manifest there
    forged_id = genuine.id
    shadow = Vault(thief.store, Layout(f"{PREFIX}/shadow"), thief.keys, indexes=False)
    forged = _write(shadow, genuine.record.first_lsn, point_id=forged_id)
    forged_body = forged.to_json()  # what the thief's writer wrote (it cannot read back)
    assert forged_body != original
    # the thief's grant cannot read, so it cannot have copied this: it wrote it itself
    with pytest.raises(Exception):  # noqa: B017, PT011
        thief.store.get(name)
    thief.store.put(name, forged_body)  # the backup SAS may overwrite: Azure cannot scope it
    assert access.vault.store.get(name) == forged_body
    with pytest.raises(IntegrityError, match="not the one the operator indexed"):
        checked_plan(access, _plan(forged))


def test_endorse_brings_a_legacy_catalog_under_endorsement(vault_azurite: str) -> None:
    container = f"l-{uuid.uuid4().hex[:12]}"
    store = AzureBlobStore.from_connection_string(vault_azurite, container)
    legacy = Vault(store, Layout(PREFIX), PublicWrapper(rsa_key().public()))  # no endorser
    points = [_write(legacy, 1000 * n) for n in (1, 2, 3)]
    operator = Vault(store, Layout(PREFIX), keyring())
    assert not operator.catalog.endorsement.required()
    assert len(operator.catalog.list_points(VICTIM, GUID)) == 3  # read as before
    report = endorse(operator)
    assert (report.points, report.endorsed, report.refused, report.required) == (3, 3, [], True)
    after = Vault(store, Layout(PREFIX), keyring()).catalog
    assert after.endorsement.required()
    listed = after.list_points(VICTIM, GUID)
    assert [p.id for p in listed] == sorted(m.identity.recovery_point_id for m in points)
    assert all(p.tag for p in listed), "each endorsed line pins its manifest"
