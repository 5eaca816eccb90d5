"""The agent's offline bundles (issue 13, item 8): built here from PyPI packages only, then run
the way a VM would run them.

The module builds ``dist/`` as ``make agent-bundle`` does (``sqlharbor-dev bundle build``; a
bundle whose build record has the same source digest is reused, the dependency wheels come
from ``~/.cache/sqlharbor/agent-bundle``).  It runs the pex with the *system* python
(``/usr/bin/python3``, outside the venv) under ``env -i`` with a fresh ``PEX_ROOT``:
``--version`` and ``run --help``, by the interpreter and through the pex's ``/bin/sh`` boot;
then ``bundle_scripts/probe.py`` inside it, plain and under systemd's
``MemoryDenyWriteExecute=`` (``bundle_scripts/mdwe_exec.py``: the seccomp filter of systemd
< 254, and the kernel's PR_SET_MDWE of 254+), which imports what the agent needs, exercises
cryptography, zstandard and ctypes (and binds the stand-in libsqlvdi.so when g++ can build
it), and reports what must be absent.  pyodbc: imported when the host has unixODBC's
libodbc.so.2; otherwise the test requires the import to fail on exactly that library (the
extension module for the running interpreter was found and loaded up to it) and checks the
version in the bundle's metadata.  The pex's and the Windows zip's contents are checked
against the pins and the targets (glibc 2.28, CPython 3.11-3.14), and the Windows wheels
must resolve ``sqlharbor[sqlserver]`` offline.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlharbor_devtools.bundle import (
    BuiltBundle,
    BundleOptions,
    build_bundle,
    pexfile,
    product_version,
    targets,
    wheels,
    windows,
)

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).with_name("bundle_scripts")
SYSTEM_PYTHON = Path("/usr/bin/python3")
#: the distributions the operator or the tooling brings and the agent bundle must not
ABSENT = ("kopf", "kubernetes-asyncio", "sqlharbor-devtools", "pytest", "mypy")


def _progress(config: pytest.Config) -> Callable[[str], None]:
    def say(message: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if capture is not None and reporter is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"[bundle] {message}")

    return say


@pytest.fixture(scope="module")
def built(pytestconfig: pytest.Config) -> BuiltBundle:
    return build_bundle(BundleOptions.from_env(REPO, REPO / "dist"), _progress(pytestconfig))


@pytest.fixture(scope="module")
def system_python() -> Path:
    if not SYSTEM_PYTHON.is_file():
        pytest.skip(f"{SYSTEM_PYTHON} is absent: the bundle is run with the system python")
    return SYSTEM_PYTHON


@pytest.fixture(scope="module")
def pex_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("pex-root")
    yield root
    shutil.rmtree(root, ignore_errors=True)  # ~300 MB: every target's wheels, unpacked


def clean_run(
    argv: list[str], pex_root: Path, cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """``env -i PEX_ROOT=... [NAME=VALUE...] argv`` in ``cwd``: nothing of this venv leaks in."""
    settings = [f"{k}={v}" for k, v in {"PEX_ROOT": str(pex_root), **env}.items()]
    return subprocess.run(
        ["/usr/bin/env", "-i", *settings, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def probe(
    argv_prefix: list[str], pex: Path, pex_root: Path, cwd: Path, *extra: str
) -> dict[str, Any]:
    """Run ``probe.py`` inside the pex (PEX_INTERPRETER) and return what it printed."""
    argv = [*argv_prefix, str(pex), str(SCRIPTS / "probe.py"), *extra]
    done = clean_run(argv, pex_root, cwd, PEX_INTERPRETER="1")
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_dist_holds_the_wheel_the_pex_and_the_windows_zip(built: BuiltBundle) -> None:
    version = product_version(REPO)
    assert built.wheel.name == f"sqlharbor-{version}-py3-none-any.whl"
    assert built.pex.name == f"sqlharbor-agent-{version}-linux-x86_64.pex"
    assert built.windows_zip.name == f"sqlharbor-agent-{version}-windows-amd64.zip"
    assert os.access(built.pex, os.X_OK)
    assert built.pex.read_bytes()[:10] == b"#!/bin/sh\n"  # the --sh-boot launcher
    record = json.loads(built.record.read_text())
    assert record["source_digest"] == built.source_digest
    assert set(record["files"]) == {f.name for f in built.files}
    with zipfile.ZipFile(built.wheel) as wheel:
        tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {"sqlharbor", "sqlharbor_agent", "sqlharbor_operator"} <= tops
    assert not tops & {"tests", "sqlharbor_devtools", "benchmarks"}


def test_the_pex_holds_the_agent_pinned_for_every_target_and_nothing_else(
    built: BuiltBundle,
) -> None:
    found = pexfile.distributions(built.pex)
    names = {name for name, _, _ in found}
    assert set(pexfile.REQUIRED) <= names
    assert not names & set(ABSENT)
    assert pexfile.interpreter_gaps(found) == {}
    pyodbc_abis = {t.split("-")[1] for n, _, t in found if n == "pyodbc"}
    assert pyodbc_abis == {f"cp3{m}" for m in targets.PYTHON_MINORS}
    pins = dict(line.split("==") for line in wheels.constraints())
    accepted = {*targets.manylinux_tags(), "any"}
    for name, version, tags in found:
        expected = product_version(REPO) if name == "sqlharbor" else pins.get(name)
        assert version == expected, f"{name} {version} is not the pinned {expected}"
        assert set(tags.split("-")[2].split(".")) & accepted, f"{name} {tags}: glibc > 2.28"
    assert pexfile.pex_info(built.pex)["entry_point"] == "sqlharbor_agent.main:main"


def test_the_pex_runs_with_the_system_python_in_a_clean_environment(
    built: BuiltBundle, system_python: Path, pex_root: Path, tmp_path: Path
) -> None:
    version = clean_run([str(system_python), str(built.pex), "--version"], pex_root, tmp_path)
    assert version.returncode == 0, version.stderr[-4000:]
    assert version.stdout.strip() == f"sqlharbor-agent, version {built.version}"
    usage = clean_run([str(system_python), str(built.pex), "run", "--help"], pex_root, tmp_path)
    assert usage.returncode == 0, usage.stderr[-4000:]
    assert "Usage: sqlharbor-agent run [OPTIONS]" in usage.stdout
    assert "--config" in usage.stdout
    # as the systemd unit runs it: the pex itself, its /bin/sh boot finding python3.X on PATH
    booted = clean_run([str(built.pex), "--version"], pex_root, tmp_path, PATH="/usr/bin:/bin")
    assert booted.returncode == 0, booted.stderr[-4000:]
    assert booted.stdout.strip() == f"sqlharbor-agent, version {built.version}"


def test_the_bundle_imports_what_the_agent_needs_and_not_the_operator(
    built: BuiltBundle, system_python: Path, pex_root: Path, tmp_path: Path
) -> None:
    found = probe([str(system_python)], built.pex, pex_root, tmp_path)
    assert found["agent_file"].startswith(str(pex_root))  # the bundle's, not the checkout's
    assert found["findable"] == []
    pins = dict(line.split("==") for line in wheels.constraints())
    assert found["versions"]["pyodbc"] == pins["pyodbc"]
    assert found["versions"]["zstandard"] == pins["zstandard"]
    assert found["versions"]["sqlharbor"] == built.version
    assert found["aesgcm"] is True
    assert found["zstd"] is True
    if ctypes.util.find_library("odbc"):
        assert found["pyodbc"].startswith("imported "), found["pyodbc"]
    else:  # no unixODBC here: the module loads up to the host library it needs
        assert found["pyodbc"].startswith("ImportError: libodbc.so.2"), found["pyodbc"]


@pytest.fixture(scope="module")
def standin_vdi(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    from tests.sqlserver.standin import build_standin

    return build_standin(tmp_path_factory.mktemp("standin-vdi"))


@pytest.mark.parametrize("mode", ["seccomp", "prctl"])
def test_the_bundle_runs_under_memory_deny_write_execute(
    built: BuiltBundle,
    system_python: Path,
    pex_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
    standin_vdi: Path | None,
    mode: str,
) -> None:
    # seccomp (the target distros' systemd): from a fresh PEX_ROOT, so the first boot (unpack,
    # venv) runs under the filter too; prctl: from the warm one the other tests used
    root = tmp_path_factory.mktemp("pex-root-mdwe") if mode == "seccomp" else pex_root
    launcher = [str(system_python), "-I", str(SCRIPTS / "mdwe_exec.py"), mode]
    try:
        if mode == "prctl":
            check = clean_run([*launcher, "/bin/true"], root, root)
            if check.returncode == 2:
                pytest.skip(f"this kernel has no PR_SET_MDWE: {check.stderr.strip()}")
        extra = [str(standin_vdi)] if standin_vdi else []
        found = probe([*launcher, str(system_python)], built.pex, root, root, *extra)
    finally:
        if root != pex_root:
            shutil.rmtree(root, ignore_errors=True)
    assert found["write_exec_mapping"] == "refused"  # the filter is in force
    assert (found["aesgcm"], found["zstd"]) == (True, True)
    assert (found["ctypes_call"], found["ctypes_callback"]) == (True, True)
    assert found.get("vdi") is (True if standin_vdi else None)


def test_the_windows_zip_installs_offline(built: BuiltBundle, tmp_path: Path) -> None:
    top = windows.folder_name(built.version)
    with zipfile.ZipFile(built.windows_zip) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path)
    assert f"{top}/install-service.ps1" in names
    assert f"{top}/README.md" in names
    house = tmp_path / top / "wheels"
    found = sorted(pexfile.parse_wheel_name(p.name) for p in house.glob("*.whl"))
    assert len(found) == len(names) - 2
    listed = {name for name, _, _ in found}
    assert {"sqlharbor", "pyodbc", "colorama", "zstandard", "cryptography"} <= listed
    assert not listed & set(ABSENT)
    assert pexfile.interpreter_gaps(found) == {}
    assert all(t.split("-")[2] in ("win_amd64", "any") for _, _, t in found)
    pins = dict(line.split("==") for line in wheels.constraints())
    for name, version, _ in found:
        assert version == (built.version if name == "sqlharbor" else pins.get(name)), name
    for minor in (targets.PYTHON_MINORS[0], targets.PYTHON_MINORS[-1]):
        target = ["--platform=win_amd64", f"--python-version=3.{minor}", "--implementation=cp"]
        offline = ["--quiet", "--no-index", "--only-binary=:all:", f"--find-links={house}"]
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", *offline, *target,
             f"--dest={tmp_path / f'cp3{minor}'}", "sqlharbor[sqlserver]"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
    script = (tmp_path / top / "install-service.ps1").read_text()
    assert "--no-index" in script
    assert "wheels" in script
