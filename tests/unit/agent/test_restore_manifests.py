"""The agent's restore reads and authenticates each step's manifest before it starts, and
restores one stream per step: a striped point (several streams, written by a newer
sqlharbor) or a tampered step is refused up front."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlharbor_agent.jobs import restore

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import ErrorCode, IntegrityError, PermanentError
from sqlharbor.vault import Layout, Manifest, Vault
from sqlharbor.vault.manifest_auth import seal
from tests.builders.keys import keyring
from tests.builders.records import GUID, backup_record
from tests.builders.stores import MemoryBlobStore

INSTANCE = "HOST\\SQL01"


def _vault_with_a_point() -> tuple[Vault, Manifest]:
    vault = Vault(MemoryBlobStore(), Layout(), keyring())
    writer = vault.open_writer(INSTANCE, "Sales", GUID, BackupType.FULL)
    writer.write(b"pages")
    return vault, writer.commit(backup_record(guid=GUID))


def _data_key(vault: Vault, manifest: Manifest) -> bytes:
    return vault.keys.data_key(manifest)


def _plan(manifest: Manifest) -> SimpleNamespace:
    step = SimpleNamespace(recovery_point_id=manifest.identity.recovery_point_id)
    return SimpleNamespace(instance=INSTANCE, database_guid=GUID, steps=[step])


def test_single_stream_points_are_read_for_the_plan() -> None:
    vault, manifest = _vault_with_a_point()
    assert restore._manifests(vault, _plan(manifest)) == [manifest]  # type: ignore[arg-type]


def test_a_striped_point_is_refused_before_anything_is_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vault, manifest = _vault_with_a_point()
    [stripe] = manifest.data.stripes
    second = stripe.model_copy(update={"index": 1, "nonce_prefix": "ffffffff"})
    striped = seal(  # as a striped writer seals it
        manifest.model_copy(
            update={
                "data": manifest.data.model_copy(update={"stripes": (stripe, second)}),
                "authentication": None,
            }
        ),
        _data_key(vault, manifest),
    )
    monkeypatch.setattr(vault, "manifest", lambda *args: striped)
    with pytest.raises(PermanentError, match="striped over 2 streams") as caught:
        restore._manifests(vault, _plan(manifest))  # type: ignore[arg-type]
    assert caught.value.code == ErrorCode.VAULT_FORMAT_TOO_NEW


def test_a_tampered_later_step_is_refused_before_the_first_is_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every step's manifest is authenticated before the restore starts: a forged log
    point is found before the full has overwritten anything."""
    vault, manifest = _vault_with_a_point()
    forged = manifest.model_copy(
        update={"backup": manifest.backup.model_copy(update={"last_lsn": 10**20})}
    )
    reads = iter([manifest, forged])
    monkeypatch.setattr(vault, "manifest", lambda *args: next(reads))
    plan = _plan(manifest)
    plan.steps.append(plan.steps[0])
    with pytest.raises(IntegrityError, match="failed authentication"):
        restore._manifests(vault, plan)  # type: ignore[arg-type]
