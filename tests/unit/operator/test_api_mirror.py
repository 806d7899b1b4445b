"""`source.type: api`'s pure logic: reading v0.1 pages, the walk's decisions, merging what an
`updated_since` walk reports (edits, new versions, deprecations, deletions), the assembled document
and its revision, the spec's defaults and the URL it asks."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from yarl import URL

from mcpreg.catalog.parse import parse_catalog
from mcpreg_operator.sources import api_mirror as mirror
from mcpreg_operator.sources.api import base_url, not_a_registry
from mcpreg_operator.sources.errors import SourceErrorKind
from mcpreg_operator.sources.factory import build_source
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.source_api import ApiSource, ApiVersions

LATEST, ALL = ApiVersions.LATEST, ApiVersions.ALL
NS = "com.example.unit"


def item(
    index: int,
    version: str = "1.0.0",
    *,
    status: str = "active",
    latest: bool | None = True,
    updated: str = "2026-01-01T00:00:00Z",
    description: str | None = None,
) -> dict[str, Any]:
    official: dict[str, Any] = {"status": status, "updatedAt": updated, "publishedAt": updated}
    if latest is not None:
        official["isLatest"] = latest
    return {
        "server": {
            "name": f"{NS}/server-{index}",
            "description": description or f"Server {index}",
            "version": version,
        },
        "_meta": {mirror.OFFICIAL_META: official},
    }


def entries_of(*items: dict[str, Any]) -> list[tuple[mirror.EntryKey, mirror.MirroredEntry]]:
    return [mirror.read_item(raw, f"servers[{i}]") for i, raw in enumerate(items)]


def page_body(*items: dict[str, Any], cursor: str | None = None) -> bytes:
    metadata: dict[str, Any] = {"count": len(items)}
    if cursor is not None:
        metadata["nextCursor"] = cursor
    return json.dumps({"servers": list(items), "metadata": metadata}).encode()


def versions_of(entries: dict[mirror.EntryKey, mirror.MirroredEntry]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, version in sorted(entries):
        out.setdefault(name.rsplit("/", 1)[1], []).append(version)
    return out


# --- pages ----------------------------------------------------------------------------------------


def test_a_page_gives_its_entries_and_cursor() -> None:
    page = mirror.read_page(page_body(item(1), item(2, status="deprecated"), cursor="c1"))
    assert [key for key, _ in page.entries] == [(f"{NS}/server-1", "1.0.0"), (f"{NS}/server-2", "1.0.0")]
    assert page.next_cursor == "c1"
    first = page.entries[0][1]
    assert (first.is_latest, first.deleted, first.updated_text) == (True, False, "2026-01-01T00:00:00Z")
    # The entry is kept as canonical JSON of the whole item, _meta included.
    assert json.loads(first.body) == item(1)
    # An empty cursor and a missing metadata both end the walk.
    assert mirror.read_page(page_body(item(1), cursor="")).next_cursor is None
    assert mirror.read_page(b'{"servers": []}') == mirror.Page([], None)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<html>not found</html>", "the answer is not JSON (it starts with '<html>not found</html>')"),
        (b"[1, 2]", "the answer is a JSON list, not an object"),
        (b'{"version": "1.0.0", "servers": {"a": {}}}', "the answer has no 'servers' array"),
        (b'{"servers": [], "metadata": {"nextCursor": 7}}', "the answer's 'metadata' is not an object"),
        (b'{"servers": [{"server": {"name": "x"}}]}', "servers[0] is not a server response (server.version"),
        (b'{"servers": [{"name": "x", "version": "1"}]}', "servers[0] is not a server response (server:"),
    ],
)
def test_what_is_not_a_v01_list_is_named(body: bytes, detail: str) -> None:
    with pytest.raises(mirror.NotARegistryAnswer) as caught:
        mirror.read_page(body)
    assert str(caught.value).startswith(detail)


def test_the_error_names_the_url_as_not_a_registry() -> None:
    error = not_a_registry(URL("https://files.example.com/catalog"), "the answer is not JSON")
    assert error.kind is SourceErrorKind.INVALID_REFERENCE
    assert error.message == (
        "https://files.example.com/catalog is not an MCP Registry API v0.1 endpoint: the answer is not JSON"
    )


def test_a_detail_answer_is_read_like_a_list_item() -> None:
    key, entry = mirror.read_detail(json.dumps(item(3, "2.0.0", status="deprecated")).encode())
    assert key == (f"{NS}/server-3", "2.0.0")
    assert not entry.deleted


def test_a_registry_without_official_metadata_is_still_read() -> None:
    (key, entry), *_ = entries_of({"server": {"name": "x/y", "version": "1"}})
    assert key == ("x/y", "1")
    assert (entry.updated_at, entry.updated_text, entry.is_latest, entry.deleted) == (None, None, None, False)
    # A timestamp that is not RFC 3339 with a zone is no mirror.watermark.
    odd = entries_of(item(1, updated="yesterday"), item(2, updated="2026-01-01T00:00:00"))
    assert [entry.updated_text for _, entry in odd] == [None, None]


# --- the walk ---------------------------------------------------------------------------------------


def test_the_walk_follows_cursors_and_refuses_one_that_repeats() -> None:
    seen: set[str] = set()
    assert mirror.next_cursor(mirror.Page([], "a"), seen) == "a"
    assert mirror.next_cursor(mirror.Page([], "b"), seen) == "b"
    assert mirror.next_cursor(mirror.Page([], None), seen) is None
    with pytest.raises(mirror.WalkError, match="gave the cursor 'a' twice"):
        mirror.next_cursor(mirror.Page([], "a"), seen)


def test_queries_of_a_full_walk_and_a_refresh() -> None:
    assert mirror.list_query(LATEST, cursor=None, since=None) == {"limit": "100", "version": "latest"}
    assert mirror.list_query(ALL, cursor="c", since=None) == {"limit": "100", "cursor": "c"}
    # A refresh asks for every version changed, whatever the mode: a deleted latest loses its flag.
    for versions in (LATEST, ALL):
        assert mirror.list_query(versions, cursor=None, since="2026-01-01T00:00:00.5Z") == {
            "limit": "100",
            "updated_since": "2026-01-01T00:00:00.5Z",
        }


def test_base_url_accepts_the_root_or_the_v01_prefix() -> None:
    for url in ("https://r.example.com", "https://r.example.com/", "https://r.example.com/v0.1"):
        assert str(base_url(url)) == "https://r.example.com"
    assert str(base_url("https://r.example.com/mirror/v0.1/")) == "https://r.example.com/mirror"


# --- merging ----------------------------------------------------------------------------------------


def test_a_full_walk_leaves_deleted_entries_out_and_keeps_the_flagged_latest() -> None:
    items = entries_of(
        item(1),
        item(2, status="deleted"),
        item(3, status="deprecated"),
        # A registry that ignored version=latest: the flagged version wins.
        item(4, "1.0.0", latest=False),
        item(4, "2.0.0", latest=True),
        # No flag at all: every version stays.
        item(5, "1.0.0", latest=None),
        item(5, "1.1.0", latest=None),
    )
    latest = mirror.full_walk_entries(items, LATEST)
    assert versions_of(latest) == {
        "server-1": ["1.0.0"],
        "server-3": ["1.0.0"],
        "server-4": ["2.0.0"],
        "server-5": ["1.0.0", "1.1.0"],
    }
    assert versions_of(mirror.full_walk_entries(items, ALL))["server-4"] == ["1.0.0", "2.0.0"]


def test_latest_mode_follows_edits_new_versions_deprecations_and_deletions() -> None:
    entries = mirror.full_walk_entries(entries_of(item(1), item(2), item(3), item(4), item(5)), LATEST)
    changes = entries_of(
        item(1, description="Edited upstream"),  # an edit in place
        item(2, "2.0.0"),  # a new latest version
        item(3, status="deprecated"),  # deprecated: kept, marked
        item(4, status="deleted", latest=False),  # the only version deleted
        item(5, "0.9.0", latest=False),  # an older version published: not the latest
        item(6),  # a new server
    )
    lookups = mirror.apply_changes(entries, changes, LATEST)
    assert versions_of(entries) == {
        "server-1": ["1.0.0"],
        "server-2": ["2.0.0"],
        "server-3": ["1.0.0"],
        "server-5": ["1.0.0"],
        "server-6": ["1.0.0"],
    }
    assert json.loads(entries[(f"{NS}/server-1", "1.0.0")].body)["server"]["description"] == "Edited upstream"
    deprecated = json.loads(entries[(f"{NS}/server-3", "1.0.0")].body)
    assert deprecated["_meta"][mirror.OFFICIAL_META]["status"] == "deprecated"
    # server-4's mirrored latest went away: the registry may have an older one as latest now.
    assert lookups == {f"{NS}/server-4"}
    mirror.apply_lookup(entries, None)  # it has none
    assert f"{NS}/server-4" not in {name for name, _ in entries}


def test_a_deleted_latest_is_replaced_by_what_the_look_up_finds() -> None:
    entries = mirror.full_walk_entries(entries_of(item(1, "2.0.0")), LATEST)
    lookups = mirror.apply_changes(
        entries, entries_of(item(1, "2.0.0", status="deleted", latest=False)), LATEST
    )
    assert lookups == {f"{NS}/server-1"}
    (found,) = entries_of(item(1, "1.0.0"))
    mirror.apply_lookup(entries, found)
    assert versions_of(entries) == {"server-1": ["1.0.0"]}
    # A look-up answered with a deleted version adds nothing.
    mirror.apply_lookup(entries, entries_of(item(7, status="deleted"))[0])
    assert versions_of(entries) == {"server-1": ["1.0.0"]}


def test_no_look_up_when_the_same_refresh_reports_the_successor() -> None:
    entries = mirror.full_walk_entries(entries_of(item(1, "1.0.0")), LATEST)
    changes = entries_of(item(1, "1.0.0", status="deleted", latest=False), item(1, "1.1.0"))
    assert mirror.apply_changes(entries, changes, LATEST) == set()
    assert versions_of(entries) == {"server-1": ["1.1.0"]}
    # A version deleted that the mirror does not hold (an older one) changes nothing.
    assert (
        mirror.apply_changes(entries, entries_of(item(1, "0.1.0", status="deleted", latest=False)), LATEST)
        == set()
    )
    assert versions_of(entries) == {"server-1": ["1.1.0"]}


def test_all_mode_keeps_every_version_and_drops_deleted_ones() -> None:
    entries = mirror.full_walk_entries(entries_of(item(1, "1.0.0", latest=False), item(1, "2.0.0")), ALL)
    changes = entries_of(item(1, "3.0.0"), item(1, "1.0.0", status="deleted", latest=False))
    assert mirror.apply_changes(entries, changes, ALL) == set()
    assert versions_of(entries) == {"server-1": ["2.0.0", "3.0.0"]}


def test_the_watermark_is_the_latest_update_seen_deleted_entries_included() -> None:
    items = entries_of(
        item(1, updated="2026-01-01T00:00:00.250Z"),
        item(2, status="deleted", updated="2026-01-02T10:00:00.123456Z"),
        item(3, updated="2026-01-02T09:00:00Z"),
    )
    mark = mirror.watermark(None, items)
    assert mark is not None and mark[1] == "2026-01-02T10:00:00.123456Z"  # sent back verbatim
    assert mirror.watermark(mark, entries_of(item(4, updated="2025-01-01T00:00:00Z"))) == mark
    assert mirror.watermark(None, entries_of({"server": {"name": "x/y", "version": "1"}})) is None


# --- the document -----------------------------------------------------------------------------------


def test_the_document_and_its_revision_do_not_depend_on_page_order() -> None:
    raw = [item(i, status="deprecated" if i == 3 else "active") for i in range(20)]
    shuffled = list(raw)
    random.Random(7).shuffle(shuffled)
    first = mirror.assemble(mirror.full_walk_entries(entries_of(*raw), LATEST))
    second = mirror.assemble(mirror.full_walk_entries(entries_of(*shuffled), LATEST))
    assert first == second
    assert mirror.revision_of(first) == mirror.revision_of(second)
    assert mirror.revision_of(first).startswith("sha256:") and len(mirror.revision_of(first)) == 71
    changed = mirror.assemble(
        mirror.full_walk_entries(entries_of(*raw[:-1], item(19, description="x")), LATEST)
    )
    assert mirror.revision_of(changed) != mirror.revision_of(first)


def test_the_document_is_an_upstream_list_the_catalogue_reads() -> None:
    entries = mirror.full_walk_entries(
        entries_of(*(item(i) for i in range(5)), item(9, status="deprecated")), LATEST
    )
    document = mirror.assemble(entries)
    assert json.loads(document)["metadata"] == {"count": 6}
    catalog = parse_catalog(document)
    assert catalog.server_count == 6
    deprecated = catalog.get(f"{NS}/server-9")
    assert deprecated is not None and deprecated.status == "deprecated"
    assert parse_catalog(mirror.assemble({})).server_count == 0


# --- the spec -----------------------------------------------------------------------------------------


def test_the_spec_defaults_and_the_source_it_builds() -> None:
    api = ApiSource.model_validate({"url": "https://registry.modelcontextprotocol.io"})
    assert (api.versions, api.max_pages, api.timeout_seconds, api.full_resync_seconds) == (
        LATEST,
        1000,
        300,
        3600,
    )
    spec = MCPRegistrySpec.model_validate(
        {"source": {"type": "api", "api": {"url": "https://registry.example.com/v0.1", "versions": "all"}}}
    )
    source = build_source(spec, "ns", kube=None, git=None, executor=None, registry="mirror")  # type: ignore[arg-type]
    assert source.describe() == "MCP Registry API https://registry.example.com"
