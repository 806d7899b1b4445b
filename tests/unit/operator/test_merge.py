"""Merging several sources' catalogues (`spec.sources`): the pure merge and the parsing job around it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from operator_testdata import PREFIX, toolhive

from mcpreg.catalog import CatalogLimits, parse_catalog
from mcpreg.catalog.served import read_served
from mcpreg_operator.merge import (
    SOURCE_META_KEY,
    Conflict,
    combine_reports,
    conflicts_hash,
    entries_of_source,
    merge_catalogs,
    served_by,
)
from mcpreg_operator.merge_job import REPORTED_CONFLICTS, MergeOptions, SourceInput, prepare_merged
from mcpreg_operator.quarantine import EntryReport
from mcpreg_operator.spec.validation import Validation


def source_of(entry: Any) -> Any:
    return (entry.response_meta or {}).get(SOURCE_META_KEY)


def test_the_first_source_wins_a_name_and_the_conflict_names_both_sources() -> None:
    platform = parse_catalog(toolhive("fetch", "time", description="platform's"))
    team = parse_catalog(toolhive("time", "tickets", description="team's"))
    merged = merge_catalogs([("platform", platform), ("team", team)])
    assert merged.catalog.names() == [PREFIX + "fetch", PREFIX + "time", PREFIX + "tickets"]
    time = merged.catalog.latest(PREFIX + "time")
    assert time is not None and time.server["description"] == "platform's"
    assert merged.conflicts == (Conflict(PREFIX + "time", "platform", "team"),)
    assert {e.name: source_of(e) for e in merged.catalog.entries} == {
        PREFIX + "fetch": "platform",
        PREFIX + "time": "platform",
        PREFIX + "tickets": "team",
    }
    assert served_by(merged.catalog) == {"platform": 2, "team": 1}


def test_list_order_decides_not_the_names() -> None:
    a = parse_catalog(toolhive("fetch", description="zeta's server"))
    b = parse_catalog(toolhive("fetch", description="alpha's server"))
    merged = merge_catalogs([("zeta", a), ("alpha", b)])
    entry = merged.catalog.latest(PREFIX + "fetch")
    assert entry is not None and entry.server["description"] == "zeta's server" and source_of(entry) == "zeta"
    assert merged.conflicts == (Conflict(PREFIX + "fetch", "zeta", "alpha"),)


def test_merging_nothing_is_an_empty_catalogue() -> None:
    merged = merge_catalogs([])
    assert merged.catalog.server_count == 0 and merged.conflicts == ()


def test_conflicts_hash_identifies_the_set_not_its_order() -> None:
    one, two = Conflict("a", "s1", "s2"), Conflict("b", "s1", "s3")
    assert conflicts_hash([]) is None
    assert conflicts_hash([one, two]) == conflicts_hash([two, one])
    assert conflicts_hash([one]) != conflicts_hash([one, two])
    assert conflicts_hash([one]) != conflicts_hash([Conflict("a", "s2", "s1")])


def test_combined_reports_prefix_every_path_with_the_source() -> None:
    report = EntryReport(total_entries=3, skipped_count=1, error_count=2, skipped_hash="sha256:x")
    combined = combine_reports([("a", report), ("b", EntryReport(total_entries=2))])
    assert (combined.total_entries, combined.skipped_count, combined.error_count) == (5, 1, 2)
    assert combined.skipped_hash is not None and combined.skipped_hash != "sha256:x"
    assert combine_reports([("b", EntryReport(total_entries=2))]).skipped_hash is None


def test_a_sources_entries_read_back_from_the_served_document() -> None:
    """After a restart, a failing source's last good entries come from the stored generation."""
    options = _options(("platform", toolhive("fetch", "time")), ("team", toolhive("time", "tickets")))
    prepared = prepare_merged(_data(toolhive("fetch", "time"), toolhive("time", "tickets")), options)
    document = read_served(prepared.data)
    team = entries_of_source(document, "team")
    assert team is not None
    back = parse_catalog(team, format="upstream")
    assert back.names() == [PREFIX + "tickets"]  # its conflicting name was never served from it
    assert all(source_of(e) == "team" for e in back.entries)
    assert entries_of_source(document, "nobody") is None


# --- the parsing job: per-source filters, fallbacks, the registry filter ------------------------


