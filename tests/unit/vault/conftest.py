"""Fixtures for the vault's unit tests (no network)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sqlharbor.vault import Layout, Vault, WriterSettings
from sqlharbor.vault.keyring import VaultKeys
from tests.builders.keys import keyring
from tests.builders.stores import MemoryBlobStore


@pytest.fixture
def store() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def keys() -> VaultKeys:
    """The operator's side: an RSA keyring (wraps with the public half, unwraps)."""
    return keyring()


@pytest.fixture
def small_settings() -> WriterSettings:
    return WriterSettings(chunk_size=1024, max_in_flight=3, parallelism=2)


@pytest.fixture
def make_vault(
    store: MemoryBlobStore, keys: VaultKeys, small_settings: WriterSettings
) -> Callable[..., Vault]:
    def make(key: VaultKeys | None = None, settings: WriterSettings | None = None) -> Vault:
        return Vault(
            store, Layout("prod/vault"), key or keys, writer_settings=settings or small_settings
        )

    return make
