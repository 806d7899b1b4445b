"""Legacy shapes reintroduced into the real ToolHive snapshots: one test per shape and per severity.

Each test takes a real published catalogue (../shared/data/toolhive), puts back one shape that older
catalogues carried, and checks what `read_catalog` serves, what it says, and that `parse_catalog`
raises for errors only. The catalogues are built at test time; nothing of the shared data is copied.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from catalog_testdata import SHARED_DATA, encode

from mcpreg.catalog import CatalogError, CatalogIssue, CatalogReading, parse_catalog, read_catalog

OLDEST = SHARED_DATA / "toolhive" / "registry-2025-07-29.json"  # container servers only
WITH_REMOTES = SHARED_DATA / "toolhive" / "registry-2025-12-03.json"
NEWEST = SHARED_DATA / "toolhive" / "registry-2026-02-18.json"
SERVER = "atlassian"  # a real entry with network permissions and metadata in every snapshot


def _snapshot(path: Any = OLDEST) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_bytes())
    return document


def _only_warning(reading: CatalogReading) -> CatalogIssue:
    assert reading.skipped == ()
    (warning,) = reading.warnings
    assert warning.severity == "warning"
    return warning


def _served(reading: CatalogReading, name: str = SERVER) -> dict[str, Any]:
    servers = reading.catalog.toolhive_view()["servers"]
    assert isinstance(servers[name], dict)
    return dict(servers[name])


def _assert_served_in_full(document: dict[str, Any], reading: CatalogReading) -> None:
    assert reading.catalog.server_count == len(document["servers"]) + len(document.get("remote_servers", {}))
    assert reading.total_entries == reading.catalog.server_count


# --- warnings: served after normalisation -------------------------------------------------------------


def test_missing_tier_is_defaulted() -> None:
    document = _snapshot()
    del document["servers"][SERVER]["tier"]
    reading = read_catalog(encode(document))
    warning = _only_warning(reading)
    assert (warning.path, warning.message) == (
        "servers.atlassian.tier",
        "is missing; defaulted to 'Community'",
    )
    assert _served(reading)["tier"] == "Community"
    _assert_served_in_full(document, reading)
    parse_catalog(encode(document))  # warnings never raise


def test_missing_status_is_defaulted() -> None:
    document = _snapshot()
    del document["servers"][SERVER]["status"]
    reading = read_catalog(encode(document))
    warning = _only_warning(reading)
    assert (warning.path, warning.message) == (
        "servers.atlassian.status",
        "is missing; defaulted to 'Active'",
    )
    assert _served(reading)["status"] == "Active"
    _assert_served_in_full(document, reading)


def test_allow_transport_is_ignored() -> None:
    document = _snapshot()
    document["servers"][SERVER]["permissions"]["network"]["outbound"]["allow_transport"] = ["tcp", "udp"]
    reading = read_catalog(encode(document))
    warning = _only_warning(reading)
    assert warning.path == "servers.atlassian.permissions.network.outbound.allow_transport"
    assert "older ToolHive catalogues" in warning.message
    served_outbound = _served(reading)["permissions"]["network"]["outbound"]
    assert "allow_transport" not in served_outbound
    assert (
        served_outbound["allow_host"]
        == _snapshot()["servers"][SERVER]["permissions"]["network"]["outbound"]["allow_host"]
    )
    parse_catalog(encode(document))


def test_an_unknown_field_is_ignored() -> None:
    document = _snapshot()
    document["servers"][SERVER]["homepage"] = "https://example.com"
    warning = _only_warning(read_catalog(encode(document)))
    assert warning.path == "servers.atlassian.homepage"
    assert "ignores unknown fields" in warning.message


def test_a_zoneless_entry_timestamp_is_normalised() -> None:
    document = _snapshot()
    document["servers"][SERVER]["metadata"]["last_updated"] = "2025-03-25 16:58:54"
    reading = read_catalog(encode(document))
    warning = _only_warning(reading)
    assert warning.path == "servers.atlassian.metadata.last_updated"
    assert "normalised to '2025-03-25T16:58:54Z'" in warning.message
    assert _served(reading)["metadata"]["last_updated"] == "2025-03-25T16:58:54Z"
    (entry,) = [e for e in reading.catalog.entries if e.name.endswith("/atlassian")]
    assert entry.updated_at == "2025-03-25T16:58:54Z"


def test_a_zoneless_registry_timestamp_is_normalised() -> None:
    document = _snapshot()
    document["last_updated"] = "2025-03-25 16:58:54"
    reading = read_catalog(encode(document))
    warning = _only_warning(reading)
    assert (warning.path, warning.entry) == ("last_updated", None)
    assert reading.catalog.toolhive_view()["last_updated"] == "2025-03-25T16:58:54Z"


def test_a_wildcard_host_is_kept() -> None:
    document = _snapshot()
    outbound = document["servers"][SERVER]["permissions"]["network"]["outbound"]
    outbound["allow_host"] = [*outbound["allow_host"], "*.databases.example.io"]
    reading = read_catalog(encode(document))
    warning = _only_warning(reading)
    assert (
        warning.path
        == f"servers.atlassian.permissions.network.outbound.allow_host[{len(outbound['allow_host']) - 1}]"
    )
    assert "kept as written" in warning.message
    assert (
        _served(reading)["permissions"]["network"]["outbound"]["allow_host"][-1] == "*.databases.example.io"
    )


def test_a_relative_read_path_is_kept() -> None:
    document = _snapshot()
    document["servers"][SERVER]["permissions"]["read"] = [".cursor/rules"]
    reading = read_catalog(encode(document))
    warning = _only_warning(reading)
    assert warning.path == "servers.atlassian.permissions.read[0]"
    assert _served(reading)["permissions"]["read"] == [".cursor/rules"]


def test_a_repeated_tool_is_dropped() -> None:
    document = _snapshot()
    tools = document["servers"][SERVER]["tools"]
    document["servers"][SERVER]["tools"] = [*tools, tools[0]]
    reading = read_catalog(encode(document))
    warning = _only_warning(reading)
    assert warning.path == "servers.atlassian.tools"
    assert f"duplicate tool name(s) {tools[0]!r} dropped" == warning.message
    assert _served(reading)["tools"] == tools


def test_an_empty_description_is_defaulted() -> None:
    document = _snapshot()
    document["servers"][SERVER]["description"] = ""
    reading = read_catalog(encode(document))
    warning = _only_warning(reading)
    assert warning.path == "servers.atlassian.description"
    assert _served(reading)["description"] == "atlassian (no description was given)"


def test_every_legacy_shape_at_once_in_one_entry() -> None:
    document = _snapshot()
    entry = document["servers"][SERVER]
    del entry["tier"], entry["status"]
    entry["description"] = ""
    entry["tools"] = [*entry["tools"], entry["tools"][0]]
    entry["metadata"]["last_updated"] = "2025-03-25 16:58:54"
    entry["permissions"]["network"]["outbound"]["allow_transport"] = ["tcp"]
    entry["permissions"]["network"]["outbound"]["allow_host"].append("*.databases.example.io")
    entry["permissions"]["read"] = [".cursor/rules"]
    reading = read_catalog(encode(document))
    assert reading.skipped == ()
    assert len(reading.warnings) == 8
    assert {w.entry for w in reading.warnings} == {SERVER}
    _assert_served_in_full(document, reading)


# --- errors: the entry is left out, the other entries are served ---------------------------------------

Breaker = Callable[[dict[str, Any]], None]


def _drop_image(document: dict[str, Any]) -> None:
    del document["servers"][SERVER]["image"]


def _wrong_type(document: dict[str, Any]) -> None:
    document["servers"][SERVER]["tools"] = "jira_search"


def _invalid_name(document: dict[str, Any]) -> None:
    document["servers"]["Atlassian_Cloud"] = document["servers"].pop(SERVER)


def _unrunnable_transport(document: dict[str, Any]) -> None:
    document["servers"][SERVER]["transport"] = "websocket"


@pytest.mark.parametrize(
    ("breaker", "skipped_path", "issue_path", "message"),
    [
        (_drop_image, "servers.atlassian", "servers.atlassian.image", "is required"),
        (_wrong_type, "servers.atlassian", "servers.atlassian.tools", "must be a list"),
        (_invalid_name, "servers.Atlassian_Cloud", "servers.Atlassian_Cloud", "name must match the pattern"),
        (_unrunnable_transport, "servers.atlassian", "servers.atlassian.transport", "must be one of"),
    ],
    ids=["no-image", "wrong-type", "invalid-name", "transport"],
)
def test_an_unservable_entry_is_skipped(
    breaker: Breaker, skipped_path: str, issue_path: str, message: str
) -> None:
    document = _snapshot()
    breaker(document)
    reading = read_catalog(encode(document))
    (skipped,) = reading.skipped
    assert skipped.path == skipped_path
    assert [(i.path, i.severity) for i in skipped.issues] == [(issue_path, "error")]
    assert skipped.issues[0].message.startswith(message), skipped.issues[0].message
    assert reading.catalog.server_count == len(document["servers"]) - 1
    assert reading.total_entries == len(document["servers"])
    with pytest.raises(CatalogError) as raised:
        parse_catalog(encode(document))
    assert raised.value.issues == skipped.issues


def test_a_remote_without_url_is_skipped() -> None:
    document = _snapshot(WITH_REMOTES)
    name = next(iter(document["remote_servers"]))
    del document["remote_servers"][name]["url"]
    reading = read_catalog(encode(document))
    (skipped,) = reading.skipped
    assert (skipped.name, skipped.path) == (name, f"remote_servers.{name}")
    assert skipped.issues[0].path == f"remote_servers.{name}.url"
    assert reading.catalog.server_count == len(document["servers"]) + len(document["remote_servers"]) - 1


def test_a_duplicate_name_is_skipped() -> None:
    document = _snapshot(WITH_REMOTES)
    document["remote_servers"][SERVER] = copy.deepcopy(next(iter(document["remote_servers"].values())))
    reading = read_catalog(encode(document))
    (skipped,) = reading.skipped
    assert skipped.path == "remote_servers.atlassian"
    assert "must be unique" in skipped.issues[0].message
    served = reading.catalog.toolhive_view()
    assert SERVER in served["servers"]  # the first use of the name is served
    assert SERVER not in served["remote_servers"]


def test_one_broken_entry_in_a_hundred() -> None:
    document = _snapshot(NEWEST)  # 79 container servers and 23 remote servers: keep 100 of them
    remotes = sorted(document["remote_servers"])
    keep = 100 - len(document["servers"])
    document["remote_servers"] = {name: document["remote_servers"][name] for name in remotes[:keep]}
    broken = sorted(document["servers"])[41]
    document["servers"][broken]["transport"] = "carrier-pigeon"
    reading = read_catalog(encode(document))
    assert reading.total_entries == 100
    assert reading.catalog.server_count == 99
    assert [(s.name, s.path) for s in reading.skipped] == [(broken, f"servers.{broken}")]
    assert broken not in reading.catalog.toolhive_view()["servers"]
    assert reading.skipped[0].issues[0].path == f"servers.{broken}.transport"
    assert reading.warnings == ()