def _input(
    name: str,
    current: bytes | None,
    fallback: bytes | None = None,
    filter_spec: dict[str, Any] | None = None,
    index: int = 0,
) -> SourceInput:
    return SourceInput(
        name=name,
        format="auto",
        filter_spec=filter_spec,
        filter_path=f"spec.sources[{index}].filter",
        current=len(current) if current is not None else None,
        fallback=len(fallback) if fallback is not None else None,
        fallback_format="auto",
    )


def _options(
    *sources: tuple[str, bytes | None] | SourceInput,
    registry_filter: dict[str, Any] | None = None,
    validation: Validation | None = None,
) -> MergeOptions:
    inputs = tuple(s if isinstance(s, SourceInput) else _input(s[0], s[1]) for s in sources)
    return MergeOptions(
        sources=inputs,
        registry_filter=registry_filter,
        registry_filter_path="spec.filter",
        limits=CatalogLimits(),
        validation=validation or Validation(),
    )


def _data(*documents: bytes | None) -> bytes:
    return b"".join(d for d in documents if d is not None)


def test_per_source_filters_apply_before_the_merge_and_the_registry_filter_after() -> None:
    platform = toolhive("time", "old", tag="utility")
    team = toolhive("time", "tickets", "tickets-experimental", tag="team")
    options = _options(
        # platform's own filter drops its `time`: the team's `time` is then no conflict at all
        _input("platform", platform, filter_spec={"names": {"exclude": ["*/time"]}}),
        _input("team", team, filter_spec={"names": {"exclude": ["*-experimental"]}}, index=1),
        registry_filter={"names": {"exclude": ["*/old"]}},
    )
    prepared = prepare_merged(_data(platform, team), options)
    names = {e.name for e in read_served(prepared.data).entries}
    assert names == {PREFIX + "time", PREFIX + "tickets"}
    assert prepared.conflict_count == 0
    assert [(s.name, s.used, s.entries) for s in prepared.sources] == [
        ("platform", "current", 0),
        ("team", "current", 2),
    ]


def test_an_unreadable_document_falls_back_to_the_last_good_one() -> None:
    good, broken = toolhive("fetch"), b"{not json"
    options = _options(_input("platform", broken, fallback=good), ("team", toolhive("tickets")))
    prepared = prepare_merged(_data(broken, good, toolhive("tickets")), options)
    platform, team = prepared.sources
    assert platform.used == "fallback" and platform.entries == 1
    assert platform.refused is not None and platform.refused[0] == "InvalidData"
    assert team.used == "current" and team.refused is None
    assert {e.name for e in read_served(prepared.data).entries} == {PREFIX + "fetch", PREFIX + "tickets"}


def test_a_source_without_any_usable_document_contributes_nothing() -> None:
    options = _options(("platform", None), ("team", toolhive("tickets")))
    prepared = prepare_merged(_data(toolhive("tickets")), options)
    platform = prepared.sources[0]
    assert (platform.used, platform.entries, platform.report) == ("none", 0, None)
    assert prepared.server_count == 1


def test_the_guard_on_invalid_entries_refuses_a_sources_document() -> None:
    bad = json.loads(toolhive("fetch", "broken"))
    bad["servers"]["broken"]["transport"] = "carrier-pigeon"
    data = json.dumps(bad).encode()
    options = _options(("platform", data), validation=Validation.model_validate({"onInvalidEntry": "Reject"}))
    prepared = prepare_merged(data, options)
    (platform,) = prepared.sources
    assert platform.used == "none" and platform.refused is not None
    assert "broken" in platform.refused[1]


def test_conflicts_are_counted_in_full_and_listed_up_to_the_cap() -> None:
    names = [f"s{i:03}" for i in range(REPORTED_CONFLICTS + 5)]
    first, second = toolhive(*names), toolhive(*names)
    prepared = prepare_merged(_data(first, second), _options(("a", first), ("b", second)))
    assert prepared.conflict_count == REPORTED_CONFLICTS + 5
    assert len(prepared.conflicts) == REPORTED_CONFLICTS
    assert prepared.sources[1].conflicts == REPORTED_CONFLICTS + 5 and prepared.sources[1].entries == 0


def test_an_invalid_registry_filter_is_the_only_error_raised() -> None:
    from mcpreg.catalog import CatalogError

    with pytest.raises(CatalogError, match=r"spec\.filter"):
        prepare_merged(
            toolhive("x"), _options(("a", toolhive("x")), registry_filter={"names": {"include": ["["]}})
        )
