"""The product wheel holds only the product (DESIGN §3, issue 11): no dev control plane, demo
harness, simulator controls, Go tool modules or ``sqlharbor_devtools`` code, and its command
lines have no ``dev``/``demo``/``simulate`` verbs.

The wheel is built with this interpreter's setuptools and no build isolation (no network),
from a copy of the checkout, so the build never writes ``build/`` into the tree and never
picks up stale files from an earlier build.  Its CLIs are then imported from the wheel
itself (a pure-Python wheel is importable as a zip), not from the editable install.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[2]
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    ".sqlharbor-dev",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "bench-results",
)
DEV_DIRS = {"devenv", "demo", "sqlharbor_devtools", "devtools", "controlplane-go"}
DEV_MODULES = {"simulate_cli.py", "compare_cli.py", "dev.py", "demo.py", "devenv.py"}
GO_FILES = {"go.mod", "go.sum"}
DEV_VERBS = {"dev", "demo", "simulate", "simulate-compare"}
_IMPORTS_DEVTOOLS = re.compile(r"^\s*(?:from|import)\s+sqlharbor_devtools\b", re.MULTILINE)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCES, symlinks=True)
    out = tmp / "dist"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "--no-cache-dir",
            "--quiet",
            "-w",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout}\n{result.stderr}"
    (built,) = out.glob("sqlharbor-*.whl")
    return built


def _dev_entries(names: list[str]) -> list[str]:
    found = []
    for name in names:
        path = PurePosixPath(name)
        if (
            DEV_DIRS & set(path.parts[:-1])
            or path.name in DEV_MODULES
            or path.name in GO_FILES
            or path.suffix == ".go"
        ):
            found.append(name)
    return found


def test_the_wheel_has_no_devtools_files(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert any(n.startswith("sqlharbor/") for n in names), names[:20]
    assert _dev_entries(names) == []


def test_no_module_of_the_wheel_imports_devtools(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        offenders = [
            name
            for name in archive.namelist()
            if name.endswith(".py") and _IMPORTS_DEVTOOLS.search(archive.read(name).decode())
        ]
    assert offenders == []


def test_the_wheel_installs_no_dev_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = (n for n in archive.namelist() if n.endswith("/entry_points.txt"))
        text = archive.read(entry_points).decode()
    scripts = re.findall(r"^(\S+)\s*=", text, re.MULTILINE)
    assert "sqlharbor" in scripts
    assert [s for s in scripts if "dev" in s or "demo" in s] == []


_LIST_VERBS = """
import json, sys
import sqlharbor, sqlharbor_agent
assert sqlharbor.__file__.startswith(sys.argv[1]), sqlharbor.__file__
assert sqlharbor_agent.__file__.startswith(sys.argv[1]), sqlharbor_agent.__file__
from sqlharbor.cli import main as product
from sqlharbor_agent import main as agent
product._register()
agent._register_plugins()
print(json.dumps({"sqlharbor": sorted(product.cli.commands),
                  "sqlharbor-agent": sorted(agent.cli.commands)}))
"""


def test_the_wheels_command_lines_have_no_dev_verbs(wheel: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LIST_VERBS, str(wheel)],
        env={**os.environ, "PYTHONPATH": str(wheel)},
        cwd=wheel.parent,  # not the checkout: `python -c` puts the cwd first on sys.path
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    verbs: dict[str, list[str]] = json.loads(result.stdout)
    assert "restore" in verbs["sqlharbor"]
    assert "run" in verbs["sqlharbor-agent"]
    assert {k: sorted(DEV_VERBS & set(v)) for k, v in verbs.items()} == {
        "sqlharbor": [],
        "sqlharbor-agent": [],
    }
