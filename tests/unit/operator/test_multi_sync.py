"""A sync of several sources (`spec.sources`): one failing source keeps its last good entries and stops
no other, in memory and after a restart; what status and Events become. Sources and storage are test
doubles; the pipeline (parse, merge, render, store) is the real one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from operator_testdata import PREFIX, MemoryStore, toolhive
from pydantic import ValidationError

from mcpreg.catalog.served import read_served
from mcpreg_operator import decisions
from mcpreg_operator.merge import SOURCE_META_KEY
from mcpreg_operator.multi_sync import SourceMemo, compose_revision, run_multi_sync
from mcpreg_operator.phase import derive_overall
from mcpreg_operator.source_status import (
    NAME_CONFLICTS,
    SOURCE_FAILED,
    SOURCE_RECOVERED,
    SOURCES_DEGRADED,
    source_events,
)
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.spec.named_source import NamedSource
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import ConditionType, MCPRegistryStatus, Phase, SourceState
from mcpreg_operator.sync import LastGood, SourceSnapshot, SyncFailure, SyncOutcome

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
SPEC = MCPRegistrySpec.model_validate(
    {
        "sources": [
            {"name": "platform", "type": "configmap", "configMap": {"name": "platform-servers"}},
            {
                "name": "team",
                "type": "git",
                "git": {"repository": "https://git.example.com/team.git", "path": "registry.json"},
            },
        ]
    }
)


class Source:
    """A source whose revision, document and failure the test sets."""

    def __init__(self, name: str, document: bytes, revision: str = "r1") -> None:
        self.name, self.document, self.rev = name, document, revision
        self.error: Exception | None = None
        self.fetches = 0

    def describe(self) -> str:
        return f"test source {self.name}"

    async def revision(self) -> str:
        if self.error is not None:
            raise self.error
        return self.rev

    async def fetch(self) -> SourceSnapshot:
        if self.error is not None:
            raise self.error
        self.fetches += 1
        return SourceSnapshot(revision=self.rev, data=self.document, description=self.describe())


class Registry:
    """What the controller keeps between passes: status, memos, storage."""

    def __init__(self, spec: MCPRegistrySpec = SPEC) -> None:
        self.spec = spec
        self.sources = {s.name: Source(s.name, b"") for s in spec.named_sources()}
        self.store = MemoryStore()
        self.memos: dict[str, SourceMemo] = {}
        self.status = MCPRegistryStatus()
        self.events: list[tuple[str, str, str]] = []

    async def sync(self) -> SyncOutcome:
        sync = self.status.sync_status
        outcome = await run_multi_sync(
            spec=self.spec,
            sources=[(named, self.sources[named.name]) for named in self.spec.named_sources()],
            store=self.store,
            last_good=LastGood(
                sync.revision if sync else None,
                sync.last_sync_hash if sync else None,
                sync.spec_hash if sync else None,
            ),
            previous={s.name: s.revision for s in self.status.sources or ()},
            memos=self.memos,
        )
        self.events = source_events(self.status, outcome)
        decisions.record_success(self.status, outcome, spec=self.spec, generation=1, started=NOW, now=NOW)
        derive_overall(self.status, api_enabled=False, generation=1)
        return outcome

    def served(self) -> dict[str, tuple[str, str]]:
        """name -> (description, source) of what storage holds."""
        assert self.store.stored is not None
        out = {}
        for entry in read_served(self.store.stored.data).entries:
            body = json.loads(entry.body)
            out[entry.name] = (body["server"]["description"], body["_meta"][SOURCE_META_KEY])
        return out

    def source_status(self, name: str) -> Any:
        return next(s for s in self.status.sources or () if s.name == name)


def unreachable(what: str = "git.example.com") -> SourceError:
    return SourceError(SourceErrorKind.UNREACHABLE, f"cannot reach {what}: connection refused")


@pytest.fixture
def registry() -> Registry:
    r = Registry()
    r.sources["platform"].document = toolhive("fetch", "time", description="the platform's server")
    r.sources["team"].document = toolhive("time", "tickets", description="the team's own server")
    return r


async def test_a_merge_serves_the_first_sources_entry_and_reports_the_conflict(registry: Registry) -> None:
    outcome = await registry.sync()
    assert registry.served() == {
        PREFIX + "fetch": ("the platform's server", "platform"),
        PREFIX + "time": ("the platform's server", "platform"),
        PREFIX + "tickets": ("the team's own server", "team"),
    }
    assert outcome.server_count == 3
    status = registry.status
    assert status.conflicts is not None and status.conflicts.count == 1
    assert [(c.name, c.source, c.shadowed) for c in status.conflicts.items] == [
        (PREFIX + "time", "platform", "team")
    ]
    assert [
        (s.name, s.type, s.state, s.revision, s.entry_count, s.conflicts) for s in status.sources or ()
    ] == [
        ("platform", "configmap", SourceState.CURRENT, "r1", 2, 0),
        ("team", "git", SourceState.CURRENT, "r1", 1, 1),
    ]
    assert all(s.last_success_time == NOW and s.last_error is None for s in status.sources or ())
    synced = status.condition(ConditionType.SYNCED)
    assert synced is not None and synced.status == "True"
    (event,) = registry.events
    assert event[:2] == ("Warning", NAME_CONFLICTS)
    assert f"{PREFIX}time (served from platform, also in team)" in event[2]
    # The same conflicts again: no second Event.
    registry.sources["team"].rev = "r2"
    await registry.sync()
    assert registry.events == []


async def test_a_failing_source_keeps_its_last_good_entries_and_stops_no_other(registry: Registry) -> None:
    await registry.sync()
    registry.sources["team"].error = unreachable()
    registry.sources["platform"].document = toolhive("fetch", description="the platform's new text")
    registry.sources["platform"].rev = "r2"
    await registry.sync()
    assert registry.served() == {
        PREFIX + "fetch": ("the platform's new text", "platform"),
        PREFIX + "time": ("the team's own server", "team"),  # no longer shadowed by the platform
        PREFIX + "tickets": ("the team's own server", "team"),
    }
    status = registry.status
    team = registry.source_status("team")
    assert (team.state, team.revision, team.last_error_reason) == (
        SourceState.LAST_GOOD,
        "r1",
        "SourceUnreachable",
    )
    assert team.last_error is not None and "connection refused" in team.last_error
    assert team.last_success_time == NOW
    assert registry.source_status("platform").state is SourceState.CURRENT
    synced = status.condition(ConditionType.SYNCED)
    assert synced is not None and (synced.status, synced.reason) == ("False", SOURCES_DEGRADED)
    assert "team" in synced.message and "connection refused" in synced.message
    ready = status.condition(ConditionType.READY)
    assert ready is not None and ready.status == "True" and status.phase is Phase.READY
    assert [e[:2] for e in registry.events] == [("Warning", SOURCE_FAILED)]

    # Still failing the same way: no new Event; the stored catalogue is not rewritten.
    writes = registry.store.writes
    await registry.sync()
    assert registry.events == [] and registry.store.writes == writes

    registry.sources["team"].error = None
    registry.sources["team"].rev = "r3"
    await registry.sync()
    assert registry.source_status("team").state is SourceState.CURRENT
    assert [e[:2] for e in registry.events] == [("Normal", SOURCE_RECOVERED)]
    synced = registry.status.condition(ConditionType.SYNCED)
    assert synced is not None and synced.status == "True"


async def test_a_failing_source_is_retried_on_the_backoff_not_at_the_next_interval() -> None:
    spec = MCPRegistrySpec.model_validate(
        {**SPEC.model_dump(by_alias=True), "syncPolicy": {"interval": "1h"}}
    )
    registry = Registry(spec)
    registry.sources["platform"].document = toolhive("fetch", description="the platform's server")
    registry.sources["team"].document = toolhive("tickets", description="the team's own server")
    await registry.sync()
    assert decisions.sync_due_at(spec, registry.status, NOW) == NOW + timedelta(hours=1)

    registry.sources["team"].error = unreachable()
    delays = []
    for _ in range(4):
        await registry.sync()
        due = decisions.sync_due_at(spec, registry.status, NOW)
        assert due is not None
        delays.append((due - NOW).total_seconds())
    assert delays == [5.0, 10.0, 20.0, 40.0]  # the failed sync's backoff, though every sync succeeded
    assert registry.source_status("team").consecutive_failures == 4
    assert registry.source_status("platform").consecutive_failures is None
    observed = decisions.Observed(
        now=NOW + timedelta(seconds=40), generation=1, trigger=None, first_pass=False
    )
    assert decisions.sync_reason(spec, registry.status, observed) == "Retry"

    registry.sources["team"].error = None
    registry.sources["team"].rev = "r2"
    await registry.sync()
    assert registry.source_status("team").consecutive_failures is None
    assert decisions.sync_due_at(spec, registry.status, NOW) == NOW + timedelta(hours=1)


async def test_after_a_restart_a_failing_sources_entries_come_from_storage(registry: Registry) -> None:
    await registry.sync()
    registry.memos.clear()  # a new process: nothing in memory
    registry.sources["team"].error = unreachable()
    registry.sources["platform"].rev = "r2"  # something to do: the full path
    registry.sources["platform"].document = toolhive(
        "fetch", "time", "notes", description="the platform's server"
    )
    await registry.sync()
    assert registry.store.reads == 1
    served = registry.served()
    assert served[PREFIX + "tickets"] == ("the team's own server", "team")
    assert served[PREFIX + "notes"][1] == "platform"
    assert registry.source_status("team").state is SourceState.LAST_GOOD


async def test_a_refused_document_is_not_downloaded_again_at_the_same_revision(registry: Registry) -> None:
    await registry.sync()
    registry.sources["team"].document = b"{ not json"
    registry.sources["team"].rev = "r2"
    await registry.sync()
    team = registry.source_status("team")
    assert team.state is SourceState.LAST_GOOD and team.last_error_reason == "InvalidData"
    assert PREFIX + "tickets" in registry.served()
    valid = registry.status.condition(ConditionType.DATA_VALID)
    assert valid is not None and (valid.status, valid.reason) == ("False", SOURCES_DEGRADED)
    fetches = registry.sources["team"].fetches
    await registry.sync()
    assert registry.sources["team"].fetches == fetches
    assert registry.source_status("team").last_error_reason == "InvalidData"


async def test_a_source_that_never_worked_serves_nothing_and_the_others_are_served(
    registry: Registry,
) -> None:
    registry.sources["team"].error = unreachable()
    await registry.sync()
    assert set(registry.served()) == {PREFIX + "fetch", PREFIX + "time"}
    team = registry.source_status("team")
    assert (team.state, team.revision, team.last_success_time) == (SourceState.MISSING, None, None)


async def test_when_every_source_fails_the_sync_fails(registry: Registry) -> None:
    for source in registry.sources.values():
        source.error = unreachable()
    with pytest.raises(SyncFailure, match="every source failed") as caught:
        await registry.sync()
    assert "source platform" in caught.value.message and "source team" in caught.value.message
    assert registry.store.stored is None


def test_the_registry_revision_depends_on_every_source_and_their_order() -> None:
    one = compose_revision([("a", "r1"), ("b", "r2")])
    assert len(one) == 40
    assert one == compose_revision([("a", "r1"), ("b", "r2")])
    assert one != compose_revision([("b", "r2"), ("a", "r1")])
    assert one != compose_revision([("a", "r1"), ("b", None)])


# --- the spec's two forms -------------------------------------------------------------------------


def test_exactly_one_of_source_and_sources() -> None:
    with pytest.raises(ValidationError, match="exactly one of source and sources"):
        MCPRegistrySpec.model_validate({})
    both = {
        "source": {"type": "configmap", "configMap": {"name": "a"}},
        "sources": [{"name": "a", "type": "configmap", "configMap": {"name": "a"}}],
    }
    with pytest.raises(ValidationError, match="exactly one of source and sources"):
        MCPRegistrySpec.model_validate(both)


def test_source_names_are_unique_dns_labels_and_at_most_sixteen() -> None:
    item = {"type": "configmap", "configMap": {"name": "a"}}
    with pytest.raises(ValidationError, match="unique"):
        MCPRegistrySpec.model_validate({"sources": [{"name": "a", **item}, {"name": "a", **item}]})
    with pytest.raises(ValidationError):
        MCPRegistrySpec.model_validate({"sources": [{"name": "Not_A_Label", **item}]})
    with pytest.raises(ValidationError):
        MCPRegistrySpec.model_validate({"sources": [{"name": f"s{i}", **item} for i in range(17)]})
    with pytest.raises(ValidationError):
        MCPRegistrySpec.model_validate({"sources": []})


def test_the_one_source_form_is_one_named_source() -> None:
    spec = MCPRegistrySpec.model_validate({"source": {"type": "configmap", "configMap": {"name": "a"}}})
    (named,) = spec.named_sources()
    assert isinstance(named, NamedSource) and named.name == "source" and named.filter is None
    assert SPEC.named_sources()[1].name == "team"
    with pytest.raises(ValueError, match=r"spec\.sources"):
        _ = SPEC.single_source


def test_a_one_source_outcome_clears_the_sources_status() -> None:
    status = MCPRegistryStatus.model_validate({"sources": [{"name": "a", "type": "git", "state": "Current"}]})
    outcome = SyncOutcome(
        revision="r",
        content_hash="sha256:" + "0" * 64,
        server_count=1,
        written=True,
        fetched=True,
        storage_location={"type": "configmap", "configMaps": ["x"]},
        source="s",
    )
    spec = MCPRegistrySpec.model_validate({"source": {"type": "configmap", "configMap": {"name": "a"}}})
    decisions.record_success(status, outcome, spec=spec, generation=1, started=NOW, now=NOW + timedelta(1))
    assert status.sources is None and status.conflicts is None
