"""Plumbing shared by the Azure stand-ins (``keyvault_standin``, ``aad_standin``): a test
certificate authority, and a small threaded HTTP(S) server on a free loopback port that
hands each request to a Python function.

``LocalCa(directory)`` writes a CA (``ca_file``, a PEM bundle to pass to the Azure SDK as
``connection_verify``) and a serving certificate for 127.0.0.1 and localhost;
``StandinServer(app, tls=ca)`` serves HTTPS with it (``tls=None``: plain HTTP, as IMDS
speaks).  The TLS handshake runs in the request's own thread, so a client that
stalls holds up nobody else.  Used by the key tests (tests/integration/keys/).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlharbor_devtools.devenv.pki import write_pki


class LocalCa:
    """A throw-away CA and a serving certificate for 127.0.0.1 and localhost, made by the
    dev environment's PKI (``sqlharbor_devtools.devenv.pki``, the control plane's own);
    ``ca_file`` is the CA's PEM."""

    def __init__(self, directory: Path) -> None:
        self.pki = write_pki(directory)
        self.ca_file = self.pki.ca_cert

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context with the serving certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.pki.serving_cert, self.pki.serving_key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only (for tests that speak raw HTTPS)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8")).items()}


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status,
            json.dumps(payload).encode("utf-8"),
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        )


App = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # the status line, headers and body leave in one segment (no 40 ms
    # delayed-ACK stall between a header write and a body write)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.app(Request(self.command, parts.path, query, headers, body))
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: App, tls: ssl.SSLContext | None) -> None:
        self.app = app
        self.tls = tls
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that does not trust the CA: nothing to serve
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with contextlib.suppress(OSError):
                wrapped.close()


class StandinServer:
    """Serves ``app`` on a free 127.0.0.1 port until ``stop`` (HTTPS when ``tls``)."""

    def __init__(self, app: App, *, tls: LocalCa | None = None, name: str = "standin") -> None:
        context = tls.server_context() if tls is not None else None
        self._server = _Server(app, context)
        self.port = int(self._server.server_address[1])
        scheme = "https" if context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{name}:{self.port}", daemon=True
        )
        self._thread.start()  # the socket listens already: no need to wait for the thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> StandinServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
