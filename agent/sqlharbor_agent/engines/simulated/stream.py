"""The simulated engine's backup stream: a framed format only this engine writes and reads.

``engine`` writes it to a ``Sink`` during a backup; ``restore`` reads it back from a
``Source``.  Layout: magic, a length-prefixed JSON header, then frames (``R`` a row,
``D`` a deleted key, ``O`` one log operation), then ``E`` with a JSON trailer (the end
LSN and time, the frame count) and the SHA-256 of every byte before it.  Writes go to
the sink in pieces of ``chunk_size`` bytes (1 MiB by default) with progress reported
per piece.  Any damage (truncation, a flipped byte, a foreign stream) raises
``EngineError`` with code ``UserErrorBackupStreamInvalid``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlharbor.errors import EngineError, ErrorCode
from sqlharbor_agent.engines.base import ProgressCallback, Sink, Source

MAGIC = b"SQLHSIM\x01"
OP_PUT = 1
OP_DELETE = 2

_LEN = struct.Struct(">I")
_ROW = struct.Struct(">qI")
_DEL = struct.Struct(">q")
_OP = struct.Struct(">qqBqI")


@dataclass(frozen=True)
class RowFrame:
    key: int
    payload: bytes


@dataclass(frozen=True)
class DeleteFrame:
    key: int


@dataclass(frozen=True)
class OpFrame:
    """One operation of a committed transaction (all ops of a transaction share its LSN)."""

    lsn: int
    commit_us: int
    op: int
    key: int
    payload: bytes | None


Frame = RowFrame | DeleteFrame | OpFrame


class StreamWriter:
    """Buffers frames and hands them to the sink in ``chunk_size`` pieces."""

    def __init__(
        self, sink: Sink, progress: ProgressCallback | None, chunk_size: int = 1 << 20
    ) -> None:
        self._sink = sink
        self._progress = progress
        self._chunk_size = chunk_size
        self._buf = bytearray()
        self._digest = hashlib.sha256()
        self._frames = 0
        self.bytes_written = 0

    def header(self, fields: dict[str, Any]) -> None:
        body = json.dumps(fields, sort_keys=True).encode()
        self._add(MAGIC + _LEN.pack(len(body)) + body)

    def row(self, key: int, payload: bytes) -> None:
        self._frame(b"R" + _ROW.pack(key, len(payload)) + payload)

    def delete(self, key: int) -> None:
        self._frame(b"D" + _DEL.pack(key))

    def op(self, lsn: int, commit_us: int, op: int, key: int, payload: bytes | None) -> None:
        data = payload or b""
        self._frame(b"O" + _OP.pack(lsn, commit_us, op, key, len(data)) + data)

    def finish(self, trailer: dict[str, Any]) -> None:
        body = json.dumps({**trailer, "frames": self._frames}, sort_keys=True).encode()
        self._add(b"E" + _LEN.pack(len(body)) + body)
        self._buf += self._digest.digest()
        self._flush(final=True)

    def _frame(self, data: bytes) -> None:
        self._frames += 1
        self._add(data)

    def _add(self, data: bytes) -> None:
        self._digest.update(data)
        self._buf += data
        if len(self._buf) >= self._chunk_size:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        """Hand whole pieces to the sink as immutable bytes (a sink may keep them)."""
        end = len(self._buf) if final else len(self._buf) - len(self._buf) % self._chunk_size
        pos = 0
        while pos < end:
            piece = bytes(self._buf[pos : min(pos + self._chunk_size, end)])
            written = self._sink.write(piece)
            if written <= 0:
                raise EngineError(
                    "the backup sink accepted no bytes", code=ErrorCode.BACKUP_SINK_FAILED
                )
            pos += written
            self.bytes_written += written
            if self._progress is not None:
                self._progress(written)
        del self._buf[:end]


class StreamReader:
    """Parses a stream from a ``Source``, verifying the digest at the end."""

    def __init__(
        self, source: Source, progress: ProgressCallback | None, chunk_size: int = 1 << 20
    ) -> None:
        self._source = source
        self._progress = progress
        self._chunk = bytearray(chunk_size)
        self._buf = bytearray()
        self._pos = 0
        self._digest = hashlib.sha256()
        self.trailer: dict[str, Any] | None = None

    def header(self) -> dict[str, Any]:
        if self._take(len(MAGIC), hashed=True) != MAGIC:
            raise _invalid("it is not a simulated-engine backup stream")
        (length,) = _LEN.unpack(self._take(_LEN.size, hashed=True))
        return _json(self._take(length, hashed=True))

    def frames(self) -> Iterator[Frame]:
        """Yield frames until the trailer, which is verified and kept in ``trailer``."""
        count = 0
        while True:
            kind = self._take(1, hashed=True)
            if kind == b"R":
                key, length = _ROW.unpack(self._take(_ROW.size, hashed=True))
                yield RowFrame(key, self._take(length, hashed=True))
            elif kind == b"D":
                (key,) = _DEL.unpack(self._take(_DEL.size, hashed=True))
                yield DeleteFrame(key)
            elif kind == b"O":
                lsn, commit_us, op, key, length = _OP.unpack(self._take(_OP.size, hashed=True))
                data = self._take(length, hashed=True)
                yield OpFrame(lsn, commit_us, op, key, data if op == OP_PUT else None)
            elif kind == b"E":
                self._end(count)
                return
            else:
                raise _invalid("unknown frame")
            count += 1

    def _end(self, count: int) -> None:
        (length,) = _LEN.unpack(self._take(_LEN.size, hashed=True))
        trailer = _json(self._take(length, hashed=True))
        expected = self._digest.digest()
        if self._take(len(expected), hashed=False) != expected:
            raise _invalid("its checksum does not match (the stream is damaged)")
        if not self._at_end():
            raise _invalid("there are bytes after its end")
        if trailer.get("frames") != count:
            raise _invalid("its frame count does not match")
        self.trailer = trailer

    def _take(self, n: int, *, hashed: bool) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._read_more():
                raise _invalid("it ends early (truncated)")
        data = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        if hashed:
            self._digest.update(data)
        return data

    def _at_end(self) -> bool:
        return self._pos == len(self._buf) and not self._read_more()

    def _read_more(self) -> bool:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        got = self._source.readinto(self._chunk)
        if not got:
            return False
        if self._progress is not None:
            self._progress(got)
        self._buf += memoryview(self._chunk)[:got]
        return True


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise _invalid("its header is not readable") from exc
    if not isinstance(value, dict):
        raise _invalid("its header is not readable")
    return value


def _invalid(why: str) -> EngineError:
    return EngineError(
        f"The backup stream cannot be restored: {why}.",
        code=ErrorCode.BACKUP_STREAM_INVALID,
        remediation="Restore from another recovery point; check the vault's integrity.",
    )
