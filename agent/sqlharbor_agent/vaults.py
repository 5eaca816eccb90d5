"""Resolve a ``BackupVault`` resource into an open vault: read its Secrets (credentials and
the key-encryption key) and build the vault client.  Cached per vault generation.

Called by the job runners.  The KEK and the connection string stay in memory here; they
never reach a log line, a status field or an exception message.
"""

from __future__ import annotations

import threading

from sqlharbor.api import BackupVault
from sqlharbor.errors import ErrorCode, InvalidInput
from sqlharbor.kube import KubeClient
from sqlharbor.vault import KeyEncryptionKey, Vault, VaultSettings, WriterSettings


class VaultResolver:
    def __init__(self, client: KubeClient, namespace: str, writer: WriterSettings) -> None:
        self._client = client
        self._namespace = namespace
        self._writer = writer
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int | None], Vault] = {}

    def get(self, name: str) -> Vault:
        resource = self._client.get(BackupVault, self._namespace, name)
        key = (name, resource.metadata.generation)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._open(resource)
            return self._cache[key]

    def _open(self, resource: BackupVault) -> Vault:
        spec = resource.spec
        blob = spec.azure_blob
        if blob.credentials.secret_ref is None:
            raise InvalidInput(
                f"BackupVault {resource.metadata.name}: managed identity is not available to "
                "this agent yet",
                code=ErrorCode.UNSUPPORTED_CREDENTIALS,
                remediation="Use credentials.secretRef with a connection string.",
            )
        if spec.encryption.key_secret_ref is None:
            raise InvalidInput(
                f"BackupVault {resource.metadata.name}: Key Vault keys are not supported by "
                "this agent yet",
                code=ErrorCode.UNSUPPORTED_KEY_SOURCE,
                remediation="Use encryption.keySecretRef with a base64 256-bit key.",
            )
        ref = blob.credentials.secret_ref
        connection = self._client.secret_value(self._namespace, ref.name, ref.key).decode()
        kref = spec.encryption.key_secret_ref
        kek = self._client.secret_value(self._namespace, kref.name, kref.key)
        key = KeyEncryptionKey.from_base64(kek, source=f"Secret {kref.name} key {kref.key}")
        return Vault.from_settings(
            VaultSettings(
                container=blob.container,
                kek=key,
                prefix=blob.prefix,
                connection_string=connection,
                writer=self._writer,
            )
        )
