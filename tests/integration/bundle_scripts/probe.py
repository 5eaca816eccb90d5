"""What the agent bundle can do, printed as one JSON object: run *inside* the pex.

Run by ``tests/integration/test_agent_bundle.py`` as ``PEX_INTERPRETER=1 python3 BUNDLE.pex
probe.py [LIBSQLVDI]`` (so with the bundle's ``sys.path`` only), also under
``mdwe_exec.py``.  It imports what the agent uses and exercises the native pieces (AES-GCM
from cryptography, a zstandard round trip, a ctypes call and callback, an optional VDI
library bound and a device set made and released), reports pyodbc's import (it needs the
host's libodbc.so.2), the versions the bundle holds, where the agent's code was loaded from,
which forbidden modules are findable, and whether a writable+executable mapping is refused.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import json
import mmap
import sys

FORBIDDEN = ("kopf", "kubernetes_asyncio", "sqlharbor_devtools", "pytest", "tests")
VERSIONED = ("sqlharbor", "pyodbc", "zstandard", "cryptography", "azure-storage-blob")


def native_checks(out: dict[str, object]) -> None:
    import zstandard
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = AESGCM.generate_key(bit_length=256)
    sealed = AESGCM(key).encrypt(b"\0" * 12, b"sqlharbor", None)
    out["aesgcm"] = AESGCM(key).decrypt(b"\0" * 12, sealed, None) == b"sqlharbor"
    data = bytes(range(256)) * 64
    packed = zstandard.ZstdCompressor(level=3).compress(data)
    out["zstd"] = zstandard.ZstdDecompressor().decompress(packed) == data
    libc = ctypes.CDLL(None)
    out["ctypes_call"] = libc.strlen(b"sqlharbor") == 9
    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)
    out["ctypes_callback"] = callback(41) == 42
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        out["write_exec_mapping"] = "allowed"
    except PermissionError:
        out["write_exec_mapping"] = "refused"


def vdi_check(library: str) -> bool:
    from sqlharbor_agent.engines.sqlserver.vdi.linux import LinuxVdi

    device_set = LinuxVdi(library).new_device_set()
    device_set.release()
    return True


def main() -> None:
    out: dict[str, object] = {"python": list(sys.version_info[:2])}
    import azure.storage.blob
    import sqlharbor_agent.engines.sqlserver.engine
    import sqlharbor_agent.main

    out["agent_file"] = sqlharbor_agent.main.__file__
    out["blob_client"] = azure.storage.blob.BlobClient.__name__
    out["sqlserver_engine"] = sqlharbor_agent.engines.sqlserver.engine.__name__
    out["findable"] = [m for m in FORBIDDEN if importlib.util.find_spec(m) is not None]
    out["versions"] = {d: importlib.metadata.version(d) for d in VERSIONED}
    try:
        import pyodbc

        out["pyodbc"] = f"imported {pyodbc.version}"
    except ImportError as exc:
        out["pyodbc"] = f"ImportError: {exc}"
    native_checks(out)
    if len(sys.argv) > 1:
        out["vdi"] = vdi_check(sys.argv[1])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
