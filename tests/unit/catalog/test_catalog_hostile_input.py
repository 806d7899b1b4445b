"""Hostile and broken input: always one clear CatalogError, never a crash, a traceback or a hang."""

from __future__ import annotations

import json
import time

import pytest
from catalog_testdata import container, encode, minimal_toolhive, server_json

from mcpreg.catalog import CatalogError, CatalogIssue, CatalogLimits, parse_catalog, validate_catalog
from mcpreg.catalog.limits import DEFAULT_MAX_BYTES


def _only_issue(data: bytes, limits: CatalogLimits | None = None) -> CatalogIssue:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data, limits=limits or CatalogLimits())
    assert len(caught.value.issues) == 1, caught.value.render()
    return caught.value.issues[0]


def test_default_size_limit_is_50_mib() -> None:
    assert DEFAULT_MAX_BYTES == 50 * 1024 * 1024
    assert CatalogLimits().max_bytes == DEFAULT_MAX_BYTES


def test_oversized_document_is_refused_before_decoding() -> None:
    data = encode(minimal_toolhive(fetch=container())) + b" " * 2048
    issue = _only_issue(data, CatalogLimits(max_bytes=1024))
    assert issue.path == ""
    assert "larger than the limit of 1.0 KiB" in issue.message


@pytest.mark.timeout(30)
def test_oversized_default_limit_is_fast() -> None:
    data = b"[" + b" " * DEFAULT_MAX_BYTES + b"]"
    started = time.perf_counter()
    issue = _only_issue(data)
    assert "larger than the limit of 50 MiB" in issue.message
    assert time.perf_counter() - started < 1.0


def test_entry_count_limit_toolhive() -> None:
    document = minimal_toolhive(**{f"server-{i}": container() for i in range(11)})
    issue = _only_issue(encode(document), CatalogLimits(max_entries=10))
    assert issue.message == "has 11 server entries, more than the limit of 10"


def test_entry_count_limit_upstream() -> None:
    servers = [server_json(version=f"1.0.{i}") for i in range(6)]
    issue = _only_issue(encode(servers), CatalogLimits(max_entries=5))
    assert "more than the limit of 5" in issue.message


def test_entry_count_limit_counts_group_members() -> None:
    document = minimal_toolhive(fetch=container())
    document["groups"] = [
        {
            "name": "team",
            "description": "Servers for the team",
            "servers": {f"s-{i}": container() for i in range(5)},
        }
    ]
    issue = _only_issue(encode(document), CatalogLimits(max_entries=5))
    assert "has 6 server entries" in issue.message


def test_nesting_deeper_than_the_limit_names_the_path() -> None:
    deep: object = "bottom"
    for _ in range(70):
        deep = {"next": deep}
    document = minimal_toolhive(fetch=container(custom_metadata={"deep": deep}))
    issue = _only_issue(encode(document))
    assert issue.message == "is nested more than 64 levels deep"
    assert issue.entry == "fetch"
    assert issue.path.startswith("servers.fetch.custom_metadata.deep.next")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("depth", [10_000, 200_000])
def test_absurd_nesting_does_not_blow_the_stack(depth: int) -> None:
    issue = _only_issue(b"[" * depth + b"]" * depth)
    assert "nested" in issue.message


def test_configurable_depth_limit() -> None:
    document = minimal_toolhive(fetch=container(custom_metadata={"a": {"b": {"c": 1}}}))
    assert validate_catalog(encode(document)) == []
    issue = _only_issue(encode(document), CatalogLimits(max_depth=5))
    assert "nested more than 5 levels" in issue.message


def test_huge_string_is_refused_with_its_path() -> None:
    document = minimal_toolhive(fetch=container(custom_metadata={"blob": "x" * 2_000_000}))
    issue = _only_issue(encode(document))
    assert issue.message == f"contains a string longer than {1024 * 1024} characters"
    assert issue.path == "servers.fetch.custom_metadata.blob"


def test_huge_key_is_refused() -> None:
    document = minimal_toolhive(fetch=container(custom_metadata={"k" * 5000: 1}))
    issue = _only_issue(encode(document), CatalogLimits(max_string_length=1000))
    assert "key longer than 1000" in issue.message


def test_huge_description_is_a_validation_error_not_a_crash() -> None:
    document = minimal_toolhive(fetch=container(description="d" * 100_000))
    issues = validate_catalog(encode(document))
    assert [i.render() for i in issues] == [
        "servers.fetch.description: must be at most 500 characters long (got 100000)"
    ]


def test_duplicate_server_names_in_toolhive_json() -> None:
    body = json.dumps(container())
    text = (
        '{"version": "1.0.0", "last_updated": "2026-01-01T00:00:00Z", '
        f'"servers": {{"fetch": {body}, "time": {body}, "fetch": {body}}}}}'
    )
    issue = _only_issue(text.encode())
    assert issue.entry == "fetch"
    assert issue.render() == "servers.fetch: duplicate server name 'fetch': each may appear only once"


def test_duplicate_keys_anywhere_are_refused() -> None:
    text = '{"version": "1.0.0", "version": "2.0.0", "last_updated": "2026-01-01T00:00:00Z", "servers": {}}'
    issue = _only_issue(text.encode())
    assert issue.render() == "version: duplicate key 'version': each may appear only once"


