"""The golden version-1 recovery point (``tests/fixtures/vault_v1/``): its seed data and a
loader that puts its exact bytes into any ``BlobStore``.

The fixture was written once by the version-1 writer (see its README); the tests load it
and prove that today's reader, catalog rebuild and deletion still handle it.  Data blobs
are re-created block by block with the block ids the old writer committed, so the blobs
are the same in memory and in Azurite.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlharbor.vault import BlobStore, KeyEncryptionKey

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vault_v1"
SEED = b"sqlharbor golden v1"
SIZE = 2 * 64 * 1024 + 40_000  # two full 64 KiB chunks and a partial last one


def seed_data(seed: bytes = SEED, size: int = SIZE) -> bytes:
    """Deterministic bytes, half pseudo-random and half repetitive (so zstd has work)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        block = hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        out += block if counter % 2 == 0 else block[:4] * 8
        counter += 1
    return bytes(out[:size])


def golden_kek() -> KeyEncryptionKey:
    """The fixed test key-encryption key the golden point was written with."""
    return KeyEncryptionKey(hashlib.sha256(b"sqlharbor golden v1 test kek").digest())


@dataclass(frozen=True)
class GoldenPoint:
    """Where the golden point lives once loaded (``prefix`` is the vault's ``Layout``)."""

    prefix: str
    instance: str
    database_guid: str
    recovery_point_id: str
    kek: KeyEncryptionKey
    data: bytes
    manifest_name: str
    data_blobs: tuple[str, ...]


def describe(directory: Path = FIXTURE) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((directory / "fixture.json").read_bytes())
    return doc


def load_into(store: BlobStore, directory: Path = FIXTURE) -> GoldenPoint:
    """Write every blob of the fixture into ``store``: block blobs block by block, the
    manifest and the registry entry as plain blobs, catalog segments as appends."""
    doc = describe(directory)
    data_blobs: list[str] = []
    manifest_name = ""
    for blob in doc["blobs"]:
        body = (directory / blob["file"]).read_bytes()
        name = blob["name"]
        if blob["kind"] == "block":
            offset = 0
            for block in blob["blocks"]:
                store.stage_block(name, block["id"], body[offset : offset + block["size"]])
                offset += block["size"]
            assert offset == len(body), f"{blob['file']}: block sizes do not add up"
            store.commit_blocks(name, [block["id"] for block in blob["blocks"]])
            data_blobs.append(name)
        elif blob["kind"] == "append":
            store.append(name, body)
        else:
            store.put(name, body)
            if name.endswith("/manifest.json"):
                manifest_name = name
    data = seed_data(base64.b64decode(doc["data"]["seed"]), doc["data"]["size"])
    assert hashlib.sha256(data).hexdigest() == doc["data"]["sha256"]
    return GoldenPoint(
        prefix=doc["prefix"],
        instance=doc["instance"],
        database_guid=doc["database_guid"],
        recovery_point_id=doc["recovery_point_id"],
        kek=KeyEncryptionKey.from_base64(doc["kek_base64"], source="the golden fixture"),
        data=data,
        manifest_name=manifest_name,
        data_blobs=tuple(data_blobs),
    )
