"""Fixtures for the vault's integration tests: a private Azurite blob service.

The vault needs only Azure Blob, not the whole control plane, so this folder starts
Azurite's blob service itself (once per session, on a free loopback port, data in a
temporary directory) and stops it at the end.  When Azurite is not installed
(``npm ci`` not run) the tests are skipped with that reason, unless
``SQLHARBOR_REQUIRE_CONTROL_PLANE=1``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlharbor.vault import AzureBlobStore, KeyEncryptionKey, Layout, Vault, WriterSettings

REPO = Path(__file__).resolve().parents[3]
AZURITE = REPO / "node_modules" / ".bin" / "azurite-blob"
DEV_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"azurite exited early with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"azurite did not listen on port {port} within {timeout}s")


@pytest.fixture(scope="session")
def vault_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Azurite blob service; yields its connection string."""
    if not AZURITE.exists() or shutil.which("node") is None:
        if os.environ.get("SQLHARBOR_REQUIRE_CONTROL_PLANE") == "1":
            raise RuntimeError(f"Azurite is required but {AZURITE} or node is missing")
        pytest.skip(f"Azurite not installed ({AZURITE} or node missing; run `npm ci`)")
    port = _free_port()
    location = tmp_path_factory.mktemp("azurite")
    process = subprocess.Popen(
        [
            str(AZURITE),
            "--location",
            str(location),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, process)
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def azure_store(vault_azurite: str) -> AzureBlobStore:
    """A store over a fresh container (created by the store)."""
    return AzureBlobStore.from_connection_string(vault_azurite, f"v-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def kek() -> KeyEncryptionKey:
    return KeyEncryptionKey.generate()


@pytest.fixture
def azure_vault(azure_store: AzureBlobStore, kek: KeyEncryptionKey) -> Vault:
    settings = WriterSettings(chunk_size=256 * 1024, max_in_flight=6, parallelism=4)
    return Vault(azure_store, Layout("it/prod"), kek, writer_settings=settings)
