"""The operator image (issue 12): built here from package registries only, unpacked with
umoci, and run from its unpacked root against the test control plane as its own
ServiceAccount.

The module builds ``dist/sqlharbor-operator-<version>.oci.tar`` (``sqlharbor-dev image
build``; an archive whose build record has the same source digest is reused), extracts the
archive and ``umoci unpack``s it into a runtime bundle.  It checks the image config and the
root (uid/gid 65532, the entrypoint, no shell, no package manager, no dev tools, the
product byte-compiled), then starts the bundle's process (its args, env, cwd and user)
through :mod:`.sandbox`: read-only root, the pod's ServiceAccount folder (a TokenRequest
token, the cluster CA, the namespace) and ``KUBERNETES_SERVICE_HOST/PORT`` pointing at the
test API server, whose certificate is valid for 127.0.0.1.  The ServiceAccount has exactly
the RBAC ``kubectl kustomize config/rbac`` renders, re-targeted at the test's namespace.
The run passes when kopf's ``/healthz`` answers 200, the log says the state was loaded,
and the operator has validated a BackupVault (read its two Secrets by name, written its
status).  Needs root (chroot, mounts): skipped otherwise, an error in CI
(``SQLHARBOR_REQUIRE_CONTROL_PLANE=1``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from sqlharbor_devtools.devenv import ControlPlane, KubectlRunner
from sqlharbor_devtools.devenv.ports import free_ports
from sqlharbor_devtools.image import ENTRYPOINT, BuildOptions, BuiltImage, build_image, oci
from sqlharbor_devtools.image.host import ensure_tools

from tests.builders.keys import rsa_key

from . import sandbox

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
UID = GID = 65532
SHELLS = ("sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox")
PACKAGE_TOOLS = ("dpkg", "apt", "apt-get", "perl", "pip", "pip3")


def _progress(config: pytest.Config) -> Callable[[str], None]:
    def say(message: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if capture is not None and reporter is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"[image] {message}")

    return say


@dataclass(frozen=True)
class Bundle:
    """The unpacked image: its layout, image config, runtime config and root."""

    built: BuiltImage
    config: dict[str, Any]
    runtime: dict[str, Any]
    rootfs: Path


@pytest.fixture(scope="module")
def bundle(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bundle]:
    if os.geteuid() != 0:
        if os.environ.get("SQLHARBOR_REQUIRE_CONTROL_PLANE") == "1":
            pytest.fail("the image test needs root (chroot, mounts)")
        pytest.skip("the image test needs root (chroot, mounts)")
    say = _progress(pytestconfig)
    built = build_image(BuildOptions.from_env(REPO, REPO / "dist"), say)
    ensure_tools(say, ("umoci",))
    work = tmp_path_factory.mktemp("image")
    layout = work / "layout"
    oci.extract_archive(built.archive, layout)
    say(f"umoci unpack {built.ref}...")
    rootfs = oci.unpack(layout, built.ref, work / "bundle")
    runtime = json.loads((work / "bundle" / "config.json").read_text())
    yield Bundle(built, oci.image_config(layout, built.ref), runtime, rootfs)
    shutil.rmtree(work, ignore_errors=True)  # 300 MB; nothing is mounted outside a sandbox


def test_the_image_config_runs_the_operator_as_an_unprivileged_user(bundle: Bundle) -> None:
    config = bundle.config["config"]
    assert config["User"] == f"{UID}:{GID}"
    assert config["Entrypoint"] == list(ENTRYPOINT) == ["/opt/sqlharbor/bin/sqlharbor-operator"]
    assert not config.get("Cmd")
    assert config["WorkingDir"] == "/home/sqlharbor"
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "sqlharbor-operator"
    assert labels["org.opencontainers.image.version"] == bundle.built.ref.split(":")[1]
    assert (bundle.config["os"], bundle.config["architecture"]) == ("linux", "amd64")
    assert len(bundle.config["rootfs"]["diff_ids"]) == 2  # Debian root, then the venv
    process = bundle.runtime["process"]
    assert (process["user"]["uid"], process["user"]["gid"]) == (UID, GID)
    assert process["args"] == config["Entrypoint"]


def test_the_root_has_no_shell_no_package_manager_and_no_dev_tools(bundle: Bundle) -> None:
    root = bundle.rootfs
    commands = {
        p.name
        for folder in ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "opt/sqlharbor/bin")
        if (root / folder).is_dir()
        for p in (root / folder).iterdir()
    }
    assert commands & set(SHELLS) == set()
    assert commands & set(PACKAGE_TOOLS) == set()
    assert not (root / "var/lib/dpkg/status").exists()  # no dpkg database: status.d only
    assert (root / "var/lib/dpkg/status.d/python3.11-minimal").is_file()
    assert (root / "etc/ssl/certs/ca-certificates.crt").stat().st_size > 100_000
    passwd = (root / "etc/passwd").read_text()
    assert f"sqlharbor:x:{UID}:{GID}:" in passwd
    home = (root / "home/sqlharbor").stat()
    assert (home.st_uid, home.st_gid) == (UID, GID)
    site = root / "opt/sqlharbor/lib/python3.11/site-packages"
    tops = {p.name.split("-")[0].lower() for p in site.iterdir()}
    assert {"sqlharbor", "sqlharbor_operator", "kopf"} <= tops
    assert tops & {"sqlharbor_devtools", "pytest", "pip", "setuptools", "mypy"} == set()
    assert list(site.glob("sqlharbor_operator/__pycache__/main.cpython-311.pyc"))
    assert list(root.glob("usr/lib/python3.11/__pycache__/asyncio*.pyc")) or list(
        root.glob("usr/lib/python3.11/asyncio/__pycache__/*.pyc")
    )


def _operator_rbac(kubectl: KubectlRunner, namespace: str) -> tuple[list[dict[str, Any]], str]:
    """``config/rbac`` rendered and re-targeted at ``namespace``: namespaced objects move
    there, cluster-scoped ones get a ``-<namespace>`` suffix (tests must not share them)."""
    rendered = kubectl("kustomize", str(REPO / "config" / "rbac")).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    renamed = {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"}
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            meta["name"] = f"{meta['name']}-{namespace}"
            meta.pop("namespace", None)
        else:
            meta["namespace"] = namespace
        ref = doc.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole" and ref.get("name") in renamed:
            ref["name"] = f"{ref['name']}-{namespace}"
        for subject in doc.get("subjects") or []:
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace
    (account,) = (d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
    return docs, account


def _vault(namespace: str, connection_string: str) -> list[dict[str, Any]]:
    def secret(name: str, key: str, value: str) -> dict[str, Any]:
        meta = {"name": name, "namespace": namespace}
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": {key: value}}

    kek = rsa_key().private_pem().decode("ascii")
    vault = {
        "apiVersion": "sqlharbor.io/v1alpha1",
        "kind": "BackupVault",
        "metadata": {"name": "primary", "namespace": namespace},
        "spec": {
            "azureBlob": {
                "container": f"image-{namespace}",
                "credentials": {"secretRef": {"name": "vault-storage", "key": "connectionString"}},
            },
            "encryption": {"keySecretRef": {"name": "vault-kek", "key": "kek"}},
        },
    }
    return [
        secret("vault-storage", "connectionString", connection_string),
        secret("vault-kek", "kek", kek),
        vault,
    ]


def _healthz(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return int(answer.status)
    except (urllib.error.URLError, OSError):
        return None


def _wait(what: str, check: Callable[[], Any], process: sandbox.Sandboxed, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if not process.alive():
            break
        time.sleep(0.5)
    log = process.log.read_text(errors="replace")[-6000:]
    state = "running" if process.alive() else f"exited {process.popen.returncode}"
    pytest.fail(f"{what}: not within {timeout:.0f} s (operator {state}); its log:\n{log}")


def test_the_operator_runs_from_the_unpacked_image_as_its_service_account(
    bundle: Bundle,
    control_plane: ControlPlane,
    kubectl: KubectlRunner,
    namespace: str,
    tmp_path: Path,
) -> None:
    rbac, account = _operator_rbac(kubectl, namespace)
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
    cluster_scoped = [
        f"{d['kind'].lower()}/{d['metadata']['name']}" for d in rbac if "Cluster" in d["kind"]
    ]
    try:
        kubectl(
            "apply",
            "-f",
            "-",
            input=yaml.safe_dump_all(_vault(namespace, control_plane.blob_connection_string)),
        )
        token = kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
        credentials = tmp_path / "serviceaccount"
        credentials.mkdir(mode=0o755)
        for name, value in (
            ("token", token),
            ("ca.crt", control_plane.ca_cert.read_text()),
            ("namespace", namespace),
        ):
            (credentials / name).write_text(value)
            (credentials / name).chmod(0o644)
        server = urlsplit(control_plane.apiserver_url)
        assert server.hostname == "127.0.0.1"  # the serving certificate's IP SAN
        (health_port,) = free_ports(1)
        process = bundle.runtime["process"]
        env = dict(e.split("=", 1) for e in process["env"])
        env |= {
            "KUBERNETES_SERVICE_HOST": server.hostname,
            "KUBERNETES_SERVICE_PORT": str(server.port),
        }
        args = [*process["args"], "--namespace", namespace, "--health-port", str(health_port)]
        operator = sandbox.start(
            bundle.rootfs,
            args,
            env=env,
            cwd=process["cwd"],
            uid=process["user"]["uid"],
            gid=process["user"]["gid"],
            service_account=credentials,
            log=tmp_path / "operator.log",
        )
        try:
            _check_running(operator, kubectl, namespace, health_port, bundle.rootfs)
        finally:
            status = operator.stop()
        assert not _host_mounts(bundle.rootfs), "a sandbox mount leaked into the host"
        log = operator.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-6000:]
        # config/rbac grants all the operator does (kopf retries transient errors: not those)
        assert "Forbidden" not in log, log[-6000:]
        assert status in (0, -15), f"exit status {status}:\n{log[-6000:]}"
    finally:
        kubectl("delete", *cluster_scoped, "--ignore-not-found", check=False)


def _check_running(
    operator: sandbox.Sandboxed,
    kubectl: KubectlRunner,
    namespace: str,
    health_port: int,
    rootfs: Path,
) -> None:
    _wait("the operator process", lambda: operator.pid, operator, 30)
    pid = operator.pid
    assert pid is not None
    _wait("kopf's /healthz answering 200", lambda: _healthz(health_port) == 200, operator, 120)
    loaded = re.compile(r"state loaded: (\d+) backupvaults")
    match = _wait("the state loaded", lambda: loaded.search(operator.log.read_text()), operator, 60)
    assert int(match.group(1)) >= 1  # the vault

    def vault_phase() -> str | None:
        got = kubectl("get", "backupvault", "primary", "-n", namespace, "-o", "json")
        phase = (json.loads(got.stdout).get("status") or {}).get("phase")
        return str(phase) if phase else None

    assert _wait("the vault validated", vault_phase, operator, 60) == "Available"
    status = sandbox.proc_status(pid)
    assert status["Uid"].split() == [str(UID)] * 4
    assert status["Gid"].split() == [str(GID)] * 4
    assert status["Groups"] == ""
    assert (int(status["CapEff"], 16), int(status["CapPrm"], 16)) == (0, 0)
    assert status["NoNewPrivs"] == "1"
    assert "ro" in sandbox.root_mount_options(pid)
    assert os.readlink(f"/proc/{pid}/root") == str(rootfs)


def _host_mounts(root: Path) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return [line for line in text.splitlines() if str(root) in line]
