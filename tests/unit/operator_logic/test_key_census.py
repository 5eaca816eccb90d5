"""The key census counts each listed key's points across the vault's catalog, completing
catalog lines that predate the key field from their manifests."""

from __future__ import annotations

from types import SimpleNamespace

from sqlharbor_operator.key_census import KeyCensus
from sqlharbor_operator.vaults import VaultAccess

from sqlharbor.api import BackupVault
from sqlharbor.domain.backupset import BackupType, RecoveryPoint
from sqlharbor.vault import Layout, Manifest, Vault
from sqlharbor.vault.keyring import Keyring
from sqlharbor.vault.sas import SasIssuer
from sqlharbor.vault.wrapping import SecretRsaKey
from tests.builders.keys import rsa_key
from tests.builders.records import GUID, backup_record
from tests.builders.stores import MemoryBlobStore

INSTANCE = "HOST\\SQL01"
A, B = rsa_key(0), rsa_key(1)

VAULT = BackupVault.model_validate(
    {
        "kind": "BackupVault",
        "metadata": {"namespace": "ns", "name": "v"},
        "spec": {
            "azureBlob": {
                "container": "backups",
                "credentials": {"secretRef": {"name": "s", "key": "k"}},
            },
            "encryption": {
                "keySecretRef": {"name": "key-b", "key": "key"},
                "previousKeys": [{"keySecretRef": {"name": "key-a", "key": "key"}}],
            },
        },
    }
)


def _write(store: MemoryBlobStore, key: SecretRsaKey, first: int) -> Manifest:
    vault = Vault(store, Layout("p"), Keyring([key]))
    writer = vault.open_writer(INSTANCE, "Sales", GUID, BackupType.FULL)
    writer.write(b"pages")
    return writer.commit(backup_record(guid=GUID, first_lsn=first, last_lsn=first + 10))


def _line(access: VaultAccess, point: str) -> RecoveryPoint:
    return next(p for p in access.catalog.list_points(INSTANCE, GUID) if p.id == point)


def test_points_are_counted_per_listed_key_and_old_lines_are_completed() -> None:
    store = MemoryBlobStore()
    old = [_write(store, A, 1000), _write(store, A, 2000)]
    _write(store, B, 3000)
    ring = Keyring([B, A])
    access = VaultAccess(
        Vault(store, Layout("p"), ring),
        ring,
        SasIssuer("https://a.blob.core.windows.net", "c", account_key="a2V5"),
    )
    # a line written before lines named their key
    legacy = RecoveryPoint(old[0].identity.recovery_point_id, old[0].to_record())
    access.catalog.add_points(INSTANCE, [legacy])
    assert _line(access, legacy.id).key is None

    census = KeyCensus(SimpleNamespace(), lambda vault: access, interval=None)  # type: ignore[arg-type]
    uses = census.count(VAULT)
    assert [(u.ref, u.key_id, u.points) for u in uses] == [
        ("secret:key-b/key", B.key_id, 1),
        ("secret:key-a/key", A.key_id, 2),
    ]
    healed = _line(access, legacy.id)
    assert healed.key is not None
    assert healed.key.key_id == A.key_id
