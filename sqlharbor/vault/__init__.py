"""The vault: where recovery points live (Azure Blob), encrypted, verified and indexed.

The agent writes backups through ``Vault.open_writer`` and reads restores through
``Vault.open_reader``; the operator and the CLI read ``Vault.catalog``.  Only this
package imports the Azure SDK; its errors are in ``sqlharbor.errors``.  Layout: DESIGN.md
section 5; the manifest formats (versions 1 and 2) and the chunk format:
docs/vault-format.md.
"""

from sqlharbor.vault.catalog import (
    Catalog,
    CatalogSpan,
    DatabaseEntry,
    RebuildReport,
)
from sqlharbor.vault.codec import ChunkCodec, Compression
from sqlharbor.vault.keys import KeyEncryptionKey
from sqlharbor.vault.layout import Layout, RecoveryPointId, new_recovery_point_id
from sqlharbor.vault.manifest import Manifest
from sqlharbor.vault.reader import ReaderSettings, RecoveryPointReader
from sqlharbor.vault.store import (
    AzureBlobStore,
    BlobInfo,
    BlobStore,
    RetryPolicy,
)
from sqlharbor.vault.vault import Vault, VaultSettings
from sqlharbor.vault.writer import PointTarget, RecoveryPointWriter, WriterSettings

__all__ = [
    "AzureBlobStore",
    "BlobInfo",
    "BlobStore",
    "Catalog",
    "CatalogSpan",
    "ChunkCodec",
    "Compression",
    "DatabaseEntry",
    "KeyEncryptionKey",
    "Layout",
    "Manifest",
    "PointTarget",
    "ReaderSettings",
    "RebuildReport",
    "RecoveryPointId",
    "RecoveryPointReader",
    "RecoveryPointWriter",
    "RetryPolicy",
    "Vault",
    "VaultSettings",
    "WriterSettings",
    "new_recovery_point_id",
]
