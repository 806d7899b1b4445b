"""The official MCP Registry's own server as a test peer: built from its pinned module, run over a
throw-away PostgreSQL, seeded through its seed import, changed through its publish, edit and status
API. These tests prove the peer behaves as the upstream the API mirror is written against: every
seeded entry served, cursor pagination over thousands, `updated_since`, and changes made upstream
showing up (a new version, an edit, a deprecation, a deletion)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from fixtures.official_registry import SEED_COUNT, SEED_NAMESPACE, OfficialRegistryFactory
from mcpreg.catalog.parse import parse_catalog
from mcpreg_dev.official_registry import (
    OFFICIAL_META,
    OfficialRegistryError,
    OfficialRegistryPeer,
    generated_server,
    generated_servers,
)


def _official(entry: dict[str, Any]) -> dict[str, Any]:
    return dict(entry["_meta"][OFFICIAL_META])


def _key(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["server"]["name"], entry["server"]["version"]


def _in(namespace: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["server"]["name"].startswith(namespace + "/")]


def _stored(peer: OfficialRegistryPeer, name: str, version: str) -> dict[str, Any]:
    path = f"/servers/{urllib.parse.quote(name, safe='')}/versions/{urllib.parse.quote(version, safe='')}"
    return dict(peer.request("GET", path))


def _published(peer: OfficialRegistryPeer, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for entry in entries:
        peer.publish(entry)
    return entries


def test_serves_the_seeded_entries(official_registry: OfficialRegistryPeer) -> None:
    entries, _ = official_registry.walk(limit=100, version="latest")
    seeded = _in(SEED_NAMESPACE, entries)
    assert sorted(e["server"]["name"] for e in seeded) == [
        f"{SEED_NAMESPACE}/server-{i:05d}" for i in range(SEED_COUNT)
    ]
    by_name = {e["server"]["name"]: e for e in seeded}
    # The registry serves what was seeded, field for field, under its own official metadata.
    for index in (0, 1, SEED_COUNT - 1):
        entry = by_name[f"{SEED_NAMESPACE}/server-{index:05d}"]
        assert entry["server"] == generated_server(index)
        official = _official(entry)
        assert official["status"] == "active"
        assert official["isLatest"] is True
    assert "remotes" in by_name[f"{SEED_NAMESPACE}/server-00003"]["server"]
    # What it serves, as one upstream-format document, is a catalogue the product accepts.
    catalog = parse_catalog(json.dumps({"servers": seeded}).encode())
    assert catalog.server_count == SEED_COUNT
    first = catalog.get(f"{SEED_NAMESPACE}/server-00000")
    assert first is not None
    assert first.updated_at == _official(by_name[first.name])["updatedAt"]


def test_pagination_walks_every_entry_once(official_registry: OfficialRegistryPeer) -> None:
    pages: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = official_registry.list_page(limit=100, **({"cursor": cursor} if cursor else {}))
        pages.append(page)
        cursor = page["metadata"].get("nextCursor") or ""
        if not cursor:
            break
        assert len(pages) < 1000, "the cursor never ran out"
    entries = [e for page in pages for e in page["servers"]]
    assert len(entries) >= SEED_COUNT
    # Every full page carries a cursor, so a walk ends on a page that is not full: an empty one when
    # the total is a multiple of the page size (as SEED_COUNT alone is).
    assert len(pages) == len(entries) // 100 + 1
    assert all(len(page["servers"]) == 100 for page in pages[:-1])
    assert len(pages[-1]["servers"]) < 100
    assert all(page["metadata"]["count"] == len(page["servers"]) for page in pages)
    keys = [_key(e) for e in entries]
    assert len(set(keys)) == len(keys), "an entry was served on two pages"
    assert len(_in(SEED_NAMESPACE, entries)) == SEED_COUNT
    # A smaller page size walks to the same entries.
    small, small_pages = official_registry.walk(limit=37)
    assert sorted(_key(e) for e in small) == sorted(keys)
    assert small_pages == len(keys) // 37 + 1


def test_updated_since_reports_only_later_changes(
    official_registry: OfficialRegistryPeer, official_namespace: str
) -> None:
    peer = official_registry
    base = _published(peer, generated_servers(4, namespace=official_namespace))
    last = base[-1]
    mark = _official(_stored(peer, last["name"], last["version"]))["updatedAt"]
    assert _in(official_namespace, peer.walk(updated_since=mark)[0]) == []

    newer = generated_server(0, namespace=official_namespace, version="1.1.0")
    peer.publish(newer)
    edited = dict(base[1], description="Edited upstream")
    peer.edit(edited)
    peer.deprecate(base[2]["name"], "1.0.0", "superseded")
    peer.delete(base[3]["name"], "1.0.0")
    added = generated_server(9, namespace=official_namespace)
    peer.publish(added)

    # Paged with a small limit, so the cursor of an updated_since walk is exercised too.
    changed, pages = peer.walk(updated_since=mark, limit=2)
    assert pages >= 3
    mine = {_key(e): e for e in _in(official_namespace, changed)}
    assert set(mine) == {
        (newer["name"], "1.1.0"),
        (edited["name"], "1.0.0"),
        (base[2]["name"], "1.0.0"),
        (base[3]["name"], "1.0.0"),
        (added["name"], "1.0.0"),
    }
    assert mine[(edited["name"], "1.0.0")]["server"]["description"] == "Edited upstream"
    assert _official(mine[(base[2]["name"], "1.0.0")])["status"] == "deprecated"
    # updated_since always includes deleted versions, so a mirror can drop them.
    assert _official(mine[(base[3]["name"], "1.0.0")])["status"] == "deleted"
    assert not _in(SEED_NAMESPACE, changed), "seeded entries were reported as changed"


def test_upstream_changes_show_in_the_listing(
    official_registry: OfficialRegistryPeer, official_namespace: str
) -> None:
    peer = official_registry
    base = _published(peer, generated_servers(3, namespace=official_namespace))
    peer.publish(generated_server(0, namespace=official_namespace, version="2.0.0"))
    peer.deprecate(base[1]["name"], "1.0.0", "use server-00000")
    peer.delete(base[2]["name"], "1.0.0")

    latest = {e["server"]["name"]: e for e in _in(official_namespace, peer.walk(version="latest")[0])}
    assert set(latest) == {base[0]["name"], base[1]["name"]}, "a deleted server is still listed"
    assert latest[base[0]["name"]]["server"]["version"] == "2.0.0"
    deprecated = _official(latest[base[1]["name"]])
    assert (deprecated["status"], deprecated.get("statusMessage")) == ("deprecated", "use server-00000")

    every_version = sorted(_key(e) for e in _in(official_namespace, peer.walk()[0]))
    assert every_version == [
        (base[0]["name"], "1.0.0"),
        (base[0]["name"], "2.0.0"),
        (base[1]["name"], "1.0.0"),
    ]
    with_deleted = {_key(e) for e in _in(official_namespace, peer.walk(include_deleted="true")[0])}
    assert (base[2]["name"], "1.0.0") in with_deleted


def test_changes_need_a_registry_token(
    official_registry: OfficialRegistryPeer, official_namespace: str
) -> None:
    entry = generated_server(0, namespace=official_namespace)
    with pytest.raises(OfficialRegistryError, match="HTTP 401"):
        official_registry.request("POST", "/publish", entry, token="not-a-registry-token")
    assert _in(official_namespace, official_registry.walk()[0]) == []


def test_a_private_peer_keeps_its_data_across_a_restart(
    official_registry_factory: OfficialRegistryFactory,
) -> None:
    peer = official_registry_factory(seed=generated_servers(5, namespace="com.example.private"))
    assert len(peer.walk()[0]) == 5
    peer.stop()
    assert not peer.ready()
    peer.start()  # same port, same database, no second seed
    names = sorted(e["server"]["name"] for e in peer.walk()[0])
    assert names == [f"com.example.private/server-{i:05d}" for i in range(5)]
