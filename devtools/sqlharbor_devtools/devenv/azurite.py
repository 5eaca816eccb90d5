"""Azurite's blob service for the local control plane: command line and connection string.

Called by :mod:`sqlharbor_devtools.devenv.controlplane`.  The account is Azurite's well-known
development account; its key is published by Microsoft and safe to print.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEV_ACCOUNT = "devstoreaccount1"
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def blob_endpoint(host: str, port: int) -> str:
    """The blob endpoint URL of the dev account."""
    return f"http://{host}:{port}/{DEV_ACCOUNT}"


def connection_string(host: str, port: int) -> str:
    """A connection string for azure-storage-blob pointing at this Azurite."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};"
        f"AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={blob_endpoint(host, port)};"
    )


def command(node: str, script: Path, *, host: str, port: int, data_dir: Path) -> list[str]:
    """The argv that runs Azurite's blob service on ``host:port`` with its own data dir."""
    return [
        node,
        str(script),
        "--blobHost",
        host,
        "--blobPort",
        str(port),
        "--location",
        str(data_dir),
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--disableProductStyleUrl",
        "--loose",
        "--silent",
    ]


@dataclass(frozen=True)
class BlobTarget:
    """Where a test or the demo may write blobs: a connection string and a container name."""

    connection_string: str
    container: str
