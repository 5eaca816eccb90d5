"""``python -m benchmarks.run [--quick] [--only NAME ...]``: run, print, record.

Writes ``bench-results/results.json`` and refreshes the table in ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, Config, Metric, Result

#: name -> module (each has ``NAME`` and ``run(config) -> Result``), in running order.
BENCHMARKS = {
    "pipeline": "benchmarks.pipeline",
    "memory": "benchmarks.memory",
    "catalog": "benchmarks.catalog",
    "operator": "benchmarks.operator_scale",
    "rpo": "benchmarks.rpo",
}
ALIASES = {"backup": "pipeline", "restore": "pipeline", "scale": "operator"}

BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (minutes, not half an hour)"
    )
    parser.add_argument("--tiny", action="store_true", help="smallest sizes (the test suite)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these ({', '.join([*BENCHMARKS, *ALIASES])}); repeatable",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--no-markdown", action="store_true", help="do not rewrite BENCHMARKS.md")
    parser.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md")
    return parser.parse_args(argv)


def selected(only: Sequence[str]) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names: list[str] = []
    for name in only:
        real = ALIASES.get(name, name)
        if real not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        if real not in names:
            names.append(real)
    return names


def run_one(name: str, config: Config) -> Result:
    began = time.monotonic()
    print(f"== {name} ({config.mode})", flush=True)
    try:
        module = importlib.import_module(BENCHMARKS[name])
        result: Result = module.run(config)
    except Exception as exc:  # one broken benchmark must not hide the others
        traceback.print_exc()
        result = Result(name, error=f"{type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - began
    for metric in result.metrics:
        print("   " + line(metric), flush=True)
    if result.error:
        print(f"   ERROR {result.error}", flush=True)
    return result


def _value(metric: Metric) -> str:
    if metric.value is None:
        return "-"
    v = metric.value
    text = f"{v:.0f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}"
    return f"{text} {metric.unit}".strip()


def _verdict(metric: Metric) -> str:
    return "" if metric.met is None else "met" if metric.met else "MISSED"


def line(metric: Metric) -> str:
    target = f"  [target {metric.target}: {_verdict(metric)}]" if metric.target else ""
    return f"{metric.name}: {_value(metric)}{target}  {metric.spread}  {metric.note}".rstrip()


HEADER = (
    "| benchmark | mode | measure | result | spread (min..max) | target | verdict | notes |\n"
    "|---|---|---|---|---|---|---|---|"
)


def rows(results: Sequence[Result], mode: str) -> list[str]:
    lines = []
    for result in results:
        if result.error:
            lines.append(f"| {result.name} | {mode} | (failed) | - | | | | {result.error} |")
        for m in result.metrics:
            cells = [m.benchmark, mode, m.name, _value(m), m.spread, m.target, _verdict(m), m.note]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return lines


def table(results: Sequence[Result], mode: str) -> str:
    return HEADER + "\n" + "\n".join(rows(results, mode))


def write_markdown(path: Path, results: Sequence[Result], header: dict[str, Any]) -> None:
    """Replace the rows of the benchmarks that ran; keep the others' earlier rows."""
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    before, rest = text.split(BEGIN, 1)
    old_block, after = rest.split(END, 1)
    ran = {r.name for r in results}
    kept = [
        line
        for line in old_block.splitlines()
        if line.startswith("| ")
        and not line.startswith("| benchmark ")
        and line.split("|")[1].strip() not in ran
    ]
    stamps = [
        line
        for line in old_block.splitlines()
        if line.startswith("- ") and line[2:].split(":")[0] not in ran
    ]
    stamps += [
        f"- {r.name}: {header['finished']}, {header['mode']} mode, {r.seconds:.0f} s, "
        f"{header['machine']}"
        for r in results
    ]
    order = {name: i for i, name in enumerate(BENCHMARKS)}

    def key(line: str) -> int:
        return order.get(
            line.split("|")[1].strip() if line.startswith("|") else line[2:].split(":")[0], 99
        )

    body = sorted(kept + rows(results, header["mode"]), key=key)
    block = (
        f"{BEGIN}\nRuns behind these rows:\n\n"
        + "\n".join(sorted(stamps, key=key))
        + f"\n\n{HEADER}\n"
        + "\n".join(body)
        + f"\n{END}"
    )
    path.write_text(before + block + after)


def merge_results(
    path: Path, fresh: list[dict[str, Any]], header: dict[str, Any]
) -> list[dict[str, Any]]:
    """This run's results plus the earlier results of benchmarks that did not run now."""
    for item in fresh:
        item.update(mode=header["mode"], finished=header["finished"])
    try:
        earlier = json.loads(path.read_text()).get("results", [])
    except (OSError, ValueError):
        earlier = []
    names = {item["name"] for item in fresh}
    kept = [item for item in earlier if item.get("name") not in names]
    order = {name: i for i, name in enumerate(BENCHMARKS)}
    return sorted([*kept, *fresh], key=lambda item: order.get(item.get("name", ""), 99))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    names = selected(args.only)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    config = Config(quick=args.quick, tiny=args.tiny, workdir=(out / "work").resolve())
    began = time.monotonic()
    results = [run_one(name, config) for name in names]
    header = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": config.mode,
        "seconds": time.monotonic() - began,
        "machine": f"{platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}",
        "benchmarks": names,
    }
    fresh: list[dict[str, Any]] = [
        {
            "name": r.name,
            "seconds": r.seconds,
            "error": r.error,
            "metrics": [m.as_dict() for m in r.metrics],
            "details": r.details,
        }
        for r in results
    ]
    path = out / "results.json"
    document = {**header, "results": merge_results(path, fresh, header)}
    path.write_text(json.dumps(document, indent=2, default=str))
    print("\n" + table(results, config.mode))
    print(f"\nresults: {out / 'results.json'}")
    if not args.no_markdown:
        write_markdown(args.markdown, results, header)
        print(f"table: {args.markdown}")
    return 1 if any(r.error for r in results) else 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
