"""Versions (`latest` by semver, else publish order), filtering semantics, and the canonical hash."""

from __future__ import annotations

import fnmatch
import json
import random
import re
import time
from typing import Any

import pytest
from catalog_testdata import container, encode, minimal_toolhive, server_json
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpreg.catalog import (
    CatalogError,
    compile_filter,
    is_semver,
    latest_index,
    make_filter,
    parse_catalog,
    semver_key,
)
from mcpreg.catalog.filtering import glob_to_regex
from mcpreg.catalog.versions import VersionCandidate

# --- semver -----------------------------------------------------------------------------------------------


def test_semver_precedence_follows_the_spec() -> None:
    # The ordering example from semver.org, section 11.
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]
    shuffled = ordered[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=lambda v: semver_key(v) or ()) == ordered


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "latest", "2025.01.02-x_y", ""])
def test_not_semver(version: str) -> None:
    assert not is_semver(version)
    assert semver_key(version) is None


def test_build_metadata_does_not_order() -> None:
    assert semver_key("1.0.0+build.1") == semver_key("1.0.0+build.2") == semver_key("1.0.0")


def _latest(*versions: str | tuple[str, str]) -> str:
    candidates = [
        VersionCandidate(v, None) if isinstance(v, str) else VersionCandidate(v[0], v[1]) for v in versions
    ]
    index = latest_index(candidates)
    assert index is not None
    return candidates[index].version


def test_latest_is_highest_semver_regardless_of_order() -> None:
    assert _latest("1.10.0", "1.2.0", "1.9.9") == "1.10.0"
    assert _latest("2.0.0-rc.1", "1.5.0") == "2.0.0-rc.1"
    assert _latest("1.0.0", "1.0.0-rc.1") == "1.0.0"


def test_latest_falls_back_to_publish_order() -> None:
    # A non-semver version published last is the latest (as the official registry decides).
    assert _latest("1.0.0", "2024-nightly") == "2024-nightly"
    assert _latest("2024-nightly", "1.0.0") == "1.0.0"
    # Publish order comes from publishedAt when every version has one.
    assert _latest(("build-b", "2025-03-01T00:00:00Z"), ("build-a", "2025-01-01T00:00:00Z")) == "build-b"
    assert _latest(("build-b", "2025-01-01T00:00:00Z"), ("build-a", "2025-03-01T00:00:00+00:00")) == "build-a"


def test_deleted_versions_are_latest_only_when_nothing_else_is_left() -> None:
    candidates = [VersionCandidate("1.0.0", None), VersionCandidate("2.0.0", None, deleted=True)]
    assert latest_index(candidates) == 0
    assert latest_index([VersionCandidate("2.0.0", None, deleted=True)]) == 0
    assert latest_index([]) is None


def test_catalog_versions_and_lookups() -> None:
    servers = [server_json(version=v) for v in ("1.0.0", "1.2.0", "1.1.0")] + [
        server_json(name="io.github.acme/cal")
    ]
    catalog = parse_catalog(encode(servers))
    name = "io.github.acme/weather"
    assert catalog.server_count == 2
    assert catalog.entry_count == 4
    assert [e.version for e in catalog.versions(name)] == ["1.0.0", "1.2.0", "1.1.0"]
    latest = catalog.latest(name)
    assert latest is not None and latest.version == "1.2.0"
    assert catalog.get(name, "latest") is latest
    assert catalog.get(name, "1.1.0") is catalog.versions(name)[2]
    assert catalog.get(name, "9.9.9") is None
    assert catalog.get("io.github.acme/unknown") is None
    assert [
        e["_meta"]["io.modelcontextprotocol.registry/official"]["isLatest"] for e in catalog.upstream_view()
    ] == [
        False,
        True,
        False,
        True,
    ]
    # The ToolHive view holds one server per name: the latest version.
    assert catalog.toolhive_view()["servers"].keys() == {"weather", "cal"}


# --- filtering --------------------------------------------------------------------------------------------


def _catalog() -> Any:
    return parse_catalog(
        encode(
            minimal_toolhive(
                fetch=container(tags=["web", "content"]),
                **{"fetch-experimental": container(tags=["web"])},
                github=container(tags=["git", "deprecated"]),
                gitlab=container(tags=["git"]),
                time=container(),
            )
        )
    )


