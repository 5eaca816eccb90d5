"""Job-scoped grants against a real Azurite: the service enforces what each SAS allows.

A backup's container SAS (create + write) writes new blobs and nothing else; a restore's
blob SASes read the granted blobs and nothing else; expired or edited tokens are refused;
no refusal's message carries a signature.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import (
    AlreadyExists,
    ContainerNotFound,
    SqlHarborError,
    VaultAccessDenied,
)
from sqlharbor.vault import AzureBlobStore, KeyEncryptionKey, Layout, Vault, WriterSettings
from sqlharbor.vault.sas import SasIssuer
from sqlharbor.vault.store import block_id, translate
from sqlharbor.vault.store_sas import BlobSasStore, ContainerSasStore
from tests.builders.records import backup_record

pytestmark = pytest.mark.integration

OTHER_POINT = "it/prod/db/points/rp-old/data-0"
CATALOG = "it/prod/db/catalog/2026.jsonl"
A = "it/prod/db/points/rp-1/manifest.json"
B = "it/prod/db/points/rp-1/data-0"
C = "it/prod/db/points/rp-2/data-0"
BODY_B = bytes(range(256)) * 40
GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def signature(token: str) -> str:
    return parse_qs(token)["sig"][0]


class Refusals:
    """Collects the errors of refused calls, to check none carries a signature."""

    def __init__(self) -> None:
        self.errors: list[SqlHarborError] = []

    def refused(
        self, call: Callable[[], object], kind: type[SqlHarborError] = VaultAccessDenied
    ) -> SqlHarborError:
        with pytest.raises(kind) as caught:
            call()
        self.errors.append(caught.value)
        return caught.value

    def assert_no_secret(self, *tokens: str) -> None:
        assert self.errors
        for error in self.errors:
            text = f"{error} {error!r} {error.remediation}"
            for token in tokens:
                assert signature(token) not in text
                assert token not in text
            assert "sig=" not in text


@pytest.fixture
def container(vault_azurite: str) -> str:
    return f"sas-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def admin(vault_azurite: str, container: str) -> AzureBlobStore:
    """The operator's view (account key): seeds blobs and checks what the agent did."""
    store = AzureBlobStore.from_connection_string(vault_azurite, container)
    store.put(OTHER_POINT, b"an earlier point")
    store.append(CATALOG, b'{"point": "rp-old"}\n')
    store.put(A, b'{"manifest": 1}')
    store.put(B, BODY_B)
    store.put(C, b"not granted")
    return store


@pytest.fixture
def issuer(vault_azurite: str, container: str) -> SasIssuer:
    return SasIssuer.from_connection_string(vault_azurite, container)


@pytest.fixture
def refusals() -> Refusals:
    return Refusals()


# -- backup grants ---------------------------------------------------------------------------
def test_a_backup_grant_is_a_container_sas_for_create_and_write_only(issuer: SasIssuer) -> None:
    fields = parse_qs(issuer.backup_grant(soon()))
    assert fields["sp"] == ["cw"]
    assert fields["sr"] == ["c"]
    assert fields["spr"] == ["https,http"]  # Azurite is http


def test_a_backup_grant_writes_new_blobs(admin: AzureBlobStore, issuer: SasIssuer) -> None:
    store = ContainerSasStore.open(
        issuer.account_url, issuer.container, issuer.backup_grant(soon())
    )
    name = "it/prod/db/points/rp-3/data-0"
    store.stage_block(name, block_id(0), b"first ")
    store.stage_block(name, block_id(1), b"second")
    store.commit_blocks(name, [block_id(0), block_id(1)])
    store.put("it/prod/db/points/rp-3/manifest.json", b"{}", if_absent=True)
    assert admin.get(name) == b"first second"
    assert admin.get("it/prod/db/points/rp-3/manifest.json") == b"{}"


