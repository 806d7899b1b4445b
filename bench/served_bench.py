"""What the operator's parsing step costs and stores, for a 10,000-server ToolHive catalogue, two ways.

- `canonical`: what operators did before the served document: parse, validate, canonical JSON, hash;
- `served`: what the operator does now: parse, validate, render the served document
  (`mcpreg.catalog.served`: every body, the facts the API indexes, the ToolHive document), hash.

Each run is a fresh child process (as the operator's parsing child is), so its peak resident memory
(ru_maxrss) belongs to that run alone. Figures: parse and render time (median over the runs), the bytes
stored before compression, the gzip bytes the storage backends write (their level), the number of
ConfigMap parts those make, and the child's peak memory.

    .venv/bin/python bench/served_bench.py [--servers 10000] [--runs 3] [--json]
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

from alternating import Figures, compare, memory  # bench/ is sys.path[0]
from storage_bench import SHARED_DATA  # bench/ is the script's directory: sys.path[0]

SOURCE = SHARED_DATA / "toolhive" / "registry-2026-02-18.json"
WAYS = ("canonical", "served")


def one_run(way: str, servers: int) -> dict[str, Any]:
    """In this (child) process: prepare the generation the operator would store, and measure it."""
    from mcpreg.catalog import parse_catalog
    from mcpreg.catalog.hashing import content_hash
    from mcpreg.catalog.served import render_served
    from mcpreg.storage.encoding import compress, encode
    from mcpreg_dev.samples import replicated_toolhive

    source = json.dumps(replicated_toolhive(json.loads(SOURCE.read_bytes()), servers)).encode()
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    catalog = parse_catalog(source)
    parsed = time.perf_counter()
    data = catalog.canonical_json() if way == "canonical" else render_served(catalog)
    content_hash(data)
    rendered = time.perf_counter()
    return {
        "parse_s": parsed - started,
        "render_s": rendered - parsed,
        "total_s": rendered - started,
        "stored_bytes": len(data),
        "gzip_bytes": len(compress(data)),
        "configmap_parts": len(encode(data).chunks),
        **memory(baseline_kib),
    }


def row(figures: Figures) -> str:
    return (
        f"parse {figures['parse_s']:.2f} s + render {figures['render_s']:.2f} s = "
        f"{figures['total_s']:.2f} s; stores {figures['stored_bytes'] / 1e6:.1f} MB, "
        f"gzip {figures['gzip_bytes'] / 1e6:.2f} MB ({figures['configmap_parts']:.0f} ConfigMap parts); "
        f"peak memory {figures['peak_rss_mib']:.0f} MiB"
    )


def main() -> int:
    return compare(__doc__, __file__, WAYS, one_run, row)


if __name__ == "__main__":
    sys.exit(main())
