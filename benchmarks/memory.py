"""Benchmark 3: memory stays bounded by the chunks in flight, not by the stream size.

Each size runs in a fresh child process (``python -m benchmarks.memory CONN SIZE``) that
streams page-like data through the vault writer to Azurite and prints its peak RSS
(VmHWM; ``ru_maxrss`` is recorded too, but on Linux it carries the parent's peak across
fork+exec, so it reads the harness's size, not the child's).  The ratio large / small
must be <= 1.2x and the large one < 300 MB.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import uuid

from benchmarks.common import Azurite, Config, MiB, Result, proc_peak_rss_bytes

NAME = "memory"


def child(connection_string: str, size: int) -> dict[str, float]:
    from benchmarks.common import page_like_pool, stream
    from benchmarks.pipeline import record
    from sqlharbor.domain.backupset import BackupType
    from sqlharbor.vault import AzureBlobStore, KeyEncryptionKey, Layout, Vault

    container = f"mem-{uuid.uuid4().hex[:10]}"
    store = AzureBlobStore.from_connection_string(connection_string, container)
    vault = Vault(store, Layout("bench"), KeyEncryptionKey.generate())
    pool = page_like_pool(4 * MiB)
    guid = str(uuid.uuid4())
    began = time.perf_counter()
    with vault.open_writer("BENCH-VM", "bench", guid, BackupType.FULL) as writer:
        for piece in stream(pool, size):
            writer.write(piece)
        writer.commit(record(size, guid))
    seconds = time.perf_counter() - began
    # ru_maxrss survives fork+exec on Linux (a child of a big parent reads the parent's
    # peak), so the figure is VmHWM of this process image; ru_maxrss goes to the details.
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    peak = proc_peak_rss_bytes(os.getpid()) or ru_maxrss
    from azure.storage.blob import BlobServiceClient

    BlobServiceClient.from_connection_string(connection_string).delete_container(container)
    return {"size": size, "peak_rss": peak, "ru_maxrss": ru_maxrss, "seconds": seconds}


def measure(connection_string: str, size: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", connection_string, str(size)],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(config: Config) -> Result:
    result = Result(NAME)
    small, large = config.pick((256 * MiB, 4096 * MiB), (64 * MiB, 512 * MiB), (8 * MiB, 32 * MiB))
    with Azurite(config.workdir / "azurite-memory") as azurite:
        low = measure(azurite.connection_string, small)
        high = measure(azurite.connection_string, large)
    ratio = high["peak_rss"] / low["peak_rss"]
    peak_mb = high["peak_rss"] / 1e6
    result.details.update(small=low, large=high)
    result.add(
        f"peak RSS {large // MiB} MiB stream / {small // MiB} MiB stream",
        ratio,
        "x",
        target="<= 1.2x",
        met=ratio <= 1.2,
        note=f"{low['peak_rss'] / 1e6:.0f} MB vs {peak_mb:.0f} MB",
    )
    result.add(
        f"peak RSS backing up {large // MiB} MiB",
        peak_mb,
        "MB",
        target="< 300 MB",
        met=peak_mb < 300,
        note=f"{large / high['seconds'] / MiB:.0f} MiB/s (information)",
    )
    return result


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]))))
