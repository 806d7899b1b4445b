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

Figures = dict[str, Any]


def arguments(description: str | None, ways: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
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


def memory(baseline_kib: int) -> Figures:
    """The child's peak memory, and what it held before the measured work (both MiB)."""
    return {
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_rss_mib": baseline_kib / 1024,
    }
