"""What the operator checks before it grants a restore (``grants.checked_plan``) or indexes
a reported point (``indexing.check_reported``): each manifest authenticated with the
keyring, matched against the plan step or the agent's report, and (for a restore) found
to be the manifest the operator endorsed when it indexed the point."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlharbor_operator.grants import checked_plan
from sqlharbor_operator.indexing import check_reported, check_timely
from sqlharbor_operator.vaults import VaultAccess

from sqlharbor.api.jobs import DatabaseResult, JobPhase, PlanStep, RestorePlanStatus
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import IntegrityError, KeyUnavailable
from sqlharbor.vault import Layout, Manifest, Vault
from sqlharbor.vault.catalog_lines import entry_line
from sqlharbor.vault.keyring import PublicWrapper
from sqlharbor.vault.layout import RecoveryPointId
from sqlharbor.vault.reader import data_blobs
from sqlharbor.vault.sas import SasIssuer
from tests.builders.keys import keyring, rsa_key
from tests.builders.records import GUID, T0, backup_record
from tests.builders.stores import MemoryBlobStore

INSTANCE = "HOST\\SQL01"
ISSUER = SasIssuer("https://acct.blob.core.windows.net", "c", account_key="a2V5")


def _access(store: MemoryBlobStore, key: int = 0) -> VaultAccess:
    ring = keyring(key)
    return VaultAccess(Vault(store, Layout("p"), ring), ring, ISSUER)


def _point(
    store: MemoryBlobStore,
    first: int,
    last: int,
    point_id: str | None = None,
    start: datetime = T0,
) -> Manifest:
    """A point written the agent's way: wrapped with the public key only (not indexed)."""
    agent = Vault(store, Layout("p"), PublicWrapper(rsa_key().public()), indexes=False)
    backup_type = BackupType.FULL if first == 1000 else BackupType.LOG
    writer = agent.open_writer(INSTANCE, "Sales", GUID, backup_type, recovery_point_id=point_id)
    writer.write(b"pages" * 100)
    return writer.commit(
        backup_record(backup_type, guid=GUID, first_lsn=first, last_lsn=last, start=start)
    )


def _plan(*manifests: Manifest, last: str | None = None) -> RestorePlanStatus:
    steps = [
        PlanStep(
            recovery_point_id=m.identity.recovery_point_id,
            backup_type=m.backup.backup_type,
            first_lsn=str(m.backup.first_lsn),
            last_lsn=last or str(m.backup.last_lsn),
            finish=m.backup.finish,
        )
        for m in manifests
    ]
    return RestorePlanStatus(
        instance=INSTANCE, database_guid=GUID, database_name="Sales", steps=steps
    )


def _indexed(access: VaultAccess, *manifests: Manifest) -> None:
    """What the operator's indexer does with a reported point: an endorsed catalog line."""
    for manifest in manifests:
        access.catalog.add(manifest)


def test_a_plan_gets_its_keys_and_exactly_its_blobs() -> None:
    store = MemoryBlobStore()
    full, log = _point(store, 1000, 2000), _point(store, 2000, 2100)
    _point(store, 2100, 2200)  # not in the plan
    access = _access(store)
    _indexed(access, full, log)
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
    access = _access(store)
    _indexed(access, full)
    with pytest.raises(IntegrityError, match="the catalog entry does not describe this point"):
        checked_plan(access, _plan(full, last="2500"))


def test_a_point_the_operator_never_indexed_is_refused() -> None:
    """A self-consistent point an agent wrote (its own data key, wrapped with the public
    key) and a plan naming it: no endorsed catalog line names it."""
    store = MemoryBlobStore()
    forged = _point(store, 1000, 2000)
    access = _access(store)
    access.catalog.endorsement.require()
    access.vault.store.append(  # the agent's own catalog line, without the operator's key
        access.vault.layout.points_segment(INSTANCE, GUID, forged.backup.finish),
        entry_line(forged.recovery_point()),
    )
    assert access.catalog.list_points(INSTANCE, GUID) == []
    with pytest.raises(IntegrityError, match="not the one the operator indexed"):
        checked_plan(access, _plan(forged))


def test_a_manifest_written_over_an_indexed_point_is_refused() -> None:
    """An agent can overwrite blobs (its backup SAS writes): a new, self-consistent point
    under the indexed point's id.  It authenticates (the agent chose its data key), but
    it is not the manifest the operator endorsed."""
    store = MemoryBlobStore()
    genuine = _point(store, 1000, 2000)
    access = _access(store)
    _indexed(access, genuine)
    point_id = genuine.identity.recovery_point_id
    for name in [n for n in store.blobs if point_id in n]:  # what overwriting comes to
        del store.blobs[name]
    forged = _point(store, 1000, 2000, point_id=point_id)
    assert forged.authentication != genuine.authentication
    with pytest.raises(IntegrityError, match="not the one the operator indexed"):
        checked_plan(access, _plan(forged))


def test_an_edited_manifest_is_refused() -> None:
    store = MemoryBlobStore()
    full = _point(store, 1000, 2000)
    name = Layout("p").manifest_blob(INSTANCE, GUID, full.identity.recovery_point_id)
    doc = json.loads(store.blobs[name])
    doc["backup"]["database_name"] = "Forged"
    store.blobs[name] = json.dumps(doc).encode()
    access = _access(store)
    _indexed(access, full)
    with pytest.raises(IntegrityError, match="failed authentication"):
        checked_plan(access, _plan(full))


def test_a_point_under_a_key_the_vault_does_not_list_is_refused() -> None:
    store = MemoryBlobStore()
    full = _point(store, 1000, 2000)
    access = _access(store, key=1)
    _indexed(access, full)
    with pytest.raises(KeyUnavailable, match="which the vault does not list"):
        checked_plan(access, _plan(full))


def test_a_reported_point_must_have_been_taken_while_its_job_ran() -> None:
    """An agent that overwrote an older point it knows the name of, and reports it again in
    a new job, is refused: the point's id and finish predate the job."""
    store = MemoryBlobStore()
    full = _point(store, 1000, 2000, start=datetime.now(UTC))
    taken = RecoveryPointId.parse(full.identity.recovery_point_id).created
    check_timely(full, taken - timedelta(minutes=1), taken + timedelta(minutes=1))
    later = taken + timedelta(days=1)
    with pytest.raises(IntegrityError, match="outside its job's run"):
        check_timely(full, later, later + timedelta(minutes=5))


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
