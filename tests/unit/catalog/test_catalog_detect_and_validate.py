"""Format detection and validation messages: every problem, with its entry and JSON path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from catalog_testdata import container, encode, minimal_toolhive, remote, server_json

from mcpreg.catalog import (
    CatalogError,
    CatalogIssue,
    detect_format,
    format_path,
    parse_catalog,
    validate_catalog,
)


def _rendered(document: Any, **kwargs: Any) -> list[str]:
    return [issue.render() for issue in validate_catalog(encode(document), **kwargs)]


# --- detection --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "shape"),
    [
        ([server_json()], "list"),
        ([{"server": server_json(), "_meta": {}}], "list"),
        ({"servers": [{"server": server_json()}], "metadata": {"count": 1}}, "response"),
        (
            {
                "$schema": "x",
                "version": "1.0.0",
                "meta": {"last_updated": "2026-01-01T00:00:00Z"},
                "data": {"servers": []},
            },
            "wrapped",
        ),
        (server_json(), "single"),
    ],
)
def test_upstream_shapes_are_detected(document: Any, shape: str) -> None:
    detected = detect_format(document)
    assert (detected.format, detected.shape) == ("upstream", shape)
    assert parse_catalog(encode(document)).source_format == "upstream"


def test_toolhive_is_detected_with_only_remote_servers() -> None:
    document = {
        "version": "1.0.0",
        "last_updated": "2026-01-01T00:00:00Z",
        "remote_servers": {"weather": remote()},
    }
    assert detect_format(document).format == "toolhive"
    # …and validation then says what ToolHive's schema requires.
    assert _rendered(document) == ["servers: is required"]


def test_empty_catalogues_are_valid() -> None:
    assert parse_catalog(b"[]").entry_count == 0
    assert parse_catalog(encode(minimal_toolhive())).server_count == 0


@pytest.mark.parametrize(
    ("document", "found"),
    [
        ({"items": []}, "found an object with 'items'"),
        ({"servers": "fetch"}, "found an object whose 'servers' is a string"),
        ("just text", "found a JSON string at the top level"),
        (None, "found a JSON null at the top level"),
        (3, "found a JSON number at the top level"),
    ],
)
def test_unknown_documents_say_what_was_found_and_expected(document: Any, found: str) -> None:
    issues = validate_catalog(encode(document))
    assert len(issues) == 1
    assert found in issues[0].message
    assert "expected a ToolHive registry" in issues[0].message
    assert "upstream server.json" in issues[0].message


def test_forced_format_that_does_not_match() -> None:
    issues = validate_catalog(encode([server_json()]), format="toolhive")
    assert [i.message for i in issues] == [
        "expected the ToolHive registry format (format: toolhive), but this is a upstream server.json list"
    ]
    issues = validate_catalog(encode(minimal_toolhive()), format="upstream")
    assert "but this is a ToolHive registry" in issues[0].message


def test_forced_format_that_matches() -> None:
    assert parse_catalog(encode(minimal_toolhive(fetch=container())), format="toolhive").server_count == 1
    assert parse_catalog(encode([server_json()]), format="upstream").server_count == 1


# --- rendering --------------------------------------------------------------------------------------------


def test_issue_renders_as_one_line_with_path() -> None:
    issue = CatalogIssue(entry="fetch", path="servers.fetch.transport", message="must be one of 'stdio'")
    assert issue.render() == "servers.fetch.transport: must be one of 'stdio'"
    assert str(issue) == issue.render()


def test_issue_names_entry_when_path_does_not() -> None:
    issue = CatalogIssue(
        entry="io.github.acme/weather", path="data.servers[3].version", message="is required"
    )
    assert issue.render() == "data.servers[3].version: is required (entry io.github.acme/weather)"


def test_paths_quote_keys_with_punctuation() -> None:
    path = format_path(["servers", 0, "_meta", "io.github.stacklok", "ghcr.io/x:1", "tools", 2])
    assert path == 'servers[0]._meta["io.github.stacklok"]["ghcr.io/x:1"].tools[2]'


def test_catalog_error_message_summarises() -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(encode(minimal_toolhive(fetch=container(transport="http", tier="Gold"))))
    assert str(caught.value).endswith("(and 1 more problem)")
    assert caught.value.render().count("\n") == 1


# --- ToolHive validation ----------------------------------------------------------------------------------


def test_enum_problem_reads_like_the_design_says() -> None:
    assert _rendered(minimal_toolhive(fetch=container(transport="http"))) == [
        "servers.fetch.transport: must be one of 'stdio', 'sse' or 'streamable-http' (got 'http')"
    ]


def test_every_problem_is_reported_with_its_entry() -> None:
    document = minimal_toolhive(
        fetch=container(tools=[], tier="gold"),
        time=container(
            image="Not A Valid Image!", env_vars=[{"name": "1BAD", "description": "x", "required": "yes"}]
        ),
    )
    issues = validate_catalog(encode(document))
    assert {issue.entry for issue in issues} == {"fetch", "time"}
    assert [issue.render() for issue in issues] == [
        "servers.fetch.tier: must be one of 'Official' or 'Community' (got 'gold')",
        "servers.fetch.tools: must have at least 1 item(s)",
        "servers.time.image: must match the pattern "
        "^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*"
        "(:([a-zA-Z0-9][a-zA-Z0-9._-]*))?$ (got 'Not A Valid Image!')",
        "servers.time.env_vars[0].name: must match the pattern ^[A-Za-z_][A-Za-z0-9_]*$ (got '1BAD')",
        "servers.time.env_vars[0].description: must be at least 5 characters long (got 'x')",
        "servers.time.env_vars[0].required: must be true or false (got 'yes')",
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # A null is dropped as ToolHive's client would (a warning); a required field stays required.
        ({"image": None}, "servers.fetch.image: is required and must not be null"),
        ({"tags": ["Mixed"]}, "servers.fetch.tags[0]: must match the pattern ^[a-z0-9][a-z0-9_-]*[a-z0-9]$"),
        ({"target_port": 70000}, "servers.fetch.target_port: must be at most 65535 (got 70000)"),
        ({"target_port": "8080"}, "servers.fetch.target_port: must be an integer (got '8080')"),
        ({"metadata": {"stars": -1}}, "servers.fetch.metadata.stars: must be at least 0 (got -1)"),
        (
            {"metadata": {"last_updated": "yesterday"}},
            "servers.fetch.metadata.last_updated: must match the pattern",
        ),
        ({"repository_url": "not a uri"}, "servers.fetch.repository_url: must match the pattern"),
        (
            {"permissions": {"network": {"outbound": {"allow_host": ["bad host"]}}}},
            "servers.fetch.permissions.network.outbound.allow_host[0]: must match the pattern",
        ),
        (
            {"permissions": {"read": ["cache/$(reboot)"]}},
            "servers.fetch.permissions.read[0]: must match the pattern",
        ),
        ({"provenance": {"sigstore_url": "https://x"}}, "servers.fetch.provenance.sigstore_url: must match"),
    ],
)
def test_toolhive_field_rules(overrides: dict[str, Any], expected: str) -> None:
    rendered = _rendered(minimal_toolhive(fetch=container(**overrides)))
    assert len(rendered) == 1, rendered
    assert rendered[0].startswith(expected), rendered[0]


def test_bad_server_name() -> None:
    assert _rendered(minimal_toolhive(Fetch=container())) == [
        "servers.Fetch: name must match the pattern ^[a-z0-9][a-z0-9-]+[a-z0-9]$ (got 'Fetch')"
    ]


def test_remote_url_must_be_http() -> None:
    document = minimal_toolhive()
    document["remote_servers"] = {"weather": remote(url="ftp://weather.example.com")}
    assert _rendered(document) == [
        "remote_servers.weather.url: must be an http:// or https:// URL for a streamable-http server "
        "(got 'ftp://weather.example.com')"
    ]


def test_remote_transport_cannot_be_stdio() -> None:
    document = minimal_toolhive()
    document["remote_servers"] = {"weather": remote(transport="stdio")}
    assert _rendered(document) == [
        "remote_servers.weather.transport: must be one of 'sse' or 'streamable-http' (got 'stdio')"
    ]


def test_registry_level_fields() -> None:
    document = {"version": "one", "servers": {}}
    assert _rendered(document) == [
        "version: must match the pattern ^\\d+\\.\\d+\\.\\d+$ (got 'one')",
        "last_updated: is required",
    ]


def test_name_too_long_for_an_upstream_name() -> None:
    name = "s" + "x" * 190
    rendered = _rendered(minimal_toolhive(**{name: container()}))
    assert rendered == [
        f"servers.{name}: name is 191 characters long; at most 181 fit in an upstream server name under "
        "'io.github.stacklok'"
    ]


def test_group_problems_name_the_server() -> None:
    document = minimal_toolhive()
    document["groups"] = [
        {"name": "team", "description": "Servers for the team", "servers": {"fetch": container(tier="x")}},
        {"name": "team", "description": "Servers for the team"},
    ]
    issues = validate_catalog(encode(document))
    assert [(i.entry, i.render()) for i in issues] == [
        ("fetch", "groups[0].servers.fetch.tier: must be one of 'Official' or 'Community' (got 'x')"),
        (None, "groups[1].name: duplicate group name 'team'"),
    ]


def test_unknown_top_level_keys_are_kept() -> None:
    document = {**minimal_toolhive(fetch=container()), "maintainer": "platform team"}
    assert parse_catalog(encode(document)).toolhive_view()["maintainer"] == "platform team"


# --- upstream validation ----------------------------------------------------------------------------------


def test_upstream_problems_have_entry_and_path() -> None:
    bad = server_json(description="d" * 101)
    bad["packages"][0]["transport"] = {"type": "sse"}
    document = {"servers": [{"server": server_json(name="io.github.acme/ok")}, {"server": bad}]}
    assert _rendered(document) == [
        "servers[1].server.description: must be at most 100 characters long (got 101) "
        "(entry io.github.acme/weather)",
        "servers[1].server.packages[0].transport.url: is required (entry io.github.acme/weather)",
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"name": "no-slash"}, "[0].name: must match the pattern ^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$"),
        ({"version": "^1.2.0"}, "[0].version: must be a specific version, not a range (got '^1.2.0')"),
        ({"version": "1.x"}, "[0].version: must be a specific version, not a range"),
        ({"websiteUrl": "example.com"}, "[0].websiteUrl: must match the pattern"),
        ({"remotes": [{"type": "stdio", "url": "https://x"}]}, "[0].remotes[0].type: must be one of"),
        ({"repository": {"url": "https://github.com/a/b"}}, "[0].repository.source: is required"),
        (
            {"icons": [{"src": "https://x/i.png", "mimeType": "image/gif"}]},
            "[0].icons[0].mimeType: must be one of",
        ),
        (
            {
                "packages": [
                    {
                        "registryType": "npm",
                        "identifier": "x",
                        "version": "latest",
                        "transport": {"type": "stdio"},
                    }
                ]
            },
            "[0].packages[0].version: must be a specific version, not 'latest'",
        ),
        (
            {
                "packages": [
                    {
                        "registryType": "npm",
                        "identifier": "x",
                        "transport": {"type": "stdio"},
                        "packageArguments": [{"type": "positional"}],
                    }
                ]
            },
            "[0].packages[0].packageArguments[0]: a positional argument needs a value or a valueHint",
        ),
    ],
)
def test_upstream_field_rules(overrides: dict[str, Any], expected: str) -> None:
    rendered = _rendered([server_json(**overrides)])
    assert any(line.startswith(expected) for line in rendered), rendered


def test_upstream_missing_required_fields() -> None:
    assert _rendered([{"name": "io.github.acme/x"}]) == [
        "[0].description: is required (entry io.github.acme/x)",
        "[0].version: is required (entry io.github.acme/x)",
    ]


def test_upstream_items_must_be_objects() -> None:
    assert _rendered([server_json(), 5]) == ["[1]: must be an object (got 5)"]


def test_stacklok_extension_is_validated() -> None:
    item = server_json()
    block = item["_meta"]["io.modelcontextprotocol.registry/publisher-provided"]["io.github.stacklok"]
    block["ghcr.io/acme/weather:1.0.0"]["tier"] = "Gold"
    block["ghcr.io/acme/weather:1.0.0"]["unknown"] = 1
    assert _rendered([item]) == [
        '[0]._meta["io.modelcontextprotocol.registry/publisher-provided"]["io.github.stacklok"]'
        "[\"ghcr.io/acme/weather:1.0.0\"].tier: must be one of 'Official' or 'Community' (got 'Gold') "
        "(entry io.github.acme/weather)",
        '[0]._meta["io.modelcontextprotocol.registry/publisher-provided"]["io.github.stacklok"]'
        '["ghcr.io/acme/weather:1.0.0"].unknown: is not a recognised field here '
        "(entry io.github.acme/weather)",
    ]


def test_official_meta_of_a_response_entry_is_validated() -> None:
    document = {
        "servers": [
            {
                "server": server_json(),
                "_meta": {"io.modelcontextprotocol.registry/official": {"status": "gone"}},
            }
        ]
    }
    assert _rendered(document) == [
        'servers[0]._meta["io.modelcontextprotocol.registry/official"].status: must be one of '
        "'active', 'deprecated' or 'deleted' (got 'gone') (entry io.github.acme/weather)"
    ]


def test_unknown_upstream_fields_are_allowed_and_kept() -> None:
    item = server_json(x_vendor={"anything": [1, 2]})
    catalog = parse_catalog(encode([item]))
    assert catalog.upstream_view()[0]["server"]["x_vendor"] == {"anything": [1, 2]}


def test_wrapped_envelope_is_validated() -> None:
    document = {"version": "1", "meta": {}, "data": {"servers": [server_json()]}}
    assert _rendered(document) == [
        "version: must match the pattern ^\\d+\\.\\d+\\.\\d+$ (got '1')",
        "meta.last_updated: is required",
    ]


def test_wrapped_groups() -> None:
    document = {
        "version": "1.0.0",
        "meta": {"last_updated": "2026-01-01T00:00:00Z"},
        "data": {
            "servers": [server_json()],
            "groups": [
                {
                    "name": "team-tools",
                    "description": "Tools the team uses",
                    "servers": [server_json(name="io.github.acme/cal")],
                }
            ],
        },
    }
    catalog = parse_catalog(encode(document))
    assert [group.name for group in catalog.groups] == ["team-tools"]
    view = catalog.toolhive_view()
    assert view["groups"] == [
        {
            "name": "team-tools",
            "description": "Tools the team uses",
            "servers": {"cal": view["groups"][0]["servers"]["cal"]},
        }
    ]
    assert view["groups"][0]["servers"]["cal"]["image"] == "ghcr.io/acme/weather:1.0.0"


def test_text_input_is_accepted_and_bad_text_reported() -> None:
    text = json.dumps(minimal_toolhive(fetch=container(description="Fetches pages — vite")))
    assert parse_catalog(text).server_count == 1
    assert [i.message for i in validate_catalog("\udcff")] == [
        "is not UTF-8 text: invalid byte 0xed at offset 0"
    ]


def test_issue_as_dict() -> None:
    issue = validate_catalog(encode(minimal_toolhive(fetch=container(tier="x"))))[0]
    assert issue.as_dict() == {
        "entry": "fetch",
        "path": "servers.fetch.tier",
        "message": "must be one of 'Official' or 'Community' (got 'x')",
        "severity": "error",
    }