def test_a_backup_grant_cannot_take_an_existing_name(
    admin: AzureBlobStore, issuer: SasIssuer
) -> None:
    """Create-only writes stay create-only, even where the commit cannot read back."""
    store = ContainerSasStore.open(
        issuer.account_url, issuer.container, issuer.backup_grant(soon())
    )
    with pytest.raises(AlreadyExists):
        store.put(OTHER_POINT, b"overwritten", if_absent=True)
    store.stage_block(OTHER_POINT, block_id(0), b"overwritten")
    with pytest.raises(AlreadyExists):
        store.commit_blocks(OTHER_POINT, [block_id(0)])
    assert admin.get(OTHER_POINT) == b"an earlier point"


def test_a_backup_grant_cannot_read_list_or_delete(
    admin: AzureBlobStore, issuer: SasIssuer, refusals: Refusals
) -> None:
    token = issuer.backup_grant(soon())
    store = ContainerSasStore.open(issuer.account_url, issuer.container, token)
    refusals.refused(lambda: store.get(OTHER_POINT))
    refusals.refused(lambda: store.get(OTHER_POINT, 2, 4))
    refusals.refused(lambda: store.exists(OTHER_POINT))
    refusals.refused(lambda: list(store.list("it/")))
    refusals.refused(lambda: store.delete(OTHER_POINT))
    assert admin.get(OTHER_POINT) == b"an earlier point"
    refusals.assert_no_secret(token)


def test_a_backup_grant_appends_to_an_existing_append_blob(
    admin: AzureBlobStore, issuer: SasIssuer
) -> None:
    """Not refused: Append Block is allowed by ``a`` *or* ``w`` (Azure's rule, which
    Azurite follows), and a backup grant must hold ``w`` for Put Block.  Pinned here so
    that the day this changes is noticed: the catalog is then appended by the writer's
    grant, or must move to the operator."""
    store = ContainerSasStore.open(
        issuer.account_url, issuer.container, issuer.backup_grant(soon())
    )
    store.append(CATALOG, b'{"point": "rp-3"}\n')
    assert admin.get(CATALOG) == b'{"point": "rp-old"}\n{"point": "rp-3"}\n'


def test_a_backup_grant_can_overwrite_without_a_condition(
    admin: AzureBlobStore, issuer: SasIssuer
) -> None:
    """Not refused either: ``w`` is also Azure's right to overwrite, so only the writer's
    create-only conditions protect existing points from a backup grant.  A forged
    overwrite is caught when read (manifests and chunks are authenticated), but the old
    content is gone: immutability (a container WORM policy) is the remedy, not the SAS."""
    store = ContainerSasStore.open(
        issuer.account_url, issuer.container, issuer.backup_grant(soon())
    )
    store.put(OTHER_POINT, b"overwritten")
    assert admin.get(OTHER_POINT) == b"overwritten"


def test_a_backup_grant_never_creates_the_container(vault_azurite: str, issuer: SasIssuer) -> None:
    missing = SasIssuer.from_connection_string(vault_azurite, f"none-{uuid.uuid4().hex[:8]}")
    store = ContainerSasStore.open(
        missing.account_url, missing.container, missing.backup_grant(soon())
    )
    with pytest.raises(ContainerNotFound):
        store.put("x", b"x", if_absent=True)
    admin = AzureBlobStore.from_connection_string(vault_azurite, missing.container, create=False)
    with pytest.raises(ContainerNotFound):
        admin.put("probe", b"", if_absent=True)


# -- restore grants --------------------------------------------------------------------------
def test_a_restore_grant_reads_the_granted_blobs(admin: AzureBlobStore, issuer: SasIssuer) -> None:
    tokens = issuer.restore_grant([A, B], soon())
    assert set(tokens) == {A, B}
    for token in tokens.values():
        fields = parse_qs(token)
        assert (fields["sp"], fields["sr"]) == (["r"], ["b"])
    store = BlobSasStore.open(issuer.account_url, issuer.container, tokens)
    assert store.get(A) == b'{"manifest": 1}'
    assert store.get(B) == BODY_B
    assert store.get(B, 1000, 300) == BODY_B[1000:1300]
    assert store.get(B, len(BODY_B) - 5) == BODY_B[-5:]
    assert store.exists(A)


