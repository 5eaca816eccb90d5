"""Benchmarks 1 and 2: backup and restore throughput through the vault on Azurite.

Backup: an engine-like stream (1 MiB writes) through ``RecoveryPointWriter`` (4 MiB
chunks -> zstd -> AES-256-GCM -> staged blocks, 4 upload threads, commit, manifest,
catalog) against the plain azure-storage-blob upload of the same raw bytes with the same
parallelism (4 threads staging 4 MiB blocks, then commit_block_list).  Restore:
``RecoveryPointReader`` against the plain SDK download (max_concurrency=4) of the same
stored data blobs, compared as throughput (raw bytes the reader delivers per second vs
bytes the plain download moves per second); the time ratio is in the notes.
Runs alternate A, B, A, B;
the ratio is taken pair by pair.
"""

from __future__ import annotations

import base64
import cProfile
import io
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, cast

from azure.storage.blob import BlobBlock, BlobServiceClient

from benchmarks.common import (
    Azurite,
    Config,
    MiB,
    Result,
    alternate,
    median,
    page_like_pool,
    random_pool,
    ratios,
    spread,
    stream,
)
from benchmarks.profiling import ThreadProfiles, top_functions
from sqlharbor.domain.backupset import BackupRecord, BackupType
from sqlharbor.vault import (
    AzureBlobStore,
    KeyEncryptionKey,
    Layout,
    Manifest,
    RecoveryPointReader,
    RecoveryPointWriter,
    Vault,
)
from sqlharbor.vault.reader import data_blobs
from tests.builders.records import backup_record

NAME = "pipeline"
PARALLELISM = 4
BLOCK = 4 * MiB
INSTANCE = "BENCH-VM"


def record(size: int, guid: str) -> BackupRecord:
    now = datetime.now(UTC)
    return backup_record(
        BackupType.FULL,
        name="bench",
        guid=guid,
        first_lsn=1000,
        last_lsn=2000,
        checkpoint_lsn=1500,
        database_backup_lsn=0,
        start=now,
        finish=now,
        size_bytes=size,
    )


def vault_backup(vault: Vault, pool: bytes, size: int) -> tuple[float, float, Manifest]:
    """(seconds, process CPU seconds, manifest) of one backup through the vault writer."""
    guid = str(uuid.uuid4())
    cpu = time.process_time()
    began = time.perf_counter()
    writer = vault.open_writer(INSTANCE, "bench", guid, BackupType.FULL)
    with writer:
        for piece in stream(pool, size):
            writer.write(piece)
        manifest = writer.commit(record(size, guid))
    return time.perf_counter() - began, time.process_time() - cpu, manifest


def plain_upload(service: BlobServiceClient, container: str, pool: bytes, size: int) -> float:
    """Seconds for the plain SDK upload: stage 4 MiB blocks on 4 threads, then commit."""
    blob = service.get_blob_client(container, f"plain/{uuid.uuid4().hex}")
    ids: list[str] = []
    began = time.perf_counter()
    with ThreadPoolExecutor(PARALLELISM) as threads:
        futures = []
        buffer = bytearray()
        index = 0

        def stage(block_id: str, data: bytes) -> None:
            blob.stage_block(block_id, data, length=len(data))

        for piece in stream(pool, size):
            buffer += piece
            while len(buffer) >= BLOCK:
                block_id = base64.b64encode(f"{index:08d}".encode()).decode()
                ids.append(block_id)
                futures.append(threads.submit(stage, block_id, bytes(buffer[:BLOCK])))
                del buffer[:BLOCK]
                index += 1
                # bound memory like the writer does (8 in flight)
                while sum(not f.done() for f in futures) >= 8:
                    time.sleep(0.0005)
        if buffer:
            block_id = base64.b64encode(f"{index:08d}".encode()).decode()
            ids.append(block_id)
            futures.append(threads.submit(stage, block_id, bytes(buffer)))
        for future in futures:
            future.result()
    blob.commit_block_list([BlobBlock(block_id=i) for i in ids])
    return time.perf_counter() - began


def vault_restore(vault: Vault, manifest: Manifest) -> tuple[float, float]:
    buffer = bytearray(MiB)
    cpu = time.process_time()
    began = time.perf_counter()
    with vault.open_reader(manifest) as reader:
        while reader.readinto(buffer):
            pass
    return time.perf_counter() - began, time.process_time() - cpu


def plain_download(service: BlobServiceClient, container: str, names: list[str]) -> float:
    class Discard(io.RawIOBase):
        """A seekable sink that keeps nothing (parallel downloads seek before writing)."""

        def __init__(self) -> None:
            self.position = 0

        def writable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = 0) -> int:
            self.position = offset if whence == 0 else self.position + offset
            return self.position

        def tell(self) -> int:
            return self.position

        def write(self, data: Any) -> int:
            count = len(data)
            self.position += count
            return count

    began = time.perf_counter()
    for name in names:
        downloader = service.get_blob_client(container, name).download_blob(
            max_concurrency=PARALLELISM
        )
        downloader.readinto(cast(Any, Discard()))
    return time.perf_counter() - began


def run(config: Config) -> Result:
    result = Result(NAME)
    size = config.pick(512 * MiB, 64 * MiB, 8 * MiB)
    reps = config.pick(5, 3, 1)
    result.details.update(size_bytes=size, repetitions=reps, parallelism=PARALLELISM)
    with Azurite(config.workdir / "azurite-pipeline") as azurite:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        for profile, pool in (
            ("incompressible", random_pool(min(size, 64 * MiB))),
            ("page-like 2:1", page_like_pool(min(size, 64 * MiB))),
        ):
            _run_profile(result, config, azurite, service, profile, pool, size, reps)
    return result


