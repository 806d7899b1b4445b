"""Benchmark of per-entry quarantine at 10,000 entries with 1% broken, against the valid-only path.

Generates the 10,000-server ToolHive catalogue of catalog_bench.py (the real entries under numbered
names) and a copy in which every hundredth server has an error (a transport ToolHive cannot run), then
measures, each in a fresh process (wall and CPU seconds of the call, peak RSS as VmHWM):

- parse_catalog on the valid catalogue, with this checkout's code and (with --baseline DIR) with
  another checkout's, which is "today's valid-only path";
- read_catalog on the valid catalogue and on the 1%-broken one;
- `mcpreg validate` (in-process main(), so the figure is the command's own work) on both, and with
  the baseline's code on the valid one.

    .venv/bin/python bench/quarantine_bench.py [--servers 10000] [--runs 3] [--baseline /work/main] [--json]

The aim (issue 14): read_catalog on the broken catalogue, and validate on it, no more than 10% slower
than the baseline's valid-only path. The cases run interleaved, round after round; the ratios compare
the least CPU time of each case's runs, the steadiest figure on a shared machine (medians are printed
too). Exit status 1 when a broken-catalogue ratio misses the aim.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import cmdline  # noqa: E402
from catalog_bench import _peak_rss_mb, generate_toolhive  # noqa: E402

AIM_RATIO = 1.10


def break_every_hundredth(data: bytes) -> bytes:
    """The same catalogue with every hundredth server given a transport ToolHive cannot run."""
    document = json.loads(data)
    entries = sorted(
        (name, section) for section in ("servers", "remote_servers") for name in document[section]
    )
    for index, (name, section) in enumerate(entries):
        if index % 100 == 0:
            document[section][name]["transport"] = "carrier-pigeon"
    return json.dumps(document, indent=2).encode()


def child(kind: str, path: str) -> dict[str, Any]:
    """One measured call, in this (fresh) process."""
    baseline_mb = _peak_rss_mb()
    if kind == "validate":
        from mcpreg_cli.main import main

        sink = io.StringIO()
        start, cpu_start = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            code = main(["validate", "--quiet", path])
        result: dict[str, Any] = {"exit_code": code, "output_lines": len(sink.getvalue().splitlines())}
    else:
        import mcpreg.catalog as catalog_module

        data = Path(path).read_bytes()
        start, cpu_start = time.perf_counter(), time.process_time()
        if kind == "parse":
            catalog = catalog_module.parse_catalog(data)
            result = {"served": catalog.server_count, "skipped": 0}
        else:
            reading = catalog_module.read_catalog(data)
            result = {"served": reading.catalog.server_count, "skipped": len(reading.skipped)}
    result["seconds"] = time.perf_counter() - start
    result["cpu_seconds"] = time.process_time() - cpu_start
    result["baseline_rss_mb"] = baseline_mb
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def run_child(kind: str, path: Path, code: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if code is not None:
        # Another checkout's product code ahead of this one's editable install.
        env["PYTHONPATH"] = os.pathsep.join([str(code / "src"), str(code / "cli")])
    completed = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **{k: v for k, v in results[0].items() if k not in ("seconds", "cpu_seconds", "peak_rss_mb")},
        "runs": len(results),
        "wall_median_s": round(statistics.median(r["seconds"] for r in results), 3),
        "cpu_median_s": round(statistics.median(r["cpu_seconds"] for r in results), 3),
        # On a shared machine the least CPU a run took is the steadiest estimate of the code's cost.
        "cpu_min_s": round(min(r["cpu_seconds"] for r in results), 3),
        "peak_rss_max_mb": round(max(r["peak_rss_mb"] for r in results), 1),
    }


def main() -> int:
    parser = cmdline.parser(__doc__.splitlines()[0], servers=10_000, runs=3)
    parser.add_argument(
        "--baseline", type=Path, help="a checkout whose parse_catalog/validate are the baseline"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        valid = Path(tmp) / "valid.json"
        broken = Path(tmp) / "broken.json"
        valid.write_bytes(generate_toolhive(args.servers))
        broken.write_bytes(break_every_hundredth(valid.read_bytes()))
        cases: list[tuple[str, str, Path, Path | None]] = []
        if args.baseline is not None:
            cases.append(("baseline parse_catalog(valid)", "parse", valid, args.baseline))
        cases += [
            ("parse_catalog(valid)", "parse", valid, None),
            ("read_catalog(valid)", "read", valid, None),
            ("read_catalog(1% broken)", "read", broken, None),
        ]
        if args.baseline is not None:
            cases.append(("baseline validate(valid)", "validate", valid, args.baseline))
        cases += [
            ("validate(valid)", "validate", valid, None),
            ("validate(1% broken)", "validate", broken, None),
        ]
        # Rounds interleave the cases, so that a busy spell on the machine hits all of them alike.
        results: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in cases}
        for _ in range(args.runs):
            for label, kind, path, code in cases:
                results[label].append(run_child(kind, path, code))
        for label, runs in results.items():
            report[label] = summarise(runs)
        report["bytes"] = {"valid": valid.stat().st_size, "broken": broken.stat().st_size}

    ratios = {}
    if args.baseline is not None:
        for label, base in (
            ("read_catalog(1% broken)", "baseline parse_catalog(valid)"),
            ("read_catalog(valid)", "baseline parse_catalog(valid)"),
            ("parse_catalog(valid)", "baseline parse_catalog(valid)"),
            ("validate(1% broken)", "baseline validate(valid)"),
            ("validate(valid)", "baseline validate(valid)"),
        ):
            ratios[f"{label} / {base}"] = round(
                report[label]["cpu_median_s"] / report[base]["cpu_median_s"], 3
            )
        report["cpu_ratios"] = ratios

    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for label, result in report.items():
            if label in ("bytes", "cpu_ratios"):
                continue
            extra = (
                f"exit {result['exit_code']}, {result['output_lines']} lines"
                if "exit_code" in result
                else f"served {result['served']}, skipped {result['skipped']}"
            )
            print(
                f"{label:32} wall {result['wall_median_s']:6.2f} s  CPU {result['cpu_median_s']:6.2f} s "
                f"(min {result['cpu_min_s']:5.2f} s)  "
                f"peak {result['peak_rss_max_mb']:6.1f} MB  ({extra})"
            )
        for label, ratio in ratios.items():
            print(f"CPU ratio (least CPU of the runs) {label}: {ratio:.3f}")
    missed = [label for label, ratio in ratios.items() if "broken" in label and ratio > AIM_RATIO]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
