"""Large catalogues made from real entries, for storage tests and benchmarks.

`replicated_toolhive` repeats a real ToolHive catalogue's servers under new names until it has the
requested count. Copies are named `r<copy>-<name>` (not `<name>-<copy>`) on purpose: entries are
ordered by name, so this puts each copy of a server a whole catalogue apart, beyond gzip's 32 KiB
window. The result then compresses like a real catalogue of distinct servers (about 6:1), instead of
the 80:1 that adjacent near-identical copies would give, which would never exercise splitting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcpreg.catalog import Catalog


def replicated_toolhive(source: Mapping[str, Any], count: int) -> dict[str, Any]:
    """A ToolHive document with `count` servers copied from `source` (servers and remote_servers)."""
    pool = [("servers", name, entry) for name, entry in sorted((source.get("servers") or {}).items())]
    pool += [
        ("remote_servers", name, entry)
        for name, entry in sorted((source.get("remote_servers") or {}).items())
    ]
    if not pool:
        raise ValueError("the source catalogue has no servers to replicate")
    document: dict[str, Any] = {
        key: value for key, value in source.items() if key not in ("servers", "remote_servers", "groups")
    }
    document["servers"] = {}
    document["remote_servers"] = {}
    for index in range(count):
        section, name, entry = pool[index % len(pool)]
        new_name = f"r{index // len(pool):04d}-{name}"
        copy = dict(entry)
        if "name" in copy:
            copy["name"] = new_name
        document[section][new_name] = copy
    return document


def replicated_catalog(source_path: Path, count: int) -> Catalog:
    """The parsed `count`-server catalogue replicated from the ToolHive catalogue at `source_path`."""
    from mcpreg.catalog import parse_catalog

    document = replicated_toolhive(json.loads(source_path.read_bytes()), count)
    return parse_catalog(json.dumps(document).encode())


def replicated_catalog_json(source_path: Path, count: int) -> tuple[bytes, int]:
    """Canonical JSON of a `count`-server catalogue (what operators stored before the served document;
    storage itself holds any bytes), and its server count."""
    catalog = replicated_catalog(source_path, count)
    return catalog.canonical_json(), catalog.server_count


def replicated_served(source_path: Path, count: int) -> tuple[bytes, int]:
    """The served document (what the operator stores) of a `count`-server catalogue, and its server count."""
    from mcpreg.catalog.served import render_served

    catalog = replicated_catalog(source_path, count)
    return render_served(catalog), catalog.server_count


def numbered_toolhive(data_dir: Path, count: int) -> bytes:
    """A ToolHive registry of `count` servers (indented JSON): every server of the ToolHive files in
    `data_dir/toolhive`, repeated under numbered names (`<name>-<copy>`; copies stay adjacent, so this
    one compresses far better than `replicated_toolhive`'s: for parse and validation costs)."""
    containers: dict[str, Any] = {}
    remotes: dict[str, Any] = {}
    for path in sorted((data_dir / "toolhive").glob("*.json")):
        document = json.loads(path.read_bytes())
        containers.update(document.get("servers") or {})
        remotes.update(document.get("remote_servers") or {})
    pool = [("servers", name, entry) for name, entry in sorted(containers.items())]
    pool += [("remote_servers", name, entry) for name, entry in sorted(remotes.items())]
    out: dict[str, Any] = {
        "version": "1.0.0",
        "last_updated": "2026-02-18T00:24:11Z",
        "servers": {},
        "remote_servers": {},
    }
    for index in range(count):
        section, name, entry = pool[index % len(pool)]
        out[section][f"{name}-{index // len(pool)}"] = entry
    return json.dumps(out, indent=2).encode()
