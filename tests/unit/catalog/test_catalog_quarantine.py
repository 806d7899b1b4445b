"""read_catalog: entries with errors are left out and named, the rest served; parse_catalog stays strict."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest
from catalog_testdata import container, encode, minimal_toolhive, remote, server_json

from mcpreg.catalog import (
    CatalogError,
    CatalogReading,
    SkippedEntry,
    catalog_from_document,
    parse_catalog,
    read_catalog,
)


def _three_servers(**broken: Any) -> dict[str, Any]:
    document = minimal_toolhive(alpha=container(), beta=container(), gamma=container())
    for name, overrides in broken.items():
        document["servers"][name] = container(**overrides)
    return document


def test_a_valid_catalogue_reads_as_parse_catalog_does() -> None:
    data = encode(_three_servers())
    reading = read_catalog(data)
    assert reading.skipped == ()
    assert reading.warnings == ()
    assert reading.total_entries == 3
    assert reading.catalog.content_hash == parse_catalog(data).content_hash


def test_a_broken_entry_is_left_out_and_named_with_its_errors() -> None:
    data = encode(_three_servers(beta={"transport": "carrier-pigeon", "tools": []}))
    reading = read_catalog(data)
    assert sorted(entry.toolhive.key for entry in reading.catalog.entries if entry.toolhive) == [
        "alpha",
        "gamma",
    ]
    (skipped,) = reading.skipped
    assert skipped.name == "beta"
    assert skipped.path == "servers.beta"
    assert [issue.path for issue in skipped.issues] == ["servers.beta.transport", "servers.beta.tools"]
    assert {issue.severity for issue in skipped.issues} == {"error"}
    assert reading.total_entries == 3

    with pytest.raises(CatalogError) as raised:
        parse_catalog(data)
    assert raised.value.issues == skipped.issues


def test_skipped_entries_come_in_document_order() -> None:
    document = minimal_toolhive(zulu=container(image="Bad Image"), alpha=container(), mike=container(tier=7))
    document["remote_servers"] = {"bravo": remote(url="ftp://nope")}
    reading = read_catalog(encode(document))
    assert [(s.name, s.path) for s in reading.skipped] == [
        ("zulu", "servers.zulu"),
        ("mike", "servers.mike"),
        ("bravo", "remote_servers.bravo"),
    ]
    assert reading.catalog.server_count == 1
    assert reading.total_entries == 4


def test_an_invalid_name_and_a_duplicate_name_are_entry_errors() -> None:
    document = minimal_toolhive(fetch=container(), **{"Bad_Name": container()})
    document["remote_servers"] = {"fetch": remote()}
    reading = read_catalog(encode(document))
    assert [(s.name, s.path) for s in reading.skipped] == [
        ("Bad_Name", "servers.Bad_Name"),
        ("fetch", "remote_servers.fetch"),
    ]
    assert [entry.name for entry in reading.catalog.entries] == ["io.github.stacklok/fetch"]
    assert "must be unique" in reading.skipped[1].issues[0].message


def test_an_entry_in_a_group_is_skipped_with_its_group_path() -> None:
    document = minimal_toolhive(alpha=container())
    document["groups"] = [
        {
            "name": "tools",
            "description": "Tools that work well together",
            "servers": {"good": container(), "bad": container(image=None, transport=3)},
        }
    ]
    reading = read_catalog(encode(document))
    assert [s.path for s in reading.skipped] == ["groups[0].servers.bad"]
    assert [entry.name for entry in reading.catalog.groups[0].entries] == ["io.github.stacklok/good"]
    assert reading.total_entries == 3


def test_upstream_items_are_skipped_by_position() -> None:
    items = [
        server_json("io.github.acme/one"),
        {"name": "io.github.acme/two"},
        server_json("io.github.acme/three"),
    ]
    reading = read_catalog(encode(items))
    assert [(s.name, s.path) for s in reading.skipped] == [("io.github.acme/two", "[1]")]
    assert [entry.name for entry in reading.catalog.entries] == ["io.github.acme/one", "io.github.acme/three"]

    wrapped = {
        "$schema": "x",
        "version": "1.0.0",
        "meta": {"last_updated": "2026-01-01T00:00:00Z"},
        "data": {"servers": [server_json(), server_json(), 7]},
    }
    reading = read_catalog(encode(wrapped))
    # The second copy of the same version is the duplicate; the number is not a server at all.
    assert [s.path for s in reading.skipped] == ["data.servers[1]", "data.servers[2]"]
    assert "duplicate version" in reading.skipped[0].issues[0].message
    assert reading.catalog.entry_count == 1
    assert reading.total_entries == 3


def test_an_upstream_response_entry_with_a_bad_meta_is_skipped() -> None:
    document = {
        "servers": [
            {"server": server_json("io.github.acme/a"), "_meta": {}},
            {
                "server": server_json("io.github.acme/b"),
                "_meta": {"io.modelcontextprotocol.registry/official": {"status": "sleeping"}},
            },
        ]
    }
    reading = read_catalog(encode(document))
    assert [(s.name, s.path) for s in reading.skipped] == [("io.github.acme/b", "servers[1]")]
    assert reading.skipped[0].issues[0].path.startswith("servers[1]._meta")


def test_every_entry_broken_gives_an_empty_catalogue_not_an_exception() -> None:
    reading = read_catalog(encode(_three_servers(alpha={"tier": 1}, beta={"tier": 2}, gamma={"tier": 3})))
    assert reading.catalog.entry_count == 0
    assert len(reading.skipped) == 3
    assert reading.total_entries == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{", "UTF-16"),
        (b"{not json", "is not valid JSON"),
        (b'{"hello": "world"}', "unrecognised catalogue"),
        (encode({**minimal_toolhive(a1a=container()), "version": "one"}), "must match the pattern"),
        (encode({**minimal_toolhive(a1a=container()), "last_updated": 5}), "must be a string"),
        (encode({**minimal_toolhive(a1a=container()), "remote_servers": []}), "must be an object"),
        (
            encode(
                {
                    **minimal_toolhive(a1a=container()),
                    "groups": [
                        {"name": "gg", "description": "The same group twice"},
                        {"name": "gg", "description": "The same group twice"},
                    ],
                }
            ),
            "duplicate group name",
        ),
        (encode(server_json(version=3)), "must be a string"),
    ],
)
def test_whole_document_problems_raise(data: bytes, message: str) -> None:
    with pytest.raises(CatalogError) as raised:
        read_catalog(data)
    assert message in str(raised.value), raised.value.render()
    assert all(issue.severity == "error" for issue in raised.value.issues)


def test_a_document_error_is_raised_alone_even_when_entries_are_broken_too() -> None:
    document = {**_three_servers(beta={"tier": 5}), "version": "x"}
    with pytest.raises(CatalogError) as raised:
        read_catalog(encode(document))
    assert [issue.path for issue in raised.value.issues] == ["version"]


def test_entry_count_limit_is_a_document_problem() -> None:
    from mcpreg.catalog import CatalogLimits

    with pytest.raises(CatalogError, match="more than the limit of 2"):
        read_catalog(encode(_three_servers()), limits=CatalogLimits(max_entries=2))


def test_text_input_and_format_choice_are_honoured() -> None:
    text = encode(_three_servers(gamma={"tools": "all"})).decode()
    reading = read_catalog(text, format="toolhive")
    assert [s.name for s in reading.skipped] == ["gamma"]
    with pytest.raises(CatalogError, match="expected the upstream"):
        read_catalog(text, format="upstream")


def test_a_reading_survives_pickling_for_the_child_process() -> None:
    reading = read_catalog(encode(_three_servers(beta={"tier": "gold"})))
    copied = pickle.loads(pickle.dumps(reading))  # noqa: S301 - our own bytes, as the child pipe carries
    assert isinstance(copied, CatalogReading)
    assert copied.skipped == reading.skipped
    assert isinstance(copied.skipped[0], SkippedEntry)
    assert copied.catalog.content_hash == reading.catalog.content_hash


def test_the_callers_document_is_never_modified() -> None:
    document = _three_servers(beta={"tier": None, "colour": "blue"})
    before = copy.deepcopy(document)
    catalog_from_document(document)
    assert document == before


# --- the smaller warning rules (docs/catalogue-validation.md) ------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "path", "served"),
    [
        (
            {"tier": "official", "status": "ACTIVE"},
            "servers.beta.tier",
            {"tier": "Official", "status": "Active"},
        ),
        ({"tier": ""}, "servers.beta.tier", {"tier": "Community"}),
        ({"description": "Fetch"}, "servers.beta.description", {"description": "Fetch"}),
        ({"tags": ["web", "web"]}, "servers.beta.tags", {"tags": ["web"]}),
        ({"metadata": {"last_updated": "2025-03-25"}}, "servers.beta.metadata.last_updated", {}),
        (
            {"env_vars": [{"name": "A", "description": "An A value", "required": True, "secret": None}]},
            "servers.beta.env_vars[0]",
            {"env_vars": [{"name": "A", "description": "An A value", "required": True}]},
        ),
    ],
)
def test_warning_rules(overrides: dict[str, Any], path: str, served: dict[str, Any]) -> None:
    reading = read_catalog(encode(_three_servers(beta=overrides)))
    assert reading.skipped == ()
    assert reading.warnings[0].path == path
    assert all(w.severity == "warning" for w in reading.warnings)
    entry = reading.catalog.toolhive_view()["servers"]["beta"]
    for field_name, value in served.items():
        assert entry[field_name] == value


def test_a_date_without_time_becomes_midnight_utc() -> None:
    reading = read_catalog(encode(_three_servers(beta={"metadata": {"last_updated": "2025-03-25"}})))
    assert (
        reading.catalog.toolhive_view()["servers"]["beta"]["metadata"]["last_updated"]
        == "2025-03-25T00:00:00Z"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"tier": "gold"},
        {"metadata": {"last_updated": "2025-13-45 10:00:00"}},
        {"permissions": {"read": ["cache:/data"]}},
        {"permissions": {"network": {"outbound": {"allow_host": ["*.*.example.com"]}}}},
        {"required_field_typo": 1, "transport": "http"},
        {"image": None},
    ],
    ids=[
        "unknown-tier",
        "impossible-date",
        "host-container-mount",
        "double-wildcard",
        "one-unrepairable",
        "null-image",
    ],
)
def test_what_stays_an_error(overrides: dict[str, Any]) -> None:
    reading = read_catalog(encode(_three_servers(beta=overrides)))
    assert [s.name for s in reading.skipped] == ["beta"]
    assert all(i.severity == "error" for i in reading.skipped[0].issues)


def test_a_server_name_written_twice_is_skipped_not_the_document() -> None:
    body = json.dumps(container())
    text = (
        '{"version": "1.0.0", "last_updated": "2026-01-01T00:00:00Z", '
        f'"servers": {{"fetch": {body}, "time": {body}, "fetch": {{}}}}}}'
    )
    reading = read_catalog(text)
    (skipped,) = reading.skipped
    assert (skipped.name, skipped.path) == ("fetch", "servers.fetch")
    # Only the repetition is reported: neither definition is read, so neither is checked.
    assert [i.message for i in skipped.issues] == ["duplicate server name 'fetch': each may appear only once"]
    assert reading.warnings == ()
    assert [e.name for e in reading.catalog.entries] == ["io.github.stacklok/time"]
    assert reading.total_entries == 2


def test_any_other_repeated_key_is_still_a_document_problem() -> None:
    body = json.dumps(container())
    text = (
        '{"version": "1.0.0", "last_updated": "2026-01-01T00:00:00Z", '
        f'"servers": {{"fetch": {body[:-1]}, "tier": "Official"}}}}}}'
    )
    with pytest.raises(CatalogError, match="duplicate key 'tier'"):
        read_catalog(text)


def test_what_was_kept_reads_back_from_every_form_the_catalogue_is_written_in() -> None:
    kept = container(
        description="Fetch",
        permissions={
            "network": {"outbound": {"allow_host": ["*.databases.example.io"]}},
            "read": [".cursor/rules"],
        },
    )
    catalog = read_catalog(encode(_three_servers(beta=kept))).catalog
    assert parse_catalog(catalog.canonical_json()).content_hash == catalog.content_hash
    for document in (catalog.upstream_document("wrapped"), catalog.toolhive_view()):
        again = read_catalog(encode(document))
        assert again.skipped == ()
        assert again.catalog.server_count == 3
