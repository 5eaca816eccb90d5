"""``Vault``: the one object the agent, the operator and the CLI hold to use a vault.

It ties a ``BlobStore``, a ``Layout`` and the vault's keys (``keyring.VaultKeys``: the
half of them this holder may have) together: it opens
writers (backups) and readers (restores), loads manifests, exposes the ``Catalog``
and deletes recovery points for retention.  ``Vault.from_settings`` builds one from
plain settings (connection string or account URL + credential, container, prefix,
keys), which is what the operator and the CLI read from a BackupVault and its Secrets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import (
    BlobNotFound,
    ErrorCode,
    InvalidInput,
    InvalidName,
    RecoveryPointNotFound,
)
from sqlharbor.vault.catalog import Catalog
from sqlharbor.vault.endorsement import Endorser
from sqlharbor.vault.keyring import Keyring, VaultKeys
from sqlharbor.vault.layout import Layout, RecoveryPointId, new_recovery_point_id
from sqlharbor.vault.manifest import Manifest
from sqlharbor.vault.manifest_auth import verify
from sqlharbor.vault.manifest_read import read_manifest
from sqlharbor.vault.reader import (
    DEFAULT_READER_SETTINGS,
    ProgressCallback,
    ReaderSettings,
    RecoveryPointReader,
)
from sqlharbor.vault.store import AzureBlobStore, BlobStore
from sqlharbor.vault.writer import (
    DEFAULT_WRITER_SETTINGS,
    PointTarget,
    RecoveryPointWriter,
    WriterSettings,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VaultSettings:
    """Plain settings for ``Vault.from_settings``; secrets are kept out of ``repr``."""

    container: str
    keys: VaultKeys = field(repr=False)
    prefix: str = ""
    connection_string: str | None = field(default=None, repr=False)
    account_url: str | None = None
    credential: Any = field(default=None, repr=False)
    writer: WriterSettings = field(default_factory=WriterSettings)
    reader: ReaderSettings = field(default_factory=ReaderSettings)

    def __post_init__(self) -> None:
        if (self.connection_string is None) == (self.account_url is None):
            raise InvalidInput(
                "a vault needs exactly one of a connection string or an account URL",
                code=ErrorCode.VAULT_CONFIG_INVALID,
            )


class Vault:
    """Backups in, restores out, the catalog alongside."""

    def __init__(
        self,
        store: BlobStore,
        layout: Layout,
        keys: VaultKeys,
        *,
        writer_settings: WriterSettings = DEFAULT_WRITER_SETTINGS,
        reader_settings: ReaderSettings = DEFAULT_READER_SETTINGS,
        indexes: bool = True,
    ):
        """``indexes``: whether a committed point is added to the catalog here (False for
        an agent: it has no rights to the catalog; the operator indexes what it reports)."""
        self.indexes = indexes
        self.store = store
        self.layout = layout
        self.keys = keys
        self.writer_settings = writer_settings
        self.reader_settings = reader_settings
        # whoever holds the keys (the operator, the admin CLI) endorses what it indexes
        # and skips what is not endorsed (``vault.endorsement``)
        endorser = Endorser(keys.keys) if isinstance(keys, Keyring) else None
        self.catalog = Catalog(store, layout, endorser=endorser)

    @classmethod
    def from_settings(cls, settings: VaultSettings) -> Vault:
        if settings.connection_string is not None:
            store = AzureBlobStore.from_connection_string(
                settings.connection_string, settings.container
            )
        else:
            assert settings.account_url is not None
            store = AzureBlobStore.from_account_url(
                settings.account_url, settings.container, settings.credential
            )
        return cls(
            store,
            Layout(settings.prefix),
            settings.keys,
            writer_settings=settings.writer,
            reader_settings=settings.reader,
        )

    def open_writer(
        self,
        instance: str,
        database_name: str,
        database_guid: str,
        backup_type: BackupType,
        *,
        copy_only: bool = False,
        recovery_point_id: str | None = None,
        progress: ProgressCallback | None = None,
        settings: WriterSettings | None = None,
    ) -> RecoveryPointWriter:
        """A sink for one new recovery point; ``commit`` makes it exist, then indexes it."""
        point_id = recovery_point_id or new_recovery_point_id(backup_type)
        self.layout.point_dir(instance, database_guid, point_id)  # validates every name
        if RecoveryPointId.parse(point_id).backup_type is not backup_type:
            raise InvalidName(
                f"recovery point id {point_id} does not name a {backup_type.value} backup"
            )
        target = PointTarget(
            instance=instance,
            database_name=database_name,
            database_guid=database_guid,
            backup_type=backup_type,
            copy_only=copy_only,
            recovery_point_id=point_id,
        )
        return RecoveryPointWriter(
            self.store,
            self.layout,
            self.keys,
            target,
            settings or self.writer_settings,
            progress=progress,
            on_commit=self.catalog.add if self.indexes else None,
        )

    def open_reader(
        self,
        manifest: Manifest,
        *,
        stripe: int = 0,
        progress: ProgressCallback | None = None,
        settings: ReaderSettings | None = None,
    ) -> RecoveryPointReader:
        """A source over one stripe of the point (every point written so far has one)."""
        return RecoveryPointReader(
            self.store,
            self.layout,
            self.keys,
            manifest,
            settings or self.reader_settings,
            stripe=stripe,
            progress=progress,
        )

    def authenticate(self, manifest: Manifest) -> bytes:
        """Unwrap the point's data key and check its manifest's tag (``manifest_auth``):
        no data is read; the data key is returned.  A restore checks every step this way
        before it starts, so a tampered later step cannot be found after earlier steps
        changed the target; the operator does before it indexes or grants a point."""
        data_key = self.keys.data_key(manifest)
        verify(manifest, data_key)
        return data_key

    def manifest(self, instance: str, database_guid: str, recovery_point_id: str) -> Manifest:
        """The point's manifest (either format version), checked against where it was read."""
        location = self.layout.locate(instance, database_guid, recovery_point_id)
        try:
            body = self.store.get(location.manifest_blob)
        except BlobNotFound:
            raise RecoveryPointNotFound(
                f"recovery point {recovery_point_id} of database {database_guid} "
                f"on {instance} does not exist"
            ) from None
        return read_manifest(body, location)

    def delete_recovery_point(
        self, instance: str, database_guid: str, recovery_point_id: str
    ) -> None:
        """Delete the manifest FIRST (the point disappears at once), then data, then index.

        Chain-awareness (keep what retained points depend on) is the caller's duty.
        """
        if not self.catalog.delete_point(instance, database_guid, recovery_point_id):
            raise RecoveryPointNotFound(
                f"recovery point {recovery_point_id} of database {database_guid} "
                f"on {instance} does not exist"
            )
        log.info(
            "deleted recovery point %s of %s on %s", recovery_point_id, database_guid, instance
        )
