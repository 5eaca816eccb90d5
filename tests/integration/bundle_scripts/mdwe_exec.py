"""Exec a command under systemd's ``MemoryDenyWriteExecute=yes``, as the unit would run it.

Run by ``tests/integration/test_agent_bundle.py`` with the system python:
``python3 -I mdwe_exec.py MODE COMMAND [ARG...]``.  MODE ``seccomp`` installs the filter
systemd (before 254, or on kernels before 6.3: RHEL 8/9, Ubuntu 20.04/22.04, SLES 15) adds
for that setting on x86-64: ``mmap`` with PROT_WRITE|PROT_EXEC, ``mprotect`` and
``pkey_mprotect`` with PROT_EXEC and ``shmat`` with SHM_EXEC fail with EPERM.  MODE ``prctl``
sets the kernel's own PR_SET_MDWE (what systemd 254+ uses on Linux 6.3+).  Both are inherited
across exec.  Exit 2 when the kernel refuses the mode.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

PR_SET_SECCOMP, SECCOMP_MODE_FILTER, PR_SET_NO_NEW_PRIVS = 22, 2, 38
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
AUDIT_ARCH_X86_64 = 0xC000003E
SYS_MMAP, SYS_MPROTECT, SYS_SHMAT, SYS_PKEY_MPROTECT = 9, 10, 30, 329
PROT_WRITE_EXEC, PROT_EXEC, SHM_EXEC = 6, 4, 0o100000
ALLOW, DENY = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
ARG2 = 16 + 2 * 8  # offsetof(struct seccomp_data, args[2]), its low 32 bits

#: (label, op, k, jump if true, jump if false): classic BPF over struct seccomp_data
PROGRAM = [
    ("", "ld", 4, None, None),  # arch
    ("", "jeq", AUDIT_ARCH_X86_64, None, "allow"),
    ("", "ld", 0, None, None),  # syscall number
    ("", "jeq", SYS_MMAP, "mmap", None),
    ("", "jeq", SYS_MPROTECT, "exec", None),
    ("", "jeq", SYS_PKEY_MPROTECT, "exec", None),
    ("", "jeq", SYS_SHMAT, "shmat", None),
    ("", "ret", ALLOW, None, None),
    ("mmap", "ld", ARG2, None, None),
    ("", "and", PROT_WRITE_EXEC, None, None),
    ("", "jeq", PROT_WRITE_EXEC, "deny", "allow"),
    ("exec", "ld", ARG2, None, None),
    ("", "and", PROT_EXEC, None, None),
    ("", "jeq", PROT_EXEC, "deny", "allow"),
    ("shmat", "ld", ARG2, None, None),
    ("", "and", SHM_EXEC, None, None),
    ("", "jeq", SHM_EXEC, "deny", "allow"),
    ("allow", "ret", ALLOW, None, None),
    ("deny", "ret", DENY, None, None),
]
OPCODES = {"ld": 0x20, "jeq": 0x15, "and": 0x54, "ret": 0x06}  # BPF_LD|W|ABS, JMP|JEQ|K...


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def assemble() -> bytes:
    labels = {label: i for i, (label, *_) in enumerate(PROGRAM) if label}
    code = b""
    for i, (_, op, k, when_true, when_false) in enumerate(PROGRAM):
        jt = labels[when_true] - i - 1 if when_true else 0
        jf = labels[when_false] - i - 1 if when_false else 0
        code += struct.pack("<HBBI", OPCODES[op], jt, jf, k)
    return code


def main() -> None:
    mode, argv = sys.argv[1], sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4

    def prctl(option: int, arg2: int, arg3: int = 0) -> None:
        if libc.prctl(option, arg2, arg3, 0, 0) != 0:
            print(f"prctl({option}): {os.strerror(ctypes.get_errno())}", file=sys.stderr)
            sys.exit(2)

    if mode == "prctl":
        prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)
    elif mode == "seccomp":
        code = ctypes.create_string_buffer(assemble())
        program = SockFprog(len(PROGRAM), ctypes.addressof(code))
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(program))
    else:
        sys.exit(f"unknown mode {mode!r}: seccomp or prctl")
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