@pytest.mark.parametrize(
    ("spec", "kept"),
    [
        ({}, ["fetch", "fetch-experimental", "github", "gitlab", "time"]),
        ({"names": {"include": ["*"]}}, ["fetch", "fetch-experimental", "github", "gitlab", "time"]),
        ({"names": {"include": [], "exclude": ["*-experimental"]}}, ["fetch", "github", "gitlab", "time"]),
        ({"names": {"include": ["git*"]}}, ["github", "gitlab"]),
        ({"names": {"include": ["io.github.stacklok/git*"]}}, ["github", "gitlab"]),
        ({"names": {"include": ["fetch*"], "exclude": ["fetch-*"]}}, ["fetch"]),  # exclude wins
        ({"names": {"include": ["git[hl]ab", "time"]}}, ["gitlab", "time"]),
        ({"names": {"include": ["git[!h]*"]}}, ["gitlab"]),
        ({"names": {"include": ["t?me"]}}, ["time"]),
        ({"names": {"include": ["FETCH"]}}, []),  # case-sensitive
        ({"tags": {"include": ["web"]}}, ["fetch", "fetch-experimental"]),
        ({"tags": {"exclude": ["deprecated"]}}, ["fetch", "fetch-experimental", "gitlab", "time"]),
        ({"tags": {"include": ["git"], "exclude": ["deprecated"]}}, ["gitlab"]),
        ({"tags": {"include": ["w*"]}}, ["fetch", "fetch-experimental"]),
        (
            {
                "names": {"exclude": ["*-experimental"]},
                "tags": {"include": ["web", "git"], "exclude": ["deprecated"]},
            },
            ["fetch", "gitlab"],
        ),
    ],
)
def test_filter_semantics(spec: dict[str, Any], kept: list[str]) -> None:
    filtered = _catalog().filtered(compile_filter(spec))
    assert [name.split("/")[1] for name in filtered.names()] == kept
    assert sorted(filtered.toolhive_view()["servers"]) == kept


def test_filter_keeps_nothing_when_nothing_matches_and_reports_zero() -> None:
    filtered = _catalog().filtered(make_filter(include_tags=["nope"]))
    assert filtered.server_count == 0
    assert filtered.toolhive_view()["servers"] == {}


def test_everything_filter_returns_the_same_catalogue() -> None:
    catalog = _catalog()
    assert catalog.filtered(compile_filter(None)) is catalog
    assert catalog.filtered(compile_filter({"names": {"include": [], "exclude": []}})) is catalog


@pytest.mark.parametrize(
    ("spec", "rendered"),
    [
        (
            {"names": {"include": ["fetch["]}},
            "filter.names.include[0]: pattern has an unclosed '[' at position 6",
        ),
        (
            {"names": {"exclude": ["ok", ""]}},
            "filter.names.exclude[1]: pattern is empty; use '*' to match everything",
        ),
        (
            {"tags": {"include": ["a b"]}},
            "filter.tags.include[0]: pattern contains whitespace or control characters",
        ),
        ({"tags": {"exclude": ["[]"]}}, "filter.tags.exclude[0]: pattern has an empty character set '[]'"),
        ({"tags": {"exclude": ["[z-a]"]}}, "filter.tags.exclude[0]: pattern has a reversed range 'z-a'"),
        ({"names": {"include": ["a]"]}}, "filter.names.include[0]: pattern has a ']' without a matching '['"),
        (
            {"names": {"include": ["x" * 300]}},
            "filter.names.include[0]: pattern is longer than 256 characters",
        ),
        ({"names": {"include": "fetch"}}, "filter.names.include: must be a list (got 'fetch')"),
        ({"names": {"only": ["x"]}}, "filter.names.only: is not a recognised field here"),
        ({"labels": {}}, "filter.labels: is not a recognised field here"),
    ],
)
def test_invalid_patterns_are_validation_errors(spec: dict[str, Any], rendered: str) -> None:
    with pytest.raises(CatalogError) as caught:
        compile_filter(spec)
    assert caught.value.issues[0].render().startswith(rendered), caught.value.render()


def test_every_invalid_pattern_is_reported() -> None:
    with pytest.raises(CatalogError) as caught:
        compile_filter({"names": {"include": ["[", "ok", "]"]}, "tags": {"exclude": [""]}})
    assert [issue.path for issue in caught.value.issues] == [
        "filter.names.include[0]",
        "filter.names.include[2]",
        "filter.tags.exclude[0]",
    ]


