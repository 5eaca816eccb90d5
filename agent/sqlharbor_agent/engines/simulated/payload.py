"""Row payloads that look like SQL Server data pages to a compressor.

Used by the workload generator (and tests) to fill rows.  A real page mixes a header,
fixed-width columns, repeated text and free space with high-entropy values; zstd gets
roughly 2:1 on it.  Here about half of each payload is random bytes and the rest is a
page-like layout (header, repeated column text, zero-filled free space), which
compresses about 2:1 as well.  Deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random
import struct

_HEADER = struct.Struct(">4sqI")
_WORDS = (b"customer", b"order", b"invoice", b"shipped", b"pending", b"warehouse", b"region")


def page_payload(rng: random.Random, key: int, size: int) -> bytes:
    """A ``size``-byte row body for ``key`` that compresses about 2:1 with zstd."""
    size = max(size, _HEADER.size)
    header = _HEADER.pack(b"PAGE", key, size)
    entropy = rng.randbytes((size - _HEADER.size) // 2)
    word = _WORDS[key % len(_WORDS)]
    text = (word + b";" + str(key).encode() + b";") * 4
    body = header + entropy + text
    return (body + bytes(max(0, size - len(body))))[:size]
