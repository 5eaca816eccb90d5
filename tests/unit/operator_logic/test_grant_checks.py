"""What the operator checks before it grants a restore (``grants.checked_plan``) or indexes
a reported point (``indexing.check_reported``): each manifest authenticated with the
keyring, and matched against the plan step or the agent's report."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlharbor_operator.grants import checked_plan
from sqlharbor_operator.indexing import check_reported
from sqlharbor_operator.vaults import VaultAccess

from sqlharbor.api.jobs import DatabaseResult, JobPhase, PlanStep, RestorePlanStatus
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import IntegrityError, KeyUnavailable
from sqlharbor.vault import Layout, Manifest, Vault
from sqlharbor.vault.keyring import PublicWrapper
from sqlharbor.vault.reader import data_blobs
from sqlharbor.vault.sas import SasIssuer
from tests.builders.keys import keyring, rsa_key
from tests.builders.records import GUID, backup_record
from tests.builders.stores import MemoryBlobStore

INSTANCE = "HOST\\SQL01"
ISSUER = SasIssuer("https://acct.blob.core.windows.net", "c", account_key="a2V5")


def _access(store: MemoryBlobStore, key: int = 0) -> VaultAccess:
    ring = keyring(key)
    return VaultAccess(Vault(store, Layout("p"), ring), ring, ISSUER)


def _point(store: MemoryBlobStore, first: int, last: int) -> Manifest:
    """A point written the agent's way: wrapped with the public key only."""
    agent = Vault(store, Layout("p"), PublicWrapper(rsa_key().public()), indexes=False)
    backup_type = BackupType.FULL if first == 1000 else BackupType.LOG
    writer = agent.open_writer(INSTANCE, "Sales", GUID, backup_type)
    writer.write(b"pages" * 100)
    return writer.commit(backup_record(backup_type, guid=GUID, first_lsn=first, last_lsn=last))


def _plan(*manifests: Manifest, last: str | None = None) -> RestorePlanStatus:
    steps = [
        PlanStep(
            recovery_point_id=m.identity.recovery_point_id,
            backup_type=m.backup.backup_type,
            first_lsn=str(m.backup.first_lsn),
            last_lsn=last or str(m.backup.last_lsn),
            finish=datetime.now(UTC),
        )
        for m in manifests
    ]
    return RestorePlanStatus(
        instance=INSTANCE, database_guid=GUID, database_name="Sales", steps=steps
    )


def test_a_plan_gets_its_keys_and_exactly_its_blobs() -> None:
    store = MemoryBlobStore()
    full, log = _point(store, 1000, 2000), _point(store, 2000, 2100)
    _point(store, 2100, 2200)  # not in the plan
    access = _access(store)
    keys, blobs = checked_plan(access, _plan(full, log))
    assert sorted(keys) == sorted(m.identity.recovery_point_id for m in (full, log))
    layout = access.vault.layout
    expected = []
    for m in (full, log):
        expected.append(layout.manifest_blob(INSTANCE, GUID, m.identity.recovery_point_id))
        expected += data_blobs(layout, m)
    assert blobs == expected
    assert all(len(k) == 32 for k in keys.values())


def test_a_catalog_entry_that_does_not_describe_its_point_is_refused() -> None:
    store = MemoryBlobStore()
    full = _point(store, 1000, 2000)
    with pytest.raises(IntegrityError, match="the catalog entry does not describe this point"):
        checked_plan(_access(store), _plan(full, last="2500"))


def test_an_edited_manifest_is_refused() -> None:
    store = MemoryBlobStore()
    full = _point(store, 1000, 2000)
    name = Layout("p").manifest_blob(INSTANCE, GUID, full.identity.recovery_point_id)
    doc = json.loads(store.blobs[name])
    doc["backup"]["database_name"] = "Forged"
    store.blobs[name] = json.dumps(doc).encode()
    with pytest.raises(IntegrityError, match="failed authentication"):
        checked_plan(_access(store), _plan(full))


def test_a_point_under_a_key_the_vault_does_not_list_is_refused() -> None:
    store = MemoryBlobStore()
    full = _point(store, 1000, 2000)
    with pytest.raises(KeyUnavailable, match="which the vault does not list"):
        checked_plan(_access(store, key=1), _plan(full))


def test_an_agent_report_must_match_the_manifest() -> None:
    store = MemoryBlobStore()
    full = _point(store, 1000, 2000)
    report = DatabaseResult(
        name="Sales",
        phase=JobPhase.SUCCEEDED,
        backup_type=BackupType.FULL,
        recovery_point_id=full.identity.recovery_point_id,
        database_guid=GUID,
        first_lsn="1000",
        last_lsn="2000",
    )
    check_reported(full, INSTANCE, report)
    with pytest.raises(IntegrityError, match="the agent reported"):
        check_reported(full, "OTHER\\SQL", report)
    with pytest.raises(IntegrityError, match=r"LSN 1000\.\.2100"):
        check_reported(full, INSTANCE, report.model_copy(update={"last_lsn": "2100"}))