def _run_profile(
    result: Result,
    config: Config,
    azurite: Azurite,
    service: BlobServiceClient,
    profile: str,
    pool: bytes,
    size: int,
    reps: int,
) -> None:
    container = f"bench-{uuid.uuid4().hex[:10]}"
    store = AzureBlobStore.from_connection_string(azurite.connection_string, container)
    vault = Vault(store, Layout("bench"), KeyEncryptionKey.generate())
    manifests: list[Manifest] = []
    cpu: list[float] = []
    az_cpu: dict[str, list[float]] = {"vault": [], "plain": []}

    def backup() -> float:
        before = azurite.cpu_seconds()
        seconds, cpu_seconds, manifest = vault_backup(vault, pool, size)
        az_cpu["vault"].append(azurite.cpu_seconds() - before)
        manifests.append(manifest)
        cpu.append(cpu_seconds)
        return size / seconds

    def plain() -> float:
        before = azurite.cpu_seconds()
        cpu_before = time.process_time()
        seconds = plain_upload(service, container, pool, size)
        plain_cpu.append(time.process_time() - cpu_before)
        az_cpu["plain"].append(azurite.cpu_seconds() - before)
        return size / seconds

    plain_cpu: list[float] = []
    vault_rates, plain_rates = alternate(reps, backup, plain)
    pairs = ratios(vault_rates, plain_rates)
    target = 0.9 if profile == "incompressible" else 1.5
    gib = size / 1024**3
    stored = manifests[-1].data.stored_size
    result.add(
        f"backup {profile}: vault / plain upload",
        median(pairs),
        "x",
        target=f">= {target}x",
        met=median(pairs) >= target,
        spread=spread(pairs),
        note=f"vault {median(vault_rates) / MiB:.0f} MiB/s, plain "
        f"{median(plain_rates) / MiB:.0f} MiB/s; stored/raw {stored / size:.2f}",
    )
    result.add(
        f"backup {profile}: CPU s per GiB (vault / plain)",
        median(cpu) / gib,
        "s/GiB",
        spread=spread([c / gib for c in cpu]),
        note=f"plain {median(plain_cpu) / gib:.2f} s/GiB; Azurite (separate process) "
        f"{median(az_cpu['vault']) / gib:.2f} vs {median(az_cpu['plain']) / gib:.2f} s/GiB",
    )

    manifest = manifests[-1]
    names = data_blobs(vault.layout, manifest)
    restore_cpu: list[float] = []

    def restore() -> float:
        seconds, cpu_seconds = vault_restore(vault, manifest)
        restore_cpu.append(cpu_seconds)
        return 1 / seconds

    def download() -> float:
        return 1 / plain_download(service, container, names)

    reader_speed, plain_speed = alternate(reps, restore, download)
    # throughput: raw bytes delivered per second vs bytes the plain download moves per second
    reader_rates = [size * s for s in reader_speed]
    plain_dl_rates = [stored * s for s in plain_speed]
    pairs = ratios(reader_rates, plain_dl_rates)
    time_pairs = ratios(reader_speed, plain_speed)
    result.add(
        f"restore {profile}: reader / plain download of the same blobs (bytes/s)",
        median(pairs),
        "x",
        target=">= 0.9x",
        met=median(pairs) >= 0.9,
        spread=spread(pairs),
        note=f"reader {median(reader_rates) / MiB:.0f} MiB/s raw, plain "
        f"{median(plain_dl_rates) / MiB:.0f} MiB/s stored; by time for the same blobs "
        f"{median(time_pairs):.2f}x; CPU {median(restore_cpu) / gib:.2f} s/GiB",
    )
    result.details[f"profile {profile}"] = {
        "vault_MiB_s": [r / MiB for r in vault_rates],
        "plain_MiB_s": [r / MiB for r in plain_rates],
        "stored_over_raw": stored / size,
        "restore_s": [1 / s for s in reader_speed],
        "download_s": [1 / s for s in plain_speed],
    }
    if not config.tiny:
        result.details[f"profile {profile}"]["cprofile_backup"] = _profile_backup(vault, pool, size)
        result.details[f"profile {profile}"]["cprofile_restore"] = _profile_restore(vault, manifest)
    store_client = service.get_container_client(container)
    store_client.delete_container()


def _profiled(patches: list[tuple[Any, str]], body: Callable[[], object]) -> list[dict[str, Any]]:
    profiles = ThreadProfiles()
    main = cProfile.Profile()
    from contextlib import ExitStack

    with ExitStack() as stack:
        for owner, attribute in patches:
            stack.enter_context(profiles.patched(owner, attribute))
        main.enable()
        try:
            body()
        finally:
            main.disable()
    return top_functions(profiles.stats(main))


def _profile_backup(vault: Vault, pool: bytes, size: int) -> list[dict[str, Any]]:
    return _profiled([(RecoveryPointWriter, "_process")], lambda: vault_backup(vault, pool, size))


def _profile_restore(vault: Vault, manifest: Manifest) -> list[dict[str, Any]]:
    return _profiled([(RecoveryPointReader, "_fetch")], lambda: vault_restore(vault, manifest))