def test_a_restore_grant_refuses_anything_else_locally(
    admin: AzureBlobStore, issuer: SasIssuer, refusals: Refusals
) -> None:
    tokens = issuer.restore_grant([A, B], soon())
    store = BlobSasStore.open(issuer.account_url, issuer.container, tokens)
    error = refusals.refused(lambda: store.get(C))
    assert repr(C) in str(error)
    refusals.refused(lambda: store.exists(C))
    refusals.refused(lambda: store.put(A, b"x"))
    refusals.refused(lambda: store.stage_block(A, block_id(0), b"x"))
    refusals.refused(lambda: store.commit_blocks(A, [block_id(0)]))
    refusals.refused(lambda: store.delete(A))
    refusals.refused(lambda: store.append(CATALOG, b"x"))
    refusals.refused(lambda: store.list("it/"))
    # all refused here, before any request: the service's refusals say "HTTP 403"
    assert all("restore grant" in str(e) and "HTTP" not in str(e) for e in refusals.errors)
    assert "read-only" in str(refusals.errors[-1])
    assert admin.get(A) == b'{"manifest": 1}'
    assert len(admin.get(CATALOG).splitlines()) == 1
    refusals.assert_no_secret(*tokens.values())


def test_a_restore_token_is_scoped_to_its_blob(
    admin: AzureBlobStore, issuer: SasIssuer, refusals: Refusals
) -> None:
    """A's token presented for C (the local check bypassed) is refused by the service."""
    token = issuer.restore_grant([A], soon())[A]
    other = BlobClient(issuer.account_url, issuer.container, C, credential=token, retry_total=0)
    with pytest.raises(HttpResponseError) as caught:
        other.download_blob().readall()
    assert caught.value.status_code == 403
    forged = BlobSasStore.open(issuer.account_url, issuer.container, {C: token})
    refusals.refused(lambda: forged.get(C))
    refusals.assert_no_secret(token)


def test_a_restore_token_cannot_write_or_delete(
    admin: AzureBlobStore, issuer: SasIssuer, refusals: Refusals
) -> None:
    """The service itself refuses writes with a read token (the client built directly)."""
    token = issuer.restore_grant([A], soon())[A]
    blob = BlobClient(issuer.account_url, issuer.container, A, credential=token, retry_total=0)
    for call in (
        lambda: blob.upload_blob(b"overwritten", overwrite=True),
        lambda: blob.delete_blob(),
        lambda: blob.stage_block(block_id(0), b"x"),
    ):
        with pytest.raises(HttpResponseError) as caught:
            call()
        assert caught.value.status_code == 403
        error = translate(caught.value, "write", A)
        assert isinstance(error, VaultAccessDenied)
        refusals.errors.append(error)
    # the same token as a container-style store's credential: the service says no too
    store = ContainerSasStore.open(issuer.account_url, issuer.container, token)
    refusals.refused(lambda: store.put(A, b"overwritten"))
    refusals.refused(lambda: store.delete(A))
    assert admin.get(A) == b'{"manifest": 1}'
    refusals.assert_no_secret(token)


# -- expired and edited tokens ---------------------------------------------------------------
def test_expired_grants_are_refused(
    vault_azurite: str, admin: AzureBlobStore, issuer: SasIssuer, refusals: Refusals
) -> None:
    """Issued by an operator whose clock is an hour behind: valid then, expired now."""
    late = SasIssuer.from_connection_string(
        vault_azurite, issuer.container, now=lambda: datetime.now(UTC) - timedelta(hours=1)
    )
    expiry = datetime.now(UTC) - timedelta(minutes=30)
    backup = late.backup_grant(expiry)
    restore = late.restore_grant([A], expiry)
    writer = ContainerSasStore.open(late.account_url, late.container, backup)
    refusals.refused(lambda: writer.put("it/prod/db/points/rp-9/manifest.json", b"{}"))
    reader = BlobSasStore.open(late.account_url, late.container, restore)
    refusals.refused(lambda: reader.get(A))
    assert not admin.exists("it/prod/db/points/rp-9/manifest.json")
    refusals.assert_no_secret(backup, *restore.values())


