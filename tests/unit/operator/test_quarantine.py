"""Per-entry quarantine in the operator (issue 14), as pure functions: the compact report of what a
reading set aside, spec.validation's verdict on it (Skip, Reject, the guard), and what status and
Events say about it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mcpreg.catalog import CatalogIssue
from mcpreg.catalog.quarantine import CatalogReading, SkippedEntry, read_catalog
from mcpreg_operator import decisions, quarantine
from mcpreg_operator.phase import derive_overall
from mcpreg_operator.quarantine import EntryReport, refusal, skipped_event, summarise
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import ConditionStatus, ConditionType, MCPRegistryStatus, Phase
from mcpreg_operator.spec.validation import OnInvalidEntry, Validation
from mcpreg_operator.sync import SyncFailure, SyncOutcome, SyncStage

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
SKIP = Validation()
REJECT = Validation(on_invalid_entry=OnInvalidEntry.REJECT)


def entry(name: str, *messages: str, field: str = "transport") -> SkippedEntry:
    path = f"servers.{name}"
    issues = tuple(CatalogIssue(name, f"{path}.{field}", message) for message in messages or ("is bad",))
    return SkippedEntry(name=name, path=path, issues=issues)


EMPTY = read_catalog(b'{"version": "1.0.0", "last_updated": "2026-02-18T00:24:11Z", "servers": {}}').catalog


def report(total: int, *skipped: SkippedEntry, warnings: int = 0) -> EntryReport:
    """The report of a reading of `total` entries of which `skipped` were left out."""
    issues = tuple(
        CatalogIssue(f"w{i}", f"servers.w{i}.tier", "missing: defaulted", severity="warning")
        for i in range(warnings)
    )
    return summarise(CatalogReading(catalog=EMPTY, skipped=skipped, warnings=issues, total_entries=total))


# --- the report that comes back from the parse ------------------------------------------------------


def hundred_entries(shared_data: Path) -> dict[str, Any]:
    """A real ToolHive catalogue of exactly 100 entries (79 container servers, 21 remote ones)."""
    document = json.loads((shared_data / "toolhive" / "registry-2026-02-18.json").read_text())
    remote = dict(list(document["remote_servers"].items())[:21])
    document["remote_servers"] = remote
    assert len(document["servers"]) + len(remote) == 100
    return dict(document)


def test_one_broken_entry_of_a_hundred_is_named_and_the_rest_kept(require_shared_data: Path) -> None:
    document = hundred_entries(require_shared_data)
    broken = sorted(document["servers"])[10]
    document["servers"][broken]["transport"] = "carrier-pigeon"
    reading = read_catalog(json.dumps(document))
    summary = summarise(reading)
    assert (summary.total_entries, summary.skipped_count, summary.servable_entries) == (100, 1, 99)
    assert reading.catalog.server_count == 99
    [named] = summary.skipped
    assert (named.name, named.path) == (broken, f"servers.{broken}")
    assert named.issues[0].path == f"servers.{broken}.transport"
    assert summary.skipped_hash is not None and summary.skipped_hash.startswith("sha256:")
    assert refusal(summary, SKIP) is None  # 1% is well within the guard
    assert refusal(summary, REJECT) is not None


def test_the_report_stays_small_however_much_is_broken() -> None:
    skipped = tuple(entry(f"s{i}", *(f"problem {j}" for j in range(8))) for i in range(40))
    summary = report(100, *skipped, warnings=30)
    assert (summary.skipped_count, summary.error_count, summary.warning_count) == (40, 320, 30)
    assert len(summary.skipped) == quarantine.REPORTED_ENTRIES
    assert all(len(e.issues) == quarantine.REPORTED_ISSUES for e in summary.skipped)
    assert len(summary.warnings) == quarantine.REPORTED_WARNINGS
    assert summary.skipped_hash == quarantine.skipped_set_hash(skipped)  # of the whole set


def test_the_skipped_set_hash_names_entries_not_reasons() -> None:
    a, b = entry("a", "one reason"), entry("b")
    assert quarantine.skipped_set_hash([a, b]) == quarantine.skipped_set_hash([b, entry("a", "another")])
    assert quarantine.skipped_set_hash([a]) != quarantine.skipped_set_hash([a, b])
    assert quarantine.skipped_set_hash([]) is None


# --- the verdict -------------------------------------------------------------------------------------


def test_nothing_skipped_is_never_refused() -> None:
    for validation in (SKIP, REJECT, Validation(max_skipped_percent=0)):
        assert refusal(report(0), validation) is None  # an empty document stays an empty catalogue
        assert refusal(report(10), validation) is None


def test_reject_fails_on_one_error_and_lists_the_first_problems() -> None:
    skipped = (entry("a", "must be a string (got 1)"), *(entry(f"b{i}", "x", "y") for i in range(4)))
    refused = refusal(report(100, *skipped), REJECT)
    assert refused is not None and refused.reason == "InvalidData"
    assert refused.message.startswith(
        "servers.a.transport: must be a string (got 1); servers.b0.transport: x"
    )
    assert refused.message.endswith("(and 4 more)")  # 9 problems, 5 listed


def test_the_guard_share() -> None:
    fifty = report(100, *(entry(f"s{i}") for i in range(50)))
    assert refusal(fifty, SKIP) is None  # exactly the limit is allowed
    fifty_one = report(100, *(entry(f"s{i}") for i in range(51)))
    refused = refusal(fifty_one, SKIP)
    assert refused is not None and refused.reason == "TooManyEntriesSkipped"
    assert refused.message.startswith("51 of 100 entries skipped as invalid: servers.s0.transport: is bad")
    assert "(and 46 more entries)" in refused.message
    assert "more than spec.validation.maxSkippedPercent (50%), so nothing was stored" in refused.message
    assert refusal(fifty_one, Validation(max_skipped_percent=60)) is None
    strict = refusal(report(1000, entry("one")), Validation(max_skipped_percent=0))
    assert strict is not None and strict.reason == "TooManyEntriesSkipped"


def test_the_guard_refuses_a_sync_that_leaves_nothing() -> None:
    everything = report(2, entry("a"), entry("b"))
    for validation in (SKIP, Validation(max_skipped_percent=100)):
        refused = refusal(everything, validation)
        assert refused is not None and refused.reason == "NoValidEntries"
        assert refused.message.startswith("no entry could be served, nothing was stored: 2 of 2 entries")


# --- what status and Events say ----------------------------------------------------------------------

SPEC = MCPRegistrySpec.model_validate({"source": {"type": "configmap", "configMap": {"name": "data"}}})


def outcome(entries: EntryReport | None, servers: int = 99, *, fetched: bool = True) -> SyncOutcome:
    return SyncOutcome(
        revision="b" * 40,
        content_hash="sha256:" + "2" * 64,
        server_count=servers if fetched else -1,
        written=fetched,
        fetched=fetched,
        storage_location={"type": "configmap", "configMaps": ["reg-data"]},
        source="configmap data",
        entries=entries,
    )


def succeed(status: MCPRegistryStatus, result: SyncOutcome) -> dict[str, tuple[str, str, str]]:
    decisions.record_success(status, result, spec=SPEC, generation=2, started=NOW, now=NOW)
    derive_overall(status, api_enabled=False, generation=2)
    assert all(c.observed_generation == 2 for c in status.conditions)
    return {c.type: (c.status.value, c.reason, c.message) for c in status.conditions}


def test_a_sync_that_skipped_entries_succeeds_and_names_them() -> None:
    status = MCPRegistryStatus()
    conditions = succeed(status, outcome(report(100, entry("broken", "must be one of 'stdio'"), warnings=2)))
    sync = status.sync_status
    assert sync is not None
    assert (sync.server_count, sync.skipped_count, sync.warning_count) == (99, 1, 2)
    assert sync.skipped_hash == quarantine.skipped_set_hash([entry("broken")])
    assert status.phase is Phase.READY and conditions["Ready"][0] == "True"
    assert conditions["Synced"][:2] == ("True", "Synced")
    valid, reason, message = conditions["DataValid"]
    assert (valid, reason) == ("False", "EntriesSkipped")
    assert message == (
        "1 of 100 entries skipped as invalid: servers.broken.transport: must be one of 'stdio'; "
        "serving 99 servers; "
        "2 warnings: servers.w0.tier: missing: defaulted; servers.w1.tier: missing: defaulted"
    )
    assert "; 1 invalid entry skipped" in (status.message or "")


def test_warnings_alone_keep_data_valid() -> None:
    status = MCPRegistryStatus()
    conditions = succeed(status, outcome(report(3, warnings=1), servers=3))
    assert conditions["DataValid"] == (
        "True",
        "ValidWithWarnings",
        "3 valid servers; 1 warning: servers.w0.tier: missing: defaulted",
    )
    conditions = succeed(status, outcome(report(3), servers=3))
    assert conditions["DataValid"] == ("True", "Valid", "3 valid servers")
    assert status.sync_status is not None and status.sync_status.skipped_count == 0


def test_an_unchanged_source_keeps_what_the_reading_sync_said() -> None:
    status = MCPRegistryStatus()
    first = succeed(status, outcome(report(100, entry("broken"))))
    again = succeed(status, outcome(None, fetched=False))
    assert again["DataValid"] == first["DataValid"]
    assert status.sync_status is not None and status.sync_status.skipped_count == 1


def test_an_unchanged_source_after_a_failure_describes_the_stored_data_from_status() -> None:
    # The source went back to the stored revision after a refused one: DataValid must describe the
    # stored data again, not the refused data.
    status = MCPRegistryStatus()
    succeed(status, outcome(report(100, entry("broken"))))
    refused = SyncFailure(SyncStage.DATA, "TooManyEntriesSkipped", "60 of 100 entries skipped …")
    decisions.record_failure(status, refused, generation=2, started=NOW, now=NOW)
    assert status.condition(ConditionType.DATA_VALID).reason == "TooManyEntriesSkipped"  # type: ignore[union-attr]
    conditions = succeed(status, outcome(None, fetched=False))
    assert conditions["DataValid"] == (
        "False",
        "EntriesSkipped",
        "1 entry skipped as invalid; serving 99 servers",
    )
    assert status.condition(ConditionType.SYNCED).status is ConditionStatus.TRUE  # type: ignore[union-attr]


def test_a_refused_sync_keeps_the_stored_counts() -> None:
    status = MCPRegistryStatus()
    succeed(status, outcome(report(100, entry("broken"))))
    decisions.record_failure(
        status,
        SyncFailure(SyncStage.DATA, "NoValidEntries", "no entry …"),
        generation=2,
        started=NOW,
        now=NOW,
    )
    derive_overall(status, api_enabled=False, generation=2)
    sync = status.sync_status
    assert sync is not None and (sync.server_count, sync.skipped_count) == (99, 1)
    assert status.phase is Phase.FAILED
    assert "still serving the last good catalogue (99 servers" in (sync.message or "")


def test_one_warning_event_per_skipped_set() -> None:
    one = report(100, entry("broken"))
    message = skipped_event(one, None)
    assert message is not None and message.startswith("1 of 100 entries skipped as invalid: servers.broken")
    assert skipped_event(one, one.skipped_hash) is None  # the same entries still skipped: no repeat
    assert skipped_event(report(100, entry("broken", "another reason")), one.skipped_hash) is None
    assert skipped_event(report(100, entry("broken"), entry("other")), one.skipped_hash) is not None
    assert skipped_event(report(100), one.skipped_hash) is None  # nothing skipped: nothing to say
    assert skipped_event(None, None) is None  # nothing read


def test_messages_stay_bounded_whatever_the_keys() -> None:
    """An entry key of 100,000 characters (itself the problem) must not make a condition message too
    long for status (32 KiB) or a Reject message unbounded."""
    huge = tuple(entry("k" * 100_000 + str(i), "name is too long") for i in range(10))
    summary = report(20, *huge)
    conditions = succeed(MCPRegistryStatus(), outcome(summary, servers=10))
    assert len(conditions["DataValid"][2]) < 4 * 1024
    refused = refusal(summary, REJECT)
    assert (
        refused is not None and len(refused.message) < 4 * 1024 and refused.message.endswith("(and 5 more)")
    )


@pytest.mark.parametrize("value", [-1, 101])
def test_max_skipped_percent_bounds(value: int) -> None:
    with pytest.raises(ValueError):
        Validation(max_skipped_percent=value)


def test_validation_defaults_and_wire_names() -> None:
    assert SPEC.validation == Validation(on_invalid_entry=OnInvalidEntry.SKIP, max_skipped_percent=50)
    parsed = MCPRegistrySpec.model_validate(
        {**SPEC.model_dump(mode="json"), "validation": {"onInvalidEntry": "Reject", "maxSkippedPercent": 5}}
    )
    assert parsed.validation == Validation(on_invalid_entry=OnInvalidEntry.REJECT, max_skipped_percent=5)
    assert parsed.model_dump(mode="json")["validation"] == {
        "onInvalidEntry": "Reject",
        "maxSkippedPercent": 5,
    }
