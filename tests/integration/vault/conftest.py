"""Fixtures for the vault's integration tests: a private Azurite blob service.

The vault needs only Azure Blob, not the whole control plane, so this folder starts
Azurite's blob service itself (once per session, on a free loopback port, data in a
temporary directory) and stops it at the end.  When Azurite is not installed
(``npm ci`` not run) the tests are skipped with that reason, unless
``SQLHARBOR_REQUIRE_CONTROL_PLANE=1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from sqlharbor.vault import AzureBlobStore, Layout, Vault, WriterSettings
from tests.builders import azurite
from tests.builders.keys import keyring


@pytest.fixture(scope="session")
def vault_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Azurite blob service; yields its connection string."""
    if not azurite.installed():
        if os.environ.get("SQLHARBOR_REQUIRE_CONTROL_PLANE") == "1":
            raise RuntimeError(f"Azurite is required but {azurite.AZURITE} or node is missing")
        pytest.skip(f"Azurite not installed ({azurite.AZURITE} or node missing; run `npm ci`)")
    with azurite.Azurite(tmp_path_factory.mktemp("azurite"), keep_data=True) as service:
        yield service.connection_string


@pytest.fixture
def azure_store(vault_azurite: str) -> AzureBlobStore:
    """A store over a fresh container (created by the store)."""
    return AzureBlobStore.from_connection_string(vault_azurite, f"v-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def azure_vault(azure_store: AzureBlobStore) -> Vault:
    settings = WriterSettings(chunk_size=256 * 1024, max_in_flight=6, parallelism=4)
    return Vault(azure_store, Layout("it/prod"), keyring(), writer_settings=settings)
