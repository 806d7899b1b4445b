"""The served document changes nothing a client sees: same bodies, same pages, same ToolHive document.

Each catalogue is served twice through the real app: the way the API worked before the served
document (storage held canonical catalogue JSON; every replica parsed and validated it and rendered
each body - reproduced below, `legacy_build`, from the code it replaces), and the way it works now (the
operator renders the served document once; the API reads it). Every list page (each query shape,
followed cursor by cursor), every server, every version, the version lists and the ToolHive document
must come back the same: the ToolHive document byte for byte, every JSON answer as the same JSON value
(arrays in the same order), with each entry's keys now sorted (its canonical form, whose hash is its
digest: `mcpreg.catalog.provenance`). Only ETags differ: they derive from the stored bytes' hash.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from api_testdata import REAL_CATALOGUES, OneGeneration, catalogue_bytes, edge_catalogue

from mcpreg.catalog import OFFICIAL_META_KEY, Catalog, CatalogEntry, compile_filter, parse_catalog
from mcpreg.catalog.served import ServedEntry, parse_time, render_served
from mcpreg.storage import StoredCatalog
from mcpreg_api import __version__
from mcpreg_api.app import LOADER, STATE, create_app
from mcpreg_api.config import AccessLogConfig, HttpConfig
from mcpreg_api.rendering import Rendered, dump_json, make_etag
from mcpreg_api.snapshot import Snapshot
from mcpreg_dev.samples import replicated_toolhive

# --- the API before the served document (its snapshot.prepare / _entry_view, verbatim in substance) ---


def _legacy_format_time(moment: Any) -> str:
    text = str(moment.strftime("%Y-%m-%dT%H:%M:%S"))
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _legacy_entry_view(entry: CatalogEntry) -> ServedEntry:
    published = parse_time(entry.published_at)
    updated = parse_time(entry.updated_at)
    official: dict[str, Any] = {"status": entry.status}
    if published is not None:
        official["publishedAt"] = _legacy_format_time(published)
    if updated is not None:
        official["updatedAt"] = _legacy_format_time(updated)
    official["isLatest"] = entry.is_latest
    meta: dict[str, Any] = dict(entry.response_meta) if entry.response_meta else {}
    meta[OFFICIAL_META_KEY] = official
    server = entry.server
    haystack = "\x1f".join(
        value if isinstance(value, str) else ""
        for value in (entry.name, server.get("title"), server.get("description"))
    ).casefold()
    return ServedEntry(
        key=(entry.name, entry.version),
        status=entry.status,
        is_latest=entry.is_latest,
        updated_at=updated,
        published_at=published,
        haystack=haystack,
        body=dump_json({"server": server, "_meta": meta}),
    )


async def legacy_build(stored: StoredCatalog) -> Snapshot:
    """What the API built from stored canonical JSON: parse, validate, render each body and the document."""
    catalog = parse_catalog(stored.data, format="auto")
    views: dict[tuple[str, str], ServedEntry] = {}
    for entry in catalog.entries:
        views.setdefault((entry.name, entry.version), _legacy_entry_view(entry))
    toolhive = Rendered(dump_json(catalog.toolhive_view()), make_etag(f"{__version__}:x", "toolhive"))
    return Snapshot(
        entries=tuple(views[key] for key in sorted(views)),
        toolhive=toolhive,
        content_hash=stored.content_hash,
        revision=stored.revision,
        stored_at=stored.stored_at,
        server_count=catalog.server_count,
        build_seconds=0.0,
    )


# --- serving a fixed generation -----------------------------------------------------------------------


Client = TestClient[Any, Any]
Start = Callable[..., Awaitable[Client]]


@pytest_asyncio.fixture(loop_scope="function")
async def start() -> AsyncIterator[Start]:
    clients: list[Client] = []

    async def serve(stored: StoredCatalog, **options: Any) -> Client:
        app = create_app(
            OneGeneration(stored), config=HttpConfig(access_log=AccessLogConfig(enabled=False)), **options
        )
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        await app[LOADER].wait_loaded()
        return client

    yield serve
    for client in clients:
        await client.close()


async def fetch(client: Client, url: str) -> tuple[int, bytes]:
    response = await client.get(url)
    return response.status, await response.read()


async def every_response(client: Client, catalog: Catalog) -> dict[str, tuple[int, bytes]]:
    """URL → (status, body) for every page of every list query, every server, version and document."""
    seen: dict[str, tuple[int, bytes]] = {}
    queries = [
        "limit=7",
        "limit=100&version=latest",
        "limit=13&include_deleted=true",
        "limit=50&search=e",
        "limit=9&search=GIT",
        "limit=11&updated_since=2025-06-01T00:00:00Z",
        "limit=30&version=1.0.0",
    ]
    for query in queries:
        url = f"/v0.1/servers?{query}"
        while True:
            seen[url] = await fetch(client, url)
            cursor = json.loads(seen[url][1])["metadata"].get("nextCursor")
            if cursor is None:
                break
            url = f"/v0.1/servers?{query}&cursor={quote(cursor)}"
    for name in catalog.names():
        path = f"/v0.1/servers/{quote(name, safe='')}"
        for suffix in ("", "/versions", "/versions?include_deleted=true", "?include_deleted=true"):
            seen[path + suffix] = await fetch(client, path + suffix)
        for entry in catalog.versions(name):
            url = f"{path}/versions/{quote(entry.version, safe='')}?include_deleted=true"
            seen[url] = await fetch(client, url)
    seen["/v0/servers?limit=5"] = await fetch(client, "/v0/servers?limit=5")
    seen["/api/v1/registry"] = await fetch(client, "/api/v1/registry")
    return seen


def same_answer(url: str, got: tuple[int, bytes], expected: tuple[int, bytes]) -> bool:
    """The same status and body: the ToolHive document's bytes, any other answer's JSON value."""
    if got[0] != expected[0]:
        return False
    if url == "/api/v1/registry":
        return got[1] == expected[1]
    return bool(json.loads(got[1]) == json.loads(expected[1]))


def toolhive_gzip(client: Client) -> bytes:
    snapshot = client.app[STATE].snapshot
    assert snapshot is not None
    return snapshot.toolhive.gzipped()


async def assert_served_alike(start: Start, catalog: Catalog) -> None:
    before = await start(StoredCatalog.from_catalog(catalog, revision="r"), build=legacy_build)
    now = await start(StoredCatalog.create(render_served(catalog), revision="r", server_count=0))
    # The gzip the operator made is the one the API used to make (what clients that accept gzip get).
    assert toolhive_gzip(now) == toolhive_gzip(before)
    expected = await every_response(before, catalog)
    got = await every_response(now, catalog)
    assert got.keys() == expected.keys()
    different = [url for url in expected if not same_answer(url, got[url], expected[url])]
    assert not different, f"{len(different)} of {len(expected)} responses differ, first {different[0]}"
    assert expected["/api/v1/registry"][0] == 200
    assert sum(status == 200 for status, _ in expected.values()) > len(catalog.names())


# --- the catalogues -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_CATALOGUES)
async def test_real_catalogues_are_served_alike(start: Start, shared_data: Path, name: str) -> None:
    await assert_served_alike(start, parse_catalog((shared_data / name).read_bytes()))


async def test_a_filtered_catalogue_is_served_alike(start: Start, shared_data: Path) -> None:
    catalog = parse_catalog((shared_data / REAL_CATALOGUES[2]).read_bytes())
    kept = catalog.filtered(compile_filter({"names": {"include": ["fetch", "git*"]}}))
    assert 0 < kept.server_count < catalog.server_count
    await assert_served_alike(start, kept)


async def test_versions_deleted_entries_and_odd_times_are_served_alike(start: Start) -> None:
    edge = edge_catalogue()
    edge[0]["_meta"]["com.example/extra"] = {"z": 1, "a": [{"y": 2, "b": 3}]}  # other _meta keys, unsorted
    edge[0]["server"] = dict(reversed(list(edge[0]["server"].items())))  # key order of the source
    await assert_served_alike(start, parse_catalog(catalogue_bytes(edge)))


async def test_groups_and_registry_extras_are_served_alike(start: Start, shared_data: Path) -> None:
    document = json.loads((shared_data / REAL_CATALOGUES[2]).read_bytes())
    names = sorted(document["servers"])[:4]
    remotes = sorted(document["remote_servers"])[:2]
    document["groups"] = [
        {
            "name": "starter",
            "description": "A few to begin with",
            "servers": {name: copy.deepcopy(document["servers"][name]) for name in names},
            "remote_servers": {name: copy.deepcopy(document["remote_servers"][name]) for name in remotes},
        },
        {"name": "empty", "description": "Nothing yet", "servers": {}},
    ]
    document["zz_note"] = {"kept": True, "by": ["the", "ToolHive", "view"]}
    catalog = parse_catalog(json.dumps(document).encode())
    assert catalog.groups and catalog.registry.extra
    await assert_served_alike(start, catalog)


async def test_a_generated_catalogue_with_the_keys_of_its_source_reordered(
    start: Start, shared_data: Path
) -> None:
    document = replicated_toolhive(json.loads((shared_data / REAL_CATALOGUES[2]).read_bytes()), 1500)
    for section in ("servers", "remote_servers"):
        document[section] = {
            key: dict(reversed(list(server.items()))) for key, server in reversed(document[section].items())
        }
    reordered = parse_catalog(json.dumps(document).encode())
    await assert_served_alike(start, reordered)
    # The served bytes do not depend on the source's key order: same content, same hash.
    in_order = parse_catalog(
        json.dumps(
            replicated_toolhive(json.loads((shared_data / REAL_CATALOGUES[2]).read_bytes()), 1500)
        ).encode()
    )
    assert render_served(reordered) == render_served(in_order)


async def test_the_served_document_is_read_in_a_fraction_of_the_parse(shared_data: Path) -> None:
    """The point of it all: building from a served document costs far less than parsing the catalogue."""
    from mcpreg_api.snapshot import build_snapshot

    catalog = parse_catalog(
        json.dumps(
            replicated_toolhive(json.loads((shared_data / REAL_CATALOGUES[2]).read_bytes()), 2000)
        ).encode()
    )
    served = StoredCatalog.create(render_served(catalog), revision="r", server_count=0)
    legacy = StoredCatalog.from_catalog(catalog, revision="r")
    reading = float("inf")
    for _ in range(3):  # the best of three: a busy machine only ever makes a run slower
        started = time.perf_counter()
        build_snapshot(served)
        reading = min(reading, time.perf_counter() - started)
    started = time.perf_counter()
    build_snapshot(legacy)
    parsing = time.perf_counter() - started
    assert reading * 3 < parsing, (reading, parsing)