def test_regex_metacharacters_are_literal() -> None:
    catalog = parse_catalog(
        encode([server_json(name="io.github.acme/a.b"), server_json(name="io.github.acme/axb")])
    )
    assert catalog.filtered(make_filter(include_names=["a.b"])).names() == ["io.github.acme/a.b"]
    assert catalog.filtered(make_filter(include_names=["a+b", "(a)"])).names() == []


def test_filter_recomputes_latest_per_version() -> None:
    versions = []
    for version, tags in (("1.0.0", ["stable"]), ("2.0.0", ["beta"])):
        item = server_json(version=version)
        item["_meta"]["io.modelcontextprotocol.registry/publisher-provided"]["io.github.stacklok"][
            "ghcr.io/acme/weather:1.0.0"
        ]["tags"] = tags
        versions.append(item)
    catalog = parse_catalog(encode(versions))
    assert catalog.latest("io.github.acme/weather").version == "2.0.0"  # type: ignore[union-attr]
    filtered = catalog.filtered(make_filter(exclude_tags=["beta"]))
    assert [(e.version, e.is_latest) for e in filtered.entries] == [("1.0.0", True)]
    assert filtered.content_hash != catalog.content_hash


def test_filter_applies_to_groups() -> None:
    document = minimal_toolhive(fetch=container())
    document["groups"] = [
        {
            "name": "team",
            "description": "Servers for the team",
            "servers": {"git": container(), "git-experimental": container()},
        }
    ]
    filtered = parse_catalog(encode(document)).filtered(make_filter(exclude_names=["*-experimental"]))
    assert list(filtered.toolhive_view()["groups"][0]["servers"]) == ["git"]


# --- canonical hash ---------------------------------------------------------------------------------------


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


def test_hash_ignores_key_order_and_whitespace_toolhive() -> None:
    document = minimal_toolhive(
        fetch=container(
            metadata={"stars": 1, "pulls": 2}, custom_metadata={"b": 1, "a": [1, {"y": 2, "x": 1}]}
        ),
        time=container(),
    )
    compact = json.dumps(document, separators=(",", ":")).encode()
    pretty = json.dumps(_reordered(document), indent=4).encode()
    assert parse_catalog(compact).content_hash == parse_catalog(pretty).content_hash
    assert parse_catalog(compact).content_hash.startswith("sha256:")
    assert len(parse_catalog(compact).content_hash) == len("sha256:") + 64


def test_hash_ignores_key_order_and_whitespace_upstream() -> None:
    document = {
        "servers": [{"server": server_json(), "_meta": {}}, {"server": server_json(name="io.github.acme/b")}]
    }
    first = parse_catalog(json.dumps(document).encode()).content_hash
    second = parse_catalog(json.dumps(_reordered(document), indent=1).encode()).content_hash
    assert first == second


def test_hash_changes_with_content() -> None:
    base = parse_catalog(encode(minimal_toolhive(fetch=container()))).content_hash
    changed = parse_catalog(encode(minimal_toolhive(fetch=container(tools=["fetch", "get"])))).content_hash
    renamed = parse_catalog(encode(minimal_toolhive(fetch2=container()))).content_hash
    assert len({base, changed, renamed}) == 3


def test_hash_is_stable_across_processes() -> None:
    # A fixed document must always hash the same: storage and the API compare hashes across restarts.
    catalog = parse_catalog(encode(minimal_toolhive(fetch=container())))
    assert catalog.content_hash == parse_catalog(catalog.canonical_json()).content_hash
    assert catalog.canonical_json() == parse_catalog(catalog.canonical_json()).canonical_json()
    assert b"\n" not in catalog.canonical_json()
    assert b": " not in catalog.canonical_json()


@pytest.mark.timeout(10)
def test_patterns_cannot_cause_catastrophic_backtracking() -> None:
    hostile = make_filter(include_names=["*a" * 40 + "*b"], exclude_tags=["*x" * 40 + "*y"])
    started = time.perf_counter()
    for _ in range(100):
        assert not hostile.keeps("io.github.acme/" + "a" * 180, ["x" * 200])
    assert time.perf_counter() - started < 1.0


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.text(alphabet="ab.-/*?", min_size=1, max_size=10),
    name=st.text(alphabet="ab.-/", max_size=12),
)
def test_globs_mean_what_fnmatch_means(pattern: str, name: str) -> None:
    assert bool(re.match(glob_to_regex(pattern), name, re.DOTALL)) == fnmatch.fnmatchcase(name, pattern)
