"""What the benchmarks that compare ways of doing one thing share: each run in a fresh child process
of the same script (so peak memory is the run's own), the ways alternating (so every way sees the same
machine load), and the median of each figure reported."""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import cmdline  # bench/ is the script's directory: sys.path[0]

Figures = dict[str, Any]


def arguments(description: str | None, ways: Sequence[str]) -> argparse.Namespace:
    parser = cmdline.parser(description, servers=10_000, runs=3)
    parser.add_argument("--child", choices=ways, help=argparse.SUPPRESS)
    return parser.parse_args()


def child(args: argparse.Namespace, one_run: Callable[[str, int], Figures]) -> int:
    """The child's part: one run of one way, its figures as JSON on stdout."""
    print(json.dumps(one_run(args.child, args.servers)))
    return 0


def alternate(script: str, ways: Sequence[str], args: argparse.Namespace) -> dict[str, list[Figures]]:
    """`args.runs` runs of each way, each in a child process of `script`, alternating."""
    runs: dict[str, list[Figures]] = {way: [] for way in ways}
    for _ in range(args.runs):
        for way in ways:
            output = subprocess.run(
                [sys.executable, script, "--child", way, "--servers", str(args.servers)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs[way].append(json.loads(output))
    return runs


def medians(results: list[Figures]) -> Figures:
    return {key: statistics.median(run[key] for run in results) for key in results[0]}


def print_json(args: argparse.Namespace, report: dict[str, Figures]) -> int:
    print(json.dumps({"servers": args.servers, "runs": args.runs, **report}, indent=2))
    return 0


def compare(
    description: str | None,
    script: str,
    ways: Sequence[str],
    one_run: Callable[[str, int], Figures],
    row: Callable[[Figures], str],
    *,
    summarise: Callable[[list[Figures]], Figures] = medians,
    statistic: str = "median",
) -> int:
    """A comparing benchmark's whole `main`: in the child, its one run; else the alternating runs of
    every way, each way's runs summarised (`statistic` says how), printed as JSON with --json, else a
    heading and one line a way, `row` giving the figures of it."""
    args = arguments(description, ways)
    if args.child:
        return child(args, one_run)
    runs = alternate(script, ways, args)
    report = {way: summarise(results) for way, results in runs.items()}
    if args.json:
        return print_json(args, report)
    # Every comparison so far measures the ToolHive sample (mcpreg_dev.samples.replicated_toolhive).
    print(f"{args.servers} servers (ToolHive source), {args.runs} runs each ({statistic})")
    width = max(map(len, ways))
    for way, figures in report.items():
        print(f"  {way:{width}} {row(figures)}")
    return 0


def memory(baseline_kib: int) -> Figures:
    """The child's peak memory, and what it held before the measured work (both MiB)."""
    return {
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_rss_mib": baseline_kib / 1024,
    }
