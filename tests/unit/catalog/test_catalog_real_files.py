"""The real catalogues in ../shared/data: all valid, convertible both ways, and schema-conformant."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_testdata import REAL_FILES, TOOLHIVE_FILES, UPSTREAM_FILES, Validate, load_json

from mcpreg.catalog import (
    PUBLISHER_PROVIDED_KEY,
    STACKLOK_NAMESPACE,
    Catalog,
    parse_catalog,
    validate_catalog,
)


def _parse(path: Path) -> Catalog:
    return parse_catalog(path.read_bytes())


def test_real_data_is_present() -> None:
    assert len(TOOLHIVE_FILES) >= 3
    assert len(UPSTREAM_FILES) >= 1


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_every_real_file_is_valid(path: Path) -> None:
    assert validate_catalog(path.read_bytes()) == []


@pytest.mark.parametrize("path", TOOLHIVE_FILES, ids=lambda p: p.name)
def test_toolhive_files_are_detected_and_counted(path: Path) -> None:
    raw = load_json(path)
    catalog = _parse(path)
    assert catalog.source_format == "toolhive"
    assert catalog.server_count == len(raw["servers"]) + len(raw.get("remote_servers", {}))
    assert catalog.toolhive_skipped == ()


@pytest.mark.parametrize("path", UPSTREAM_FILES, ids=lambda p: p.name)
def test_upstream_files_are_detected_and_counted(path: Path) -> None:
    raw = load_json(path)
    catalog = _parse(path)
    assert catalog.source_format == "upstream"
    assert catalog.entry_count == len(raw["data"]["servers"])


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_each_upstream_entry_validates_against_server_schema(
    path: Path, server_schema_problems: Validate
) -> None:
    for entry in _parse(path).upstream_view():
        assert server_schema_problems(entry["server"]) == [], entry["server"]["name"]


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_publisher_block_validates_against_publisher_schema(
    path: Path, publisher_schema_problems: Validate
) -> None:
    for entry in _parse(path).upstream_view():
        assert publisher_schema_problems(entry["server"]["_meta"][PUBLISHER_PROVIDED_KEY]) == []


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_toolhive_view_validates_against_legacy_schema(
    path: Path, toolhive_schema_problems: Validate
) -> None:
    assert toolhive_schema_problems(_parse(path).toolhive_view()) == []


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_wrapped_upstream_output_validates_against_registry_schema(
    path: Path, upstream_registry_schema_problems: Validate
) -> None:
    assert upstream_registry_schema_problems(_parse(path).upstream_document("wrapped")) == []


@pytest.mark.parametrize("path", TOOLHIVE_FILES, ids=lambda p: p.name)
def test_toolhive_round_trip_through_upstream_keeps_every_field(path: Path) -> None:
    raw = load_json(path)
    catalog = _parse(path)
    # Through the stored (canonical) form, which is upstream-only: every ToolHive field must come back.
    reread = parse_catalog(catalog.canonical_json())
    assert all(entry.toolhive is None for entry in reread.entries)
    view = reread.toolhive_view()
    assert view["servers"] == raw["servers"]
    assert view["remote_servers"] == raw.get("remote_servers", {})
    assert (view["version"], view["last_updated"], view.get("$schema")) == (
        raw["version"],
        raw["last_updated"],
        raw.get("$schema"),
    )
    # And through each of the upstream file shapes `mcpreg convert` writes.
    for shape in ("wrapped", "response", "list"):
        from_shape = parse_catalog(_dump(catalog.upstream_document(shape)))
        assert from_shape.toolhive_view()["servers"] == raw["servers"], shape
        assert from_shape.toolhive_view()["remote_servers"] == raw.get("remote_servers", {}), shape


def _dump(value: object) -> bytes:
    import json

    return json.dumps(value).encode()


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_canonical_form_reads_back_to_the_same_catalogue(path: Path) -> None:
    catalog = _parse(path)
    reread = parse_catalog(catalog.canonical_json())
    assert reread.content_hash == catalog.content_hash
    assert reread.source_format == catalog.source_format
    assert reread.upstream_view() == catalog.upstream_view()
    assert reread.toolhive_view() == catalog.toolhive_view()


def test_upstream_example_reads_like_toolhive_reads_it() -> None:
    # The upstream example was produced by ToolHive from its catalogue; reading it back must give the
    # ToolHive entries (the same servers appear in the registry of the same period).
    upstream = _parse(next(p for p in UPSTREAM_FILES if "example" in p.name)).toolhive_view()
    fetch = upstream["servers"]["fetch"]
    assert fetch["image"] == "ghcr.io/stackloklabs/gofetch/server:1.0.1"
    assert fetch["transport"] == "streamable-http"
    assert fetch["target_port"] == 8080
    assert fetch["tools"] == ["fetch"]
    assert fetch["tier"] == "Community"
    assert fetch["status"] == "Active"
    assert fetch["permissions"]["network"]["outbound"]["allow_port"] == [443]
    assert fetch["repository_url"] == "https://github.com/stackloklabs/gofetch"


def test_converted_real_entry_carries_what_toolhive_reads() -> None:
    path = next(p for p in TOOLHIVE_FILES if "2026-02-18" in p.name)
    raw = load_json(path)["servers"]["fetch"]
    entry = _parse(path).get("io.github.stacklok/fetch")
    assert entry is not None
    server = entry.server
    assert server["name"] == "io.github.stacklok/fetch"
    assert server["version"] == "1.0.3"  # from the image tag
    package = server["packages"][0]
    assert package == {
        "registryType": "oci",
        "identifier": raw["image"],
        "transport": {"type": "streamable-http", "url": "http://localhost:8080"},
    }
    block = server["_meta"][PUBLISHER_PROVIDED_KEY][STACKLOK_NAMESPACE][raw["image"]]
    for field in ("status", "tier", "tools", "tags", "metadata", "permissions", "provenance"):
        assert block[field] == raw[field]
    assert entry.tags == tuple(raw["tags"])
    assert entry.updated_at == raw["metadata"]["last_updated"]