def test_a_grant_expires_while_held(issuer: SasIssuer, admin: AzureBlobStore) -> None:
    """A grant ending in three seconds works, then is refused once the service's clock
    passes its expiry (awaited, not slept)."""
    tokens = issuer.restore_grant([A], datetime.now(UTC) + timedelta(seconds=3))
    store = BlobSasStore.open(issuer.account_url, issuer.container, tokens)
    assert store.get(A) == b'{"manifest": 1}'
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while True:
        try:
            store.get(A)
        except VaultAccessDenied:
            return
        assert datetime.now(UTC) < deadline, "the grant was still honoured 30s after expiry"
        time.sleep(0.1)  # between polls of the condition


@pytest.mark.parametrize(("granted", "edited"), [("sp=cw", "sp=rcwdl"), ("sp=cw", "sp=r")])
def test_a_backup_token_with_edited_permissions_is_refused(
    admin: AzureBlobStore, issuer: SasIssuer, refusals: Refusals, granted: str, edited: str
) -> None:
    token = issuer.backup_grant(soon())
    assert granted in token
    forged = token.replace(granted, edited)
    store = ContainerSasStore.open(issuer.account_url, issuer.container, forged)
    refusals.refused(lambda: store.get(OTHER_POINT))
    refusals.refused(lambda: store.delete(OTHER_POINT))
    refusals.refused(lambda: store.put("it/prod/db/points/rp-4/data-0", b"x", if_absent=True))
    assert admin.get(OTHER_POINT) == b"an earlier point"
    refusals.assert_no_secret(token, forged)


def test_a_restore_token_with_edited_permissions_is_refused(
    admin: AzureBlobStore, issuer: SasIssuer, refusals: Refusals
) -> None:
    token = issuer.restore_grant([A], soon())[A]
    forged = token.replace("sp=r", "sp=rwd")
    assert forged != token
    store = ContainerSasStore.open(issuer.account_url, issuer.container, forged)
    refusals.refused(lambda: store.delete(A))
    refusals.refused(lambda: store.get(A))
    assert admin.get(A) == b'{"manifest": 1}'
    refusals.assert_no_secret(token, forged)


# -- the vault over grants, end to end ---------------------------------------------------------
def test_a_vault_backs_up_with_a_backup_grant_and_restores_with_a_restore_grant(
    admin: AzureBlobStore, issuer: SasIssuer
) -> None:
    """The rights are enough: a whole point (blocks, manifest, catalog) is written with
    create + write, and read back with read on exactly its own blobs."""
    kek, layout = KeyEncryptionKey.generate(), Layout("it/prod")
    settings = WriterSettings(chunk_size=64 * 1024, max_in_flight=4, parallelism=2)
    backup = ContainerSasStore.open(
        issuer.account_url, issuer.container, issuer.backup_grant(soon())
    )
    data = os.urandom(300_000)
    rec = backup_record(
        BackupType.FULL,
        guid=GUID,
        first_lsn=1000,
        last_lsn=2000,
        checkpoint_lsn=1001,
        database_backup_lsn=1000,
        start=datetime(2026, 11, 24, 18, 0, tzinfo=UTC),
        duration=timedelta(seconds=20),
        size_bytes=0,
    )
    writer = Vault(backup, layout, kek, writer_settings=settings).open_writer(
        "VM01", "Sales", GUID, BackupType.FULL
    )
    writer.write(data)
    manifest = writer.commit(rec)

    operator = Vault(admin, layout, kek)
    point_id = manifest.identity.recovery_point_id
    assert [p.id for p in operator.catalog.list_points("VM01", GUID)] == [point_id]
    blobs = [b.name for b in admin.list(layout.point_dir("VM01", GUID, point_id))]
    assert layout.manifest_blob("VM01", GUID, point_id) in blobs

    restore = BlobSasStore.open(
        issuer.account_url, issuer.container, issuer.restore_grant(blobs, soon())
    )
    agent = Vault(restore, layout, kek)
    loaded = agent.manifest("VM01", GUID, point_id)
    out, buffer = bytearray(), bytearray(32 * 1024)
    with agent.open_reader(loaded) as reader:
        while count := reader.readinto(buffer):
            out += buffer[:count]
    assert bytes(out) == data
