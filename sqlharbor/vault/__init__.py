"""The vault: where recovery points live (Azure Blob), encrypted, verified and indexed.

The agent writes backups through ``Vault.open_writer`` and reads restores through
``Vault.open_reader``; the operator and the CLI read ``Vault.catalog``.  Only this
package imports the Azure SDK.  Layout and format: DESIGN.md section 5.
"""

from sqlharbor.vault.catalog import (
    Catalog,
    DatabaseEntry,
    RebuildReport,
    RecoveryWindow,
)
from sqlharbor.vault.codec import ChunkCodec, Compression
from sqlharbor.vault.keys import InvalidKey, KeyEncryptionKey
from sqlharbor.vault.layout import InvalidName, Layout, RecoveryPointId, new_recovery_point_id
from sqlharbor.vault.manifest import Manifest
from sqlharbor.vault.reader import ReaderSettings, RecoveryPointReader
from sqlharbor.vault.store import (
    AlreadyExists,
    AzureBlobStore,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    ContainerNotFound,
    RetryPolicy,
    VaultAccessDenied,
)
from sqlharbor.vault.vault import RecoveryPointNotFound, Vault, VaultSettings
from sqlharbor.vault.writer import PointTarget, RecoveryPointWriter, WriterSettings

__all__ = [
    "AlreadyExists",
    "AzureBlobStore",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "Catalog",
    "ChunkCodec",
    "Compression",
    "ContainerNotFound",
    "DatabaseEntry",
    "InvalidKey",
    "InvalidName",
    "KeyEncryptionKey",
    "Layout",
    "Manifest",
    "PointTarget",
    "ReaderSettings",
    "RebuildReport",
    "RecoveryPointId",
    "RecoveryPointNotFound",
    "RecoveryPointReader",
    "RecoveryPointWriter",
    "RecoveryWindow",
    "RetryPolicy",
    "Vault",
    "VaultAccessDenied",
    "VaultSettings",
    "WriterSettings",
    "new_recovery_point_id",
]
