"""What per-entry quarantine (issue 14) costs the operator's parsing step, at 10,000 ToolHive servers.

Three ways, each run in a fresh child process (as the operator's parsing child is), so its peak
resident memory (ru_maxrss) belongs to that run alone:

- `strict`: the valid-only path the operator took before: `parse_catalog` (all or nothing), filter,
  render the served document, hash;
- `skip-valid`: what the operator does now (`mcpreg_operator.parsing.prepare`: `read_catalog`, the
  compact report of skipped entries, filter, render, hash), on the same valid catalogue;
- `skip-1pct`: the same with 1% of the entries broken (every hundredth entry given an unknown
  transport), which are left out and reported.

Figures: the wall time of the whole step (median and max over the runs) and its CPU time (user +
system, median: less sensitive to a machine shared with other work), the servers stored, the entries
skipped, and the child's peak memory.

    .venv/bin/python bench/operator_quarantine_bench.py [--servers 10000] [--runs 3] [--json]
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

from alternating import Figures, compare, medians, memory  # bench/ is sys.path[0]
from storage_bench import SHARED_DATA  # bench/ is the script's directory: sys.path[0]

SOURCE = SHARED_DATA / "toolhive" / "registry-2026-02-18.json"
WAYS = ("strict", "skip-valid", "skip-1pct")
BROKEN_EVERY = 100


def source_bytes(servers: int, broken: bool) -> bytes:
    from mcpreg_dev.samples import replicated_toolhive

    document = replicated_toolhive(json.loads(SOURCE.read_bytes()), servers)
    if broken:
        entries = [(section, name) for section in ("servers", "remote_servers") for name in document[section]]
        for section, name in entries[::BROKEN_EVERY]:
            document[section][name]["transport"] = "carrier-pigeon"
    return json.dumps(document).encode()


def one_run(way: str, servers: int) -> dict[str, Any]:
    """In this (child) process: prepare the generation the operator would store, and measure it."""
    from mcpreg.catalog import CatalogLimits, parse_catalog
    from mcpreg.catalog.hashing import content_hash
    from mcpreg.catalog.served import render_served
    from mcpreg_operator.parsing import ParseOptions, prepare

    data = source_bytes(servers, broken=way == "skip-1pct")
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    limits = CatalogLimits()
    started, cpu_started = time.perf_counter(), time.process_time()
    if way == "strict":
        catalog = parse_catalog(data, limits=limits)
        served = render_served(catalog)
        content_hash(served)
        stored, skipped = catalog.server_count, 0
    else:
        prepared = prepare(data, ParseOptions(format="auto", filter_spec=None, limits=limits))
        stored, skipped = prepared.server_count, prepared.entries.skipped_count
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "total_s": elapsed,
        "cpu_s": cpu,
        "servers_stored": stored,
        "entries_skipped": skipped,
        **memory(baseline_kib),
    }


def summarise(results: list[Figures]) -> Figures:
    return medians(results) | {"max_total_s": max(run["total_s"] for run in results)}


def row(figures: Figures) -> str:
    return (
        f"{figures['total_s']:.2f} / {figures['max_total_s']:.2f} s (CPU {figures['cpu_s']:.2f} s); "
        f"stored {figures['servers_stored']:.0f} servers, skipped {figures['entries_skipped']:.0f}; "
        f"peak memory {figures['peak_rss_mib']:.0f} MiB (baseline {figures['baseline_rss_mib']:.0f})"
    )


def main() -> int:
    return compare(__doc__, __file__, WAYS, one_run, row, summarise=summarise, statistic="median / max")


if __name__ == "__main__":
    sys.exit(main())
