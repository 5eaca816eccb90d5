"""Pick free TCP ports on the loopback interface for the control plane's listeners.

Called by :mod:`sqlharbor_devtools.devenv.controlplane` before it starts etcd, the API server and
Azurite, so several control planes (a person's and the tests') can run side by side.
"""

from __future__ import annotations

import contextlib
import socket

LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that were free on 127.0.0.1 a moment ago."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports
