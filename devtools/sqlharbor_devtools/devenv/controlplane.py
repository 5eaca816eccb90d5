"""The local control plane: real etcd, a real kube-apiserver (RBAC, service-account tokens)
and Azurite's blob service, started detached from a state directory.

Called by ``sqlharbor-dev`` (:mod:`sqlharbor_devtools.cli.dev`), the pytest fixtures in
``tests/conftest.py`` and the demo.  ``ControlPlane.up`` returns once every component
answers; the processes keep running after the caller exits until ``ControlPlane.down``.
A second ``up`` on a running state directory returns the running one (``reused=True``).
"""

from __future__ import annotations

import logging
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlharbor_devtools.devenv import audit, azurite, probes, state
from sqlharbor_devtools.devenv.binaries import Binaries, Progress, resolve_binaries, resolve_kubectl
from sqlharbor_devtools.devenv.errors import DevEnvError, NotRunningError, ToolMissingError
from sqlharbor_devtools.devenv.kubeconfig import client_cert_credentials, write_kubeconfig
from sqlharbor_devtools.devenv.pki import Pki, write_pki, write_private
from sqlharbor_devtools.devenv.ports import LOOPBACK, free_ports
from sqlharbor_devtools.devenv.processes import ProcessRecord, exit_reason, is_alive, spawn, stop
from sqlharbor_devtools.devenv.toolchain import Toolchain
from sqlharbor_devtools.devenv.waiting import wait_for

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"
_PORT_ATTEMPTS = 3


@dataclass(frozen=True)
class ControlPlane:
    """A running local control plane, described by its state directory."""

    state_dir: Path
    apiserver_url: str
    etcd_url: str
    blob_endpoint: str
    blob_connection_string: str
    processes: tuple[ProcessRecord, ...] = field(repr=False)
    reused: bool = False

    # ----------------------------------------------------------------- locations
    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (client certificate in group system:masters)."""
        return state.Layout(self.state_dir).kubeconfig

    @property
    def ca_cert(self) -> Path:
        """The CA that signed the API server's serving certificate."""
        return state.Layout(self.state_dir).pki / "ca.crt"

    def env(self) -> dict[str, str]:
        """The environment a shell, the operator or a test needs to use this control plane."""
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "AZURE_STORAGE_CONNECTION_STRING": self.blob_connection_string,
            "SQLHARBOR_DEV_DIR": str(self.state_dir),
        }

    def env_script(self) -> str:
        """``export NAME=value`` lines for :meth:`env`, shell-quoted."""
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self.env().items())

    # ----------------------------------------------------------------- lifecycle
    @classmethod
    def up(
        cls,
        state_dir: Path,
        *,
        toolchain: Toolchain | None = None,
        timeout: float = 120.0,
        progress: Progress = log.info,
    ) -> ControlPlane:
        """Start a control plane in ``state_dir``, or return the one already running there."""
        toolchain = toolchain or Toolchain.from_env()
        root = state_dir.expanduser().resolve()
        with state.locked(root) as layout:
            running = _load(layout)
            if running is not None and running.is_running():
                return _replace_reused(running)
            if running is not None:
                progress("cleaning up a control plane that is no longer running")
                stop(running.processes, timeout=5)  # broken already: no long grace
                state.forget(layout)
            binaries = resolve_binaries(toolchain, progress)
            node, script = _azurite_tools(toolchain)
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                try:
                    return _start(layout, binaries, node, script, timeout, progress)
                except _PortTaken:
                    progress(f"a port was taken meanwhile; retrying ({attempt}/{_PORT_ATTEMPTS})")
            raise DevEnvError("could not find free ports for the control plane")

    @classmethod
    def find(cls, state_dir: Path) -> ControlPlane | None:
        """The control plane running from ``state_dir``, or ``None``."""
        layout = state.Layout(state_dir.expanduser().resolve())
        running = _load(layout)
        return running if running is not None and running.is_running() else None

    @classmethod
    def attach(cls, state_dir: Path) -> ControlPlane:
        """Like :meth:`find`, but raise :class:`NotRunningError` when nothing runs there."""
        running = cls.find(state_dir)
        if running is None:
            raise NotRunningError(f"no control plane is running from {state_dir}")
        return running

    def is_running(self) -> bool:
        """True while every component process is alive."""
        return all(is_alive(p) for p in self.processes)

    def healthy(self) -> bool:
        """True when every component answers right now."""
        layout = state.Layout(self.state_dir)
        context = probes.admin_tls_context(
            self.ca_cert, layout.pki / "admin.crt", layout.pki / "admin.key"
        )
        return (
            probes.etcd_healthy(self.etcd_url)
            and probes.apiserver_ready(self.apiserver_url, context)
            and probes.http_answers(self.blob_endpoint)
        )

    def down(self, *, timeout: float = 30.0) -> None:
        """Stop every component and wait for the processes to exit (data and logs stay)."""
        with state.locked(self.state_dir) as layout:
            stop(self.processes, timeout=timeout)
            state.forget(layout)

    def audit_events(self) -> list[audit.AuditEvent]:
        """What the API server's audit log holds so far (``devenv.audit``)."""
        return audit.events(state.Layout(self.state_dir).logs / "audit.log")

    # ----------------------------------------------------------------- helpers
    def create_service_account_kubeconfig(
        self,
        namespace: str,
        name: str,
        *,
        path: Path | None = None,
        expiration_seconds: int = 86400,
    ) -> Path:
        """Create ``namespace``/``name`` (ServiceAccount) and write a kubeconfig for it."""
        from sqlharbor_devtools.devenv.serviceaccounts import create_service_account_kubeconfig

        return create_service_account_kubeconfig(
            self.kubeconfig,
            namespace,
            name,
            path=path
            or state.Layout(self.state_dir).root
            / "serviceaccounts"
            / f"{namespace}.{name}.kubeconfig",
            expiration_seconds=expiration_seconds,
        )

    def apply_crds(
        self, crd_dir: Path, *, toolchain: Toolchain | None = None, timeout: float = 60.0
    ) -> list[str]:
        """Apply ``crd_dir`` (a kustomization such as the checkout's ``config/crd``, or a
        folder of ``*.yaml``) and wait until every CRD is Established."""
        from sqlharbor_devtools.devenv.crds import apply_crds

        kubectl = resolve_kubectl(toolchain or Toolchain.from_env(), log.info)
        return apply_crds(self.kubeconfig, crd_dir, kubectl=kubectl, timeout=timeout)


class _PortTaken(Exception):
    """A component could not bind its port (another process took it after we picked it)."""


def _replace_reused(plane: ControlPlane) -> ControlPlane:
    return ControlPlane(
        state_dir=plane.state_dir,
        apiserver_url=plane.apiserver_url,
        etcd_url=plane.etcd_url,
        blob_endpoint=plane.blob_endpoint,
        blob_connection_string=plane.blob_connection_string,
        processes=plane.processes,
        reused=True,
    )


def _load(layout: state.Layout) -> ControlPlane | None:
    loaded = state.load(layout)
    if loaded is None:
        return None
    data, processes = loaded
    try:
        return ControlPlane(
            state_dir=layout.root,
            apiserver_url=str(data["apiserver_url"]),
            etcd_url=str(data["etcd_url"]),
            blob_endpoint=str(data["blob_endpoint"]),
            blob_connection_string=azurite.connection_string(LOOPBACK, int(data["blob_port"])),
            processes=tuple(processes),
        )
    except (KeyError, ValueError):
        return None


def _azurite_tools(toolchain: Toolchain) -> tuple[str, Path]:
    if toolchain.node is None:
        raise ToolMissingError("Azurite needs node.js, and there is no `node` on PATH")
    if toolchain.azurite_blob is None or not toolchain.azurite_blob.is_file():
        raise ToolMissingError(
            "Azurite is not installed: run `npm ci` in the sqlharbor checkout "
            "(or set SQLHARBOR_AZURITE_BLOB to azurite's dist/src/blob/main.js)"
        )
    return toolchain.node, toolchain.azurite_blob


def _fresh(layout: state.Layout) -> None:
    for folder in (layout.etcd_data, layout.azurite_data, layout.pki, layout.logs):
        shutil.rmtree(folder, ignore_errors=True)
    layout.etcd_data.mkdir(mode=0o700, parents=True)
    layout.azurite_data.mkdir(mode=0o700, parents=True)
    layout.logs.mkdir(parents=True)
    layout.pki.mkdir(mode=0o700, parents=True)


def _etcd_argv(etcd: Path, layout: state.Layout, client: int, peer: int) -> list[str]:
    client_url, peer_url = f"http://{LOOPBACK}:{client}", f"http://{LOOPBACK}:{peer}"
    return [
        str(etcd),
        "--name=sqlharbor-dev",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=sqlharbor-dev={peer_url}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def _apiserver_argv(
    apiserver: Path, pki: Pki, etcd_url: str, port: int, layout: state.Layout
) -> list[str]:
    cert_dir = layout.pki / "serving"
    return [
        str(apiserver),
        *audit.argv(layout.root / "audit-policy.yaml", layout.logs / "audit.log"),
        f"--etcd-servers={etcd_url}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--disable-admission-plugins=ServiceAccount",
        "--allow-privileged=true",
        "--profiling=false",
    ]


def _start(
    layout: state.Layout,
    binaries: Binaries,
    node: str,
    azurite_script: Path,
    timeout: float,
    progress: Progress,
) -> ControlPlane:
    _fresh(layout)
    pki = write_pki(layout.pki)
    etcd_client, etcd_peer, api_port, blob_port = free_ports(4)
    etcd_url = f"http://{LOOPBACK}:{etcd_client}"
    apiserver_url = f"https://{LOOPBACK}:{api_port}"
    blob_endpoint = azurite.blob_endpoint(LOOPBACK, blob_port)
    started: list[ProcessRecord] = []
    try:
        progress(f"starting etcd on {etcd_url}")
        started.append(
            spawn(
                "etcd",
                _etcd_argv(binaries.etcd, layout, etcd_client, etcd_peer),
                log=layout.logs / "etcd.log",
                cwd=layout.root,
            )
        )
        progress(f"starting azurite (blob) on {blob_endpoint}")
        started.append(
            spawn(
                "azurite",
                azurite.command(
                    node,
                    azurite_script,
                    host=LOOPBACK,
                    port=blob_port,
                    data_dir=layout.azurite_data,
                ),
                log=layout.logs / "azurite.log",
                cwd=layout.root,
            )
        )
        _await(started[0], lambda: probes.etcd_healthy(etcd_url), timeout, "etcd")
        progress(f"starting kube-apiserver on {apiserver_url}")
        started.append(
            spawn(
                "kube-apiserver",
                _apiserver_argv(binaries.kube_apiserver, pki, etcd_url, api_port, layout),
                log=layout.logs / "kube-apiserver.log",
                cwd=layout.root,
            )
        )
        context = probes.admin_tls_context(pki.ca_cert, pki.admin_cert, pki.admin_key)
        _await(started[1], lambda: probes.http_answers(blob_endpoint), timeout, "azurite")
        _await(
            started[2],
            lambda: probes.apiserver_ready(apiserver_url, context),
            timeout,
            "kube-apiserver /readyz",
        )
    except BaseException:
        stop(started, timeout=10)
        if any(_port_in_use(p.log) for p in started):
            raise _PortTaken() from None
        raise
    write_kubeconfig(
        layout.kubeconfig,
        server=apiserver_url,
        ca_cert=pki.ca_cert.read_bytes(),
        user="sqlharbor-dev-admin",
        credentials=client_cert_credentials(
            pki.admin_cert.read_bytes(), pki.admin_key.read_bytes()
        ),
    )
    data: dict[str, Any] = {
        "apiserver_url": apiserver_url,
        "etcd_url": etcd_url,
        "blob_endpoint": blob_endpoint,
        "blob_port": blob_port,
    }
    state.save(layout, data, started)
    plane = ControlPlane(
        state_dir=layout.root,
        apiserver_url=apiserver_url,
        etcd_url=etcd_url,
        blob_endpoint=blob_endpoint,
        blob_connection_string=azurite.connection_string(LOOPBACK, blob_port),
        processes=tuple(started),
    )
    write_private(layout.env_file, plane.env_script().encode("utf-8"))
    return plane


def _await(record: ProcessRecord, ready: Any, timeout: float, what: str) -> None:
    try:
        wait_for(ready, timeout=timeout, what=what, interval=0.2, abort=lambda: exit_reason(record))
    except DevEnvError as exc:
        raise DevEnvError(
            f"{exc}\n--- last lines of {record.log} ---\n{_tail(record.log)}"
        ) from None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _port_in_use(path: Path) -> bool:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    return "address already in use" in text or "EADDRINUSE" in text
