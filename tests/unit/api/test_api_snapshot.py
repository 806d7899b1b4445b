"""The precomputed snapshot: order, views, versions newest first, timestamps, and no reference cycles."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest
from api_testdata import OFFICIAL, catalogue_bytes, edge_catalogue, entry

from mcpreg.storage import StoredCatalog
from mcpreg_api.snapshot import InvalidCatalog, Snapshot, build_snapshot


def snapshot_of(data: bytes) -> Snapshot:
    return build_snapshot(StoredCatalog.create(data, revision="r", server_count=0))


def test_entries_sorted_and_views() -> None:
    snapshot = snapshot_of(catalogue_bytes(edge_catalogue()))
    everything = snapshot.view(latest_only=False, with_deleted=True)
    assert list(everything.keys) == sorted(everything.keys)
    assert len(everything.entries) == 7 and snapshot.entry_count == 7 and snapshot.server_count == 5
    visible = snapshot.view(latest_only=False, with_deleted=False)
    assert all(not e.deleted for e in visible.entries) and len(visible.entries) == 5
    latest = snapshot.view(latest_only=True, with_deleted=False)
    assert [e.key for e in latest.entries] == [
        ("com.example/zeta", "3.1.4"),
        ("io.github.acme/versions", "0.1.0"),
        ("io.github.acme/weather", "1.0.0+build"),
        ("io.github.other/percent", "0.0.1"),
    ]
    latest_with_deleted = snapshot.view(latest_only=True, with_deleted=True)
    assert ("io.github.acme/gone", "1.0.0") in latest_with_deleted.keys


def test_versions_newest_first_latest_leading() -> None:
    snapshot = snapshot_of(catalogue_bytes(edge_catalogue()))
    index = snapshot.names["io.github.acme/weather"]
    assert [v.version for v in index.versions] == ["1.0.0+build", "2.0.0", "1.0.0"]
    assert index.latest is not None and index.latest.version == "1.0.0+build"
    assert set(index.by_version) == {"1.0.0", "1.0.0+build", "2.0.0"}


def test_bodies_are_the_served_json() -> None:
    snapshot = snapshot_of(catalogue_bytes(edge_catalogue()))
    body = json.loads(snapshot.names["io.github.other/percent"].versions[0].body)
    assert body["server"]["name"] == "io.github.other/percent"
    assert body["_meta"][OFFICIAL] == {
        "status": "active",
        "publishedAt": "2025-05-01T10:00:00.5Z",
        "updatedAt": "2025-05-01T10:00:00.5Z",
        "isLatest": True,
    }


def test_toolhive_document_and_its_gzip_are_ready(shared_data: Path) -> None:
    snapshot = snapshot_of((shared_data / "toolhive" / "registry-2026-02-18.json").read_bytes())
    document = json.loads(snapshot.toolhive.body)
    assert len(document["servers"]) + len(document["remote_servers"]) == 102
    assert snapshot.toolhive._gzip is not None  # compressed at build time, off the event loop


def test_invalid_data_raises_invalid_catalog() -> None:
    with pytest.raises(InvalidCatalog, match="servers"):
        snapshot_of(b'{"servers": [{"server": {"name": 1}}]}')


def test_a_replaced_snapshot_is_freed_without_the_cyclic_gc() -> None:
    """The loader freezes snapshots out of the cyclic GC; that is only safe while they hold no cycles."""
    snapshot = snapshot_of(catalogue_bytes([entry(f"io.github.acme/s{i}", "1.0.0") for i in range(50)]))
    rendered = snapshot.toolhive
    snapshot.cache.get_or_render("k", lambda: rendered)  # a used one, cache and all
    ref = weakref.ref(snapshot)
    gc.disable()
    try:
        del snapshot
        assert ref() is None
    finally:
        gc.enable()
