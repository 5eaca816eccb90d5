"""The benchmarks run end to end at their tiny size (the numbers are not checked: only that
the harness works): the Azurite-backed ones, and the operator benchmark on a control plane
of its own.  The RPO benchmark is exercised by ``make bench``."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import run as bench_run  # noqa: E402
from benchmarks.common import AZURITE  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_tiny_run_of_the_azurite_benchmarks(tmp_path: Path) -> None:
    if not AZURITE.exists() or shutil.which("node") is None:
        pytest.skip(f"Azurite not installed ({AZURITE}); run `npm ci`")
    markdown = tmp_path / "BENCHMARKS.md"
    out = tmp_path / "out"
    args = ["--tiny", "--out", str(out), "--markdown", str(markdown)]
    for name in ("pipeline", "memory", "catalog"):
        args += ["--only", name]
    assert bench_run.main(args) == 0
    document = json.loads((out / "results.json").read_text())
    names = {r["name"]: r for r in document["results"]}
    assert set(names) == {"pipeline", "memory", "catalog"}
    for result in names.values():
        assert result["error"] is None
        assert all(m["value"] is not None for m in result["metrics"])
    assert "| catalog | tiny | plan: blob reads |" in markdown.read_text()


@pytest.mark.e2e
def test_tiny_run_of_the_operator_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--tiny", "--out", str(out), "--no-markdown", "--only", "operator"]
    assert bench_run.main(args) == 0
    [result] = json.loads((out / "results.json").read_text())["results"]
    assert result["error"] is None
    [run] = result["details"]["runs"]
    assert run["database_backups"] > 0, "the load agent finished log backups in the window"
    assert run["lag_samples"] > 0
    assert run["restart_backlog"] > 0, "the outage left databases due"
    assert run["retention_passes"] >= 1, "a retention pass ran in the window"
    status_writes = run["writes_by_resource"].get("PATCH protecteddatabases/status", 0)
    assert status_writes <= run["database_backups"], (
        "a pass resets every point count (the load agent's vault is empty): that change "
        "rides along with the folds, it does not cost a write of its own"
    )
