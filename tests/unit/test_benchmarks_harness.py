"""The benchmark harness itself (no Azurite, no control plane): statistics, selection,
the results JSON and the BENCHMARKS.md table refresh."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import run as bench_run  # noqa: E402
from benchmarks.common import (  # noqa: E402
    Config,
    Result,
    alternate,
    median,
    percentile,
    ratios,
    spread,
    stream,
)


def test_statistics() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([5.0], 99) == 5.0
    assert spread([1.0, 3.0]) == "1.00..3.00 (n=2)"
    assert ratios([2.0, 3.0], [1.0, 2.0]) == [2.0, 1.5]


def test_alternate_runs_a_then_b() -> None:
    order: list[str] = []
    first, second = alternate(3, lambda: order.append("A") or 1.0, lambda: order.append("B") or 2.0)
    assert order == ["A", "B"] * 3
    assert first == [1.0] * 3
    assert second == [2.0] * 3


def test_stream_cycles_the_pool_in_pieces() -> None:
    pieces = [bytes(p) for p in stream(b"abcdef", 14, piece=4)]
    assert b"".join(pieces) == b"abcdefabcdefab"
    assert max(len(p) for p in pieces) <= 4


def test_selection_and_aliases() -> None:
    assert bench_run.selected([]) == list(bench_run.BENCHMARKS)
    assert bench_run.selected(["backup", "restore", "catalog"]) == ["pipeline", "catalog"]
    with pytest.raises(SystemExit):
        bench_run.selected(["nope"])


def test_config_picks_by_mode() -> None:
    assert Config().pick(1, 2, 3) == 1
    assert Config(quick=True).pick(1, 2, 3) == 2
    assert Config(quick=True, tiny=True).pick(1, 2, 3) == 3


def _fake(name: str, value: float) -> types.ModuleType:
    module = types.ModuleType(f"fake_bench_{name}")

    def run(config: Config) -> Result:
        result = Result(name)
        result.add("speed", value, "x", target=">= 1x", met=value >= 1, spread="1..2 (n=2)")
        return result

    module.run = run  # type: ignore[attr-defined]
    return module


def test_main_writes_json_and_refreshes_only_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fake_bench_one", _fake("one", 1.5))
    monkeypatch.setitem(sys.modules, "fake_bench_two", _fake("two", 0.5))
    monkeypatch.setattr(bench_run, "BENCHMARKS", {"one": "fake_bench_one", "two": "fake_bench_two"})
    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text(f"# B\n\nprose\n\n{bench_run.BEGIN}\n{bench_run.END}\n\ntail\n")
    out = tmp_path / "out"
    args = ["--tiny", "--out", str(out), "--markdown", str(markdown)]
    assert bench_run.main(args) == 0
    document = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in document["results"]] == ["one", "two"]
    assert document["results"][1]["metrics"][0]["met"] is False
    text = markdown.read_text()
    assert "| one | tiny | speed | 1.50 x |" in text
    assert "| two | tiny | speed | 0.500 x |" in text
    assert "MISSED" in text
    assert text.startswith("# B\n\nprose")
    assert text.rstrip().endswith("tail")

    monkeypatch.setitem(sys.modules, "fake_bench_one", _fake("one", 2.5))
    assert bench_run.main([*args, "--only", "one"]) == 0
    text = markdown.read_text()
    assert "| one | tiny | speed | 2.50 x |" in text
    assert "1.50 x" not in text
    assert "| two | tiny | speed | 0.500 x |" in text  # kept from the earlier run
    assert text.count(bench_run.BEGIN) == 1


def test_a_failing_benchmark_is_reported_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = types.ModuleType("fake_bench_broken")

    def run(config: Config) -> Result:
        raise RuntimeError("boom")

    broken.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_bench_broken", broken)
    monkeypatch.setattr(bench_run, "BENCHMARKS", {"broken": "fake_bench_broken"})
    code = bench_run.main(["--tiny", "--out", str(tmp_path), "--no-markdown"])
    assert code == 1
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["results"][0]["error"] == "RuntimeError: boom"
