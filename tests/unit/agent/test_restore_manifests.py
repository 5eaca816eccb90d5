"""The agent's restore reads each step's manifest from the vault and restores one stream per
step: a striped point (several streams, written by a newer sqlharbor) is refused up front."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlharbor_agent.jobs import restore

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import ErrorCode, PermanentError
from sqlharbor.vault import KeyEncryptionKey, Layout, Manifest, Vault
from tests.builders.records import GUID, backup_record
from tests.builders.stores import MemoryBlobStore

INSTANCE = "HOST\\SQL01"


def _vault_with_a_point() -> tuple[Vault, Manifest]:
    vault = Vault(MemoryBlobStore(), Layout(), KeyEncryptionKey.generate())
    writer = vault.open_writer(INSTANCE, "Sales", GUID, BackupType.FULL)
    writer.write(b"pages")
    return vault, writer.commit(backup_record(guid=GUID))


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
    striped = manifest.model_copy(
        update={"data": manifest.data.model_copy(update={"stripes": (stripe, second)})}
    )
    monkeypatch.setattr(vault, "manifest", lambda *args: striped)
    with pytest.raises(PermanentError, match="striped over 2 streams") as caught:
        restore._manifests(vault, _plan(manifest))  # type: ignore[arg-type]
    assert caught.value.code == ErrorCode.VAULT_FORMAT_TOO_NEW
