"""Fixtures for the vault's unit tests (no network)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sqlharbor.vault import KeyEncryptionKey, Layout, Vault, WriterSettings
from tests.builders.stores import MemoryBlobStore


@pytest.fixture
def store() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def kek() -> KeyEncryptionKey:
    return KeyEncryptionKey.generate()


@pytest.fixture
def small_settings() -> WriterSettings:
    return WriterSettings(chunk_size=1024, max_in_flight=3, parallelism=2)


@pytest.fixture
def make_vault(
    store: MemoryBlobStore, kek: KeyEncryptionKey, small_settings: WriterSettings
) -> Callable[..., Vault]:
    def make(key: KeyEncryptionKey | None = None, settings: WriterSettings | None = None) -> Vault:
        return Vault(
            store, Layout("prod/vault"), key or kek, writer_settings=settings or small_settings
        )

    return make
