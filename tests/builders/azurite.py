"""A private Azurite blob service (from ``npm ci``) for the vault's integration tests and
the benchmarks: a free loopback port, telemetry off, its data in a folder of its own.
``tls=(cert, key)`` serves HTTPS with that certificate and accepts bearer tokens
(``--oauth basic``: Azurite reads a token's audience, issuer and lifetime, not its
signature; Azure SDKs send tokens over HTTPS only)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parents[2]
AZURITE = REPO / "node_modules" / ".bin" / "azurite-blob"
DEV_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def installed() -> bool:
    """Whether Azurite (and node to run it) are there."""
    return AZURITE.exists() and shutil.which("node") is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Azurite:
    """Starts Azurite's blob service with its data in ``location`` and waits (up to
    ``timeout`` seconds) until it listens; ``stop`` ends it and, unless ``keep_data``,
    removes ``location``."""

    def __init__(
        self,
        location: Path,
        *,
        keep_data: bool = False,
        timeout: float = 30.0,
        tls: tuple[Path, Path] | None = None,
    ):
        if not installed():
            raise RuntimeError(
                f"Azurite is not installed ({AZURITE} or node missing); run `npm ci`"
            )
        self.location = location
        self.keep_data = keep_data
        location.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.scheme = "https" if tls else "http"
        secure = ["--cert", str(tls[0]), "--key", str(tls[1]), "--oauth", "basic"] if tls else []
        self.process = subprocess.Popen(
            [
                str(AZURITE),
                "--location",
                str(location),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--silent",
                *secure,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_listening(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"azurite exited early with code {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"azurite did not listen on port {self.port} within {timeout}s"
                    ) from None
                time.sleep(0.05)

    @property
    def account_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={DEV_ACCOUNT};"
            f"AccountKey={DEV_KEY};BlobEndpoint={self.account_url};"
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not self.keep_data:
            shutil.rmtree(self.location, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
