"""The command line most benchmarks share: their docstring as help, their sizes and repeat counts as
integer options, `--json`, and the figures printed either as JSON or as one aligned line each."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any


def parser(description: str | None, **counts: int) -> argparse.ArgumentParser:
    """A parser showing `description` as written, with an integer option per keyword of `counts`
    (`poll_interval=1` gives `--poll-interval`, default 1) and `--json`; the caller adds the rest."""
    result = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, default in counts.items():
        result.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    result.add_argument("--json", action="store_true", help="print the figures as JSON")
    return result


def print_figures(report: Mapping[str, Any], *, as_json: bool) -> int:
    """`report` as indented JSON, or one `key value` line per figure with the values aligned."""
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        width = max(map(len, report), default=0)
        for key, value in report.items():
            print(f"{key:<{width}} {value}")
    return 0