def test_same_name_in_servers_and_remote_servers() -> None:
    document = minimal_toolhive(fetch=container())
    document["remote_servers"] = {"fetch": {**container(), "url": "https://x.example.com/mcp"}}
    rendered = [issue.render() for issue in validate_catalog(encode(document))]
    assert (
        "remote_servers.fetch: name 'fetch' is also used in servers; each server name must be unique"
        in rendered
    )


def test_duplicate_upstream_versions() -> None:
    servers = [server_json(version="1.0.0"), server_json(version="1.0.0")]
    issue = _only_issue(encode(servers))
    assert issue.render() == (
        "[1].version: duplicate version '1.0.0' of this server (already at [0]) "
        "(entry io.github.acme/weather)"
    )
    assert issue.entry == "io.github.acme/weather"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"servers": {}}\xff\xfe', "is not UTF-8 text: invalid byte 0xff at offset 15"),
        (b"\xff\xfe{\x00}\x00", "is encoded as UTF-16 (little-endian); catalogues must be UTF-8 text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is not UTF-8 text: invalid byte 0x89 at offset 0"),
    ],
)
def test_non_utf8_bytes(data: bytes, expected: str) -> None:
    assert _only_issue(data).message == expected


def test_utf8_byte_order_mark_is_accepted() -> None:
    assert validate_catalog(b"\xef\xbb\xbf" + encode(minimal_toolhive(fetch=container()))) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the document is empty; expected a JSON catalogue"),
        (b"   \n", "the document is empty; expected a JSON catalogue"),
        (b"servers:\n  fetch: {}\n", "is not valid JSON: Expecting value at line 1, column 1"),
        (b'{"servers": {}', "is not valid JSON: Expecting ',' delimiter at line 1, column 15"),
        (b'{"servers": {}} trailing', "is not valid JSON: Extra data at line 1, column 17"),
        (b'[{"name": NaN}]', "is not an acceptable JSON document: NaN is not allowed in a catalogue"),
    ],
)
def test_not_json(data: bytes, expected: str) -> None:
    issue = _only_issue(data)
    assert issue.message.startswith(expected), issue.message
    assert issue.render().startswith("(document): ")


def test_enormous_integer_is_refused_cleanly() -> None:
    data = (
        b'{"version": "1.0.0", "last_updated": "2026-01-01T00:00:00Z", "servers": {}, "x": '
        + b"9" * 5000
        + b"}"
    )
    assert "not an acceptable JSON document" in _only_issue(data).message


def test_older_snake_case_upstream_format_gets_one_clear_error() -> None:
    older = {
        "servers": [
            {
                "name": "io.github.acme/weather",
                "description": "Weather",
                "version_detail": {
                    "version": "1.0.0",
                    "release_date": "2025-05-01T00:00:00Z",
                    "is_latest": True,
                },
                "packages": [{"registry_name": "npm", "name": "@acme/weather", "version": "1.0.0"}],
            }
        ]
    }
    issue = _only_issue(encode(older))
    assert issue.path == "servers[0]"
    assert issue.entry == "io.github.acme/weather"
    assert "older snake_case server.json format ('version_detail')" in issue.message
    assert "2025-12-11" in issue.message


def test_snake_case_inside_packages_is_found_too() -> None:
    item = server_json()
    item["packages"][0]["registry_type"] = item["packages"][0].pop("registryType")
    issue = _only_issue(encode([item]))
    assert issue.path == "[0].packages[0]"
    assert "'registry_type'" in issue.message


@pytest.mark.timeout(30)
def test_many_invalid_entries_are_reported_quickly() -> None:
    servers = [{"name": f"io.github.acme/s{i}", "description": "", "version": "1"} for i in range(20_000)]
    started = time.perf_counter()
    issues = validate_catalog(encode(servers))
    assert len(issues) == 20_000
    assert (
        issues[0].render()
        == "[0].description: must be at least 1 characters long (got '') (entry io.github.acme/s0)"
    )
    assert time.perf_counter() - started < 10


def test_validate_never_raises_for_garbage() -> None:
    for data in (b"\x00" * 100, b"null", b"42", b'"text"', b"true", b"[1, 2, 3]", b'{"servers": 5}'):
        issues = validate_catalog(data)
        assert issues, data
        assert all(isinstance(issue, CatalogIssue) for issue in issues)


def test_what_was_accepted_can_always_be_read_back_from_its_canonical_form() -> None:
    # Nested right up to the limit in the source; the canonical form nests deeper (fields move under
    # _meta) and is larger, but reading it back must not fail.
    deep: object = "bottom"
    for _ in range(59):
        deep = {"next": deep}
    document = minimal_toolhive(fetch=container(custom_metadata={"deep": deep}, description="d" * 400))
    data = encode(document)
    limits = CatalogLimits(max_bytes=len(data) + 10)
    catalog = parse_catalog(data, limits=limits)
    canonical = catalog.canonical_json()
    assert len(canonical) > limits.max_bytes
    assert parse_catalog(canonical, limits=limits).content_hash == catalog.content_hash


def test_canonical_allowance_is_bounded() -> None:
    limits = CatalogLimits(max_bytes=1000, max_depth=10)
    relaxed = limits.for_canonical_form()
    assert (relaxed.max_bytes, relaxed.max_depth, relaxed.max_entries) == (2000, 26, limits.max_entries)
    catalog = parse_catalog(encode(minimal_toolhive(fetch=container(description="d" * 500))))
    padded = catalog.canonical_json()[:-1] + b" " * 3000 + b"}"
    assert "larger than the limit" in _only_issue(padded, limits).message
