"""The local control plane (``sqlharbor-dev``) and its Python API, tested for real.

The CLI tests run ``sqlharbor-dev`` as a subprocess in a temporary state directory (their
own etcd, kube-apiserver and Azurite, beside any other control plane); the RBAC test uses
the session ``control_plane`` fixture.  The binary tests check where binaries come from
without a control plane (and one builds etcd into an empty cache with the machine's Go).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlharbor_devtools.devenv import (
    ControlPlane,
    KubectlRunner,
    Toolchain,
    ToolMissingError,
    resolve_kubectl,
)
from sqlharbor_devtools.devenv.binaries import (
    ETCD,
    KUBE_APISERVER,
    build,
    module_version,
    resolve_binaries,
)
from sqlharbor_devtools.devenv.checkout import GO_MODULES
from sqlharbor_devtools.devenv.pki import write_pki
from sqlharbor_devtools.devenv.processes import ProcessRecord, is_alive
from sqlharbor_devtools.devenv.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]  # this test's own checkout
MODULES = REPO / GO_MODULES
SQLHARBOR_DEV_CLI = Path(sys.executable).parent / "sqlharbor-dev"


def _noop(_: str) -> None:
    pass


def _cli(state_dir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SQLHARBOR_DEV_DIR"}
    return subprocess.run(
        [str(SQLHARBOR_DEV_CLI), *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _records(state_dir: Path) -> list[ProcessRecord]:
    body = json.loads((state_dir / "state.json").read_text())
    return [
        ProcessRecord(p["name"], p["pid"], p["start_ticks"], Path(p["log"]))
        for p in body["processes"]
    ]


def _parse_exports(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        words = shlex.split(line)
        assert words[0] == "export", line
        key, _, value = words[1].partition("=")
        env[key] = value
    return env


@pytest.fixture
def cli_state_dir(tmp_path: Path, dev_toolchain: Toolchain) -> Path:
    """A state dir for a CLI-started control plane; whatever the test leaves running is stopped."""
    try:
        resolve_binaries(dev_toolchain, _noop)
    except ToolMissingError as exc:
        pytest.skip(f"local control plane unavailable: {exc}")
    state_dir = tmp_path / "dev"
    yield state_dir
    leftover = ControlPlane.find(state_dir)
    if leftover is not None:
        leftover.down()


if sys.platform != "linux":  # pragma: no cover - the harness is developed on Linux
    pytestmark = pytest.mark.skip(reason="the process checks in these tests read /proc")


@pytest.mark.integration
def test_cli_up_env_up_again_down(cli_state_dir: Path, dev_toolchain: Toolchain) -> None:
    up = _cli(cli_state_dir, "up")
    assert up.returncode == 0, up.stderr
    assert "control plane is up" in up.stderr
    records = _records(cli_state_dir)
    assert {r.name for r in records} == {"etcd", "kube-apiserver", "azurite"}
    assert all(is_alive(r) for r in records)
    for record in records:
        pid_file = cli_state_dir / "run" / f"{record.name}.pid"
        assert pid_file.read_text().strip() == str(record.pid)
    for secret in [
        cli_state_dir / "kubeconfig",
        cli_state_dir / "env",
        *(cli_state_dir / "pki").iterdir(),
    ]:
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret

    env = _cli(cli_state_dir, "env")
    assert env.returncode == 0, env.stderr
    exports = _parse_exports(env.stdout)
    assert set(exports) == {"KUBECONFIG", "AZURE_STORAGE_CONNECTION_STRING", "SQLHARBOR_DEV_DIR"}
    assert exports["SQLHARBOR_DEV_DIR"] == str(cli_state_dir.resolve())
    admin = KubectlRunner(resolve_kubectl(dev_toolchain, _noop), Path(exports["KUBECONFIG"]))
    assert "default" in admin("get", "namespaces", "-o", "name").stdout
    assert admin("auth", "can-i", "create", "clusterroles").stdout.strip() == "yes"
    _assert_blob_service_works(exports["AZURE_STORAGE_CONNECTION_STRING"])

    again = _cli(cli_state_dir, "up")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert _records(cli_state_dir) == records

    down = _cli(cli_state_dir, "down")
    assert down.returncode == 0, down.stderr
    assert not any(is_alive(r) for r in records)
    assert not (cli_state_dir / "state.json").exists()
    after = _cli(cli_state_dir, "env")
    assert after.returncode == 3
    assert "no control plane is running" in after.stderr
    status = _cli(cli_state_dir, "status")
    assert status.returncode == 3


def _assert_blob_service_works(connection_string: str) -> None:
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(connection_string) as service:
        container = service.create_container("devenv-check")
        container.upload_blob("hello.txt", b"hello")
        assert container.download_blob("hello.txt").readall() == b"hello"


@pytest.mark.integration
def test_up_after_the_processes_died_starts_a_fresh_one(
    tmp_path: Path, dev_toolchain: Toolchain
) -> None:
    first = ControlPlane.up(tmp_path / "dev", toolchain=dev_toolchain)
    try:
        second = ControlPlane.up(tmp_path / "dev", toolchain=dev_toolchain)
        assert second.reused
        assert second.processes == first.processes
        etcd = next(p for p in first.processes if p.name == "etcd")
        os.kill(etcd.pid, 9)
        wait_for(lambda: not is_alive(etcd), timeout=10, what="etcd to die")
        assert ControlPlane.find(tmp_path / "dev") is None
        third = ControlPlane.up(tmp_path / "dev", toolchain=dev_toolchain)
    finally:
        first.down(timeout=3)  # the API server cannot shut down gracefully without etcd
    try:
        assert not third.reused
        assert not any(is_alive(p) for p in first.processes)
        assert third.healthy()
    finally:
        third.down()


def test_service_account_is_bound_by_rbac(
    control_plane: ControlPlane, kubectl: KubectlRunner, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = control_plane.create_service_account_kubeconfig(
        namespace, "agent", path=tmp_path / "agent.kubeconfig"
    )
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    kubectl("create", "configmap", "granted", "-n", namespace, "--from-literal=k=v")
    kubectl(
        "create",
        "role",
        "read-configmaps",
        "-n",
        namespace,
        "--verb=get,list",
        "--resource=configmaps",
    )
    kubectl(
        "create",
        "rolebinding",
        "agent-reads",
        "-n",
        namespace,
        "--role=read-configmaps",
        f"--serviceaccount={namespace}:agent",
    )
    agent = kubectl.with_kubeconfig(kubeconfig)
    assert agent("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == (
        f"system:serviceaccount:{namespace}:agent"
    )
    wait_for(
        lambda: agent("get", "configmap", "granted", "-n", namespace, check=False).returncode == 0,
        timeout=30,
        what="the RoleBinding to take effect",
    )
    assert agent("get", "configmap", "granted", "-o", "jsonpath={.data.k}").stdout == "v"
    refused = agent("get", "secrets", "-n", namespace, check=False)
    assert refused.returncode != 0
    assert "Forbidden" in refused.stderr
    elsewhere = agent("get", "configmaps", "-n", "default", check=False)
    assert "Forbidden" in elsewhere.stderr
    _assert_python_client_gets_403(kubeconfig, namespace)


def _assert_python_client_gets_403(kubeconfig: Path, namespace: str) -> None:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        core = client.CoreV1Api(api)
        assert core.read_namespaced_config_map("granted", namespace).data == {"k": "v"}
        with pytest.raises(ApiException) as refused:
            core.list_namespaced_secret(namespace)
        assert refused.value.status == 403
    finally:
        api.close()


def test_kubectl_create_token_works(kubectl: KubectlRunner, namespace: str) -> None:
    kubectl("create", "serviceaccount", "tokens", "-n", namespace)
    token = kubectl("create", "token", "tokens", "-n", namespace, "--duration=10m").stdout.strip()
    assert token.count(".") == 2  # a JWT


def test_crds_are_established_when_the_repo_has_any(
    control_plane: ControlPlane, kubectl: KubectlRunner
) -> None:
    expected = sorted(p for p in (REPO / "config" / "crd" / "bases").glob("*.yaml"))
    if not expected:
        pytest.skip("config/crd/bases/ is empty: nothing to install")
    names = kubectl("get", "crd", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    assert all(n.endswith("sqlharbor.io") for n in names if "sqlharbor" in n)
    assert len([n for n in names if n.endswith(".sqlharbor.io")]) >= len(expected)


# --- binaries, certificates: no control plane needed -----------------------------------


def _fake_binary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_explicit_binaries_win_over_assets_and_build(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    _fake_binary(assets / "kube-apiserver")
    _fake_binary(assets / "etcd")
    explicit = _fake_binary(tmp_path / "my-etcd")
    toolchain = Toolchain(
        cache_dir=tmp_path / "cache", kubebuilder_assets=assets, etcd=explicit, go=None
    )
    found = resolve_binaries(toolchain, _noop)
    assert found.etcd == explicit
    assert found.kube_apiserver == assets / "kube-apiserver"


def test_cached_build_is_used_without_go(tmp_path: Path) -> None:
    modules = MODULES
    cache = tmp_path / "cache"
    versions = {
        tool.name: module_version(modules / tool.module_dir / "go.mod", tool.versioned_module)
        for tool in (KUBE_APISERVER, ETCD)
    }
    assert versions["kube-apiserver"].startswith("v1.")
    assert versions["etcd"].startswith("v3.")
    for name, version in versions.items():
        _fake_binary(cache / f"{name}-{version}" / name)
    found = resolve_binaries(Toolchain(cache_dir=cache, modules_dir=modules, go=None), _noop)
    assert found.etcd == cache / f"etcd-{versions['etcd']}" / "etcd"


def test_missing_go_and_cache_is_a_tool_missing_error(tmp_path: Path) -> None:
    toolchain = Toolchain(cache_dir=tmp_path, modules_dir=MODULES)
    with pytest.raises(ToolMissingError, match="no `go` on PATH"):
        resolve_binaries(toolchain, _noop)


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_etcd_is_built_into_an_empty_cache(tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain on PATH: cannot test building from the module proxy")
    messages: list[str] = []
    toolchain = Toolchain(cache_dir=tmp_path, modules_dir=MODULES, go=go)
    built = build(ETCD, toolchain, messages.append)
    assert built.parent.name.startswith("etcd-v3.")
    assert any("first run only" in m for m in messages)
    version = subprocess.run([str(built), "--version"], capture_output=True, text=True, check=True)
    assert built.parent.name.removeprefix("etcd-v") in version.stdout
    assert build(ETCD, toolchain, messages.append) == built  # cached: no second build
    assert sum("first run only" in m for m in messages) == 1


def test_pki_files_are_private_and_admin_is_system_masters(tmp_path: Path) -> None:
    pki = write_pki(tmp_path / "pki")
    for path in (pki.ca_cert, pki.serving_key, pki.admin_key, pki.sa_key, pki.sa_pub):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    admin = x509.load_pem_x509_certificate(pki.admin_cert.read_bytes())
    orgs = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == ["system:masters"]
    serving = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    serving.verify_directly_issued_by(ca)
    admin.verify_directly_issued_by(ca)
