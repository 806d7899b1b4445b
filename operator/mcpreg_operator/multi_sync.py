"""One sync of an MCPRegistry with several sources (`spec.sources`, issue 15).

The same pipeline as `sync.run_sync` for each source (revision, fetch, parse and validate, quarantine,
filter), then a merge by server name in list order (`merge`: the first source wins a name, the
conflict is reported), the registry-wide filter, and one stored generation. A source that fails
(unreachable, an invalid or unsigned document, ...) does not stop the others: its last good document
stands in for it, from this process's memory (`SourceMemo`, kept by the controller) or, after a
restart, from the stored generation, whose entries each name their source (`merge.entries_of_source`).
A source that never worked contributes nothing; when no source contributes anything the sync fails as
a one-source sync does, and the last good catalogue stays served.

Change detection: the registry's revision is a hash of every source's revision (`compose_revision`),
a failing source counting with the revision of the entries still served from it. When it, the spec
and the stored hash are unchanged nothing is downloaded, even while a source is down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from mcpreg.catalog import CatalogError, CatalogLimits
from mcpreg.catalog.detect import FormatChoice
from mcpreg.catalog.served import read_served
from mcpreg.storage.interfaces import CatalogStore
from mcpreg.storage.model import StoredCatalog
from mcpreg_operator.merge import entries_of_source
from mcpreg_operator.merge_job import MergeOptions, PreparedMerge, SourceInput
from mcpreg_operator.parsing import FILTER_PATH, ParsingFailed, prepare_merged_stored
from mcpreg_operator.quarantine import INVALID_DATA
from mcpreg_operator.spec.named_source import NamedSource
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import SourceState
from mcpreg_operator.sync import (
    DEFAULT_OPTIONS,
    CatalogSource,
    ConflictReport,
    LastGood,
    SourceReport,
    SourceSnapshot,
    SyncFailure,
    SyncOptions,
    SyncOutcome,
    SyncStage,
    data_spec_hash,
    failure_from_error,
    filter_spec,
    render_issues,
    sign_and_store,
    stored_outcome,
    unchanged_outcome,
)
from mcpreg_operator.sync_metrics import SyncStep, timed_step

log = logging.getLogger(__name__)

#: Sources of one registry read at once (revision checks, downloads).
SOURCE_CONCURRENCY = 4
#: The format of a last good document recovered from storage: a v0.1 list of the served entries.
RECOVERED_FORMAT: FormatChoice = "upstream"

T = TypeVar("T")


@dataclass(frozen=True)
class GoodDocument:
    """A source's document: its revision, bytes and format. `complete` is False for one recovered from
    storage, which lacks the entries that lost a conflict or the registry's filter: it stands in for a
    failing source, never for a working one."""

    revision: str
    data: bytes
    format: FormatChoice
    complete: bool = True


@dataclass
class SourceMemo:
    """What this process remembers of one source between syncs (the controller keeps them, by name)."""

    settings: str  # the source's spec, as JSON: a memo of other settings (another repository) is void
    good: GoodDocument | None = None
    # The latest revision whose document was refused, and why: while the source stays at it, the
    # refusal stands without downloading the document again.
    refused_revision: str | None = None
    refused: SyncFailure | None = None


@runtime_checkable
class ReadableStore(Protocol):
    """A store that can read back its published generation (both backends' writers can)."""

    async def read(self) -> StoredCatalog | None: ...


def _memo(memos: dict[str, SourceMemo], named: NamedSource) -> SourceMemo:
    settings = named.model_dump_json(by_alias=True, exclude={"filter"})
    memo = memos.get(named.name)
    if memo is None or memo.settings != settings:
        memo = memos[named.name] = SourceMemo(settings)
    return memo


class FailedSource:
    """Stands in for a source that cannot even be built (a bad reference): every call raises why, so
    that it fails alone."""

    def __init__(self, error: Exception, description: str) -> None:
        self.error = error
        self.description = description

    def describe(self) -> str:
        return self.description

    async def revision(self) -> str:
        raise self.error

    async def fetch(self) -> SourceSnapshot:
        raise self.error


def compose_revision(revisions: Sequence[tuple[str, str | None]]) -> str:
    """The registry's revision: a hash of (source name, revision) in list order (40 hex digits, like
    a commit, so messages show its first 12 as they show a one-source revision)."""
    canonical = json.dumps([[name, revision] for name, revision in revisions], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


@dataclass
class _Part:
    """One source during a sync."""

    named: NamedSource
    source: CatalogSource
    memo: SourceMemo
    previous: str | None  # the revision status says is served from it
    revision: str | None = None  # what it said now
    failure: SyncFailure | None = None
    current: GoodDocument | None = None  # its document at `revision`
    fallback: GoodDocument | None = None  # its last good one, used when `current` cannot be

    @property
    def name(self) -> str:
        return self.named.name

    @property
    def effective_revision(self) -> str | None:
        """The revision whose entries a sync with nothing new would serve from this source."""
        return self.revision if self.failure is None else self.previous


async def _guarded(call: Callable[[], Awaitable[T]], slots: asyncio.Semaphore, name: str) -> T | SyncFailure:
    """`call()`, or the failure it raised as a `SyncFailure` (one source's failure stops no other)."""
    async with slots:
        try:
            return await call()
        except Exception as exc:
            failure = failure_from_error(exc, SyncStage.SOURCE)
            if failure.stage is SyncStage.INTERNAL:
                log.exception("source %s: unexpected error", name)
            return failure


async def run_multi_sync(
    *,
    spec: MCPRegistrySpec,
    sources: Sequence[tuple[NamedSource, CatalogSource]],
    store: CatalogStore,
    last_good: LastGood,
    previous: Mapping[str, str | None],
    memos: dict[str, SourceMemo],
    options: SyncOptions = DEFAULT_OPTIONS,
) -> SyncOutcome:
    """Run the pipeline once for every source of `sources` (in `spec.sources` order). `previous`: per
    source, the revision status says is served; `memos`: this process's memory of each source, by
    name, updated in place."""
    spec_hash = data_spec_hash(spec)
    slots = asyncio.Semaphore(SOURCE_CONCURRENCY)
    parts = [_Part(named, source, _memo(memos, named), previous.get(named.name)) for named, source in sources]
    for gone in set(memos) - {named.name for named, _ in sources}:
        del memos[gone]
    with timed_step(SyncStep.REVISION):
        revisions = await asyncio.gather(*(_guarded(p.source.revision, slots, p.name) for p in parts))
    for part, revision in zip(parts, revisions, strict=True):
        if isinstance(revision, SyncFailure):
            part.failure = revision
        elif revision == part.memo.refused_revision and part.memo.refused is not None:
            part.revision, part.failure = revision, part.memo.refused  # refused before: still refused
        else:
            part.revision = revision
    composed = compose_revision([(p.name, p.effective_revision) for p in parts])
    if last_good.matches(composed, spec_hash, options.signer):
        unchanged = await unchanged_outcome(
            store, last_good, revision=composed, source=_describe(parts), sources=_unchanged_reports(parts)
        )
        if unchanged is not None:
            return unchanged

    if options.on_fetch is not None:
        await options.on_fetch()
    await _read_documents(parts, slots)
    await _recover(parts, store)
    with timed_step(SyncStep.PREPARE):
        stored, merged = await _prepare(spec, parts, options.limits, options.executor)
    reports = _reports(parts, merged)
    stored = dataclasses.replace(stored, revision=compose_revision([(r.name, r.revision) for r in reports]))
    if all(report.state is SourceState.MISSING for report in reports):
        failures = [r.failure for r in reports if r.failure is not None]
        first = failures[0] if failures else SyncFailure(SyncStage.DATA, INVALID_DATA, "no source")
        detail = "; ".join(f"source {r.name}: {r.failure.message}" for r in reports if r.failure is not None)
        raise SyncFailure(first.stage, first.reason, f"every source failed: {detail}")
    stored, result = await sign_and_store(stored, store, options)
    _remember(parts, merged, reports)
    return stored_outcome(
        stored,
        result,
        source=_describe(parts),
        entries=merged.entries,
        signer=options.signer,
        sources=tuple(reports),
        conflicts=ConflictReport(merged.conflict_count, merged.conflicts_hash, merged.conflicts),
    )


def _describe(parts: Sequence[_Part]) -> str:
    return f"{len(parts)} sources ({', '.join(p.name for p in parts)})"


def _unchanged_reports(parts: Sequence[_Part]) -> tuple[SourceReport, ...]:
    """The sources after a sync that found nothing new: what was served is served still."""
    return tuple(
        SourceReport(
            name=p.name,
            type=p.named.type.value,
            description=p.source.describe(),
            state=_state(p.failure is None, p.previous is not None),
            revision=p.effective_revision,
            entries=None,
            conflicts=None,
            failure=p.failure,
        )
        for p in parts
    )


def _state(current: bool, served: bool) -> SourceState:
    if current:
        return SourceState.CURRENT
    return SourceState.LAST_GOOD if served else SourceState.MISSING


async def _read_documents(parts: Sequence[_Part], slots: asyncio.Semaphore) -> None:
    """Each working source's document: the one in memory when its revision has not moved, else
    downloaded. A download that fails is that source's failure."""
    to_fetch = []
    for part in parts:
        good = part.memo.good
        if part.failure is not None:
            continue
        if good is not None and good.complete and good.revision == part.revision:
            part.current = good
        else:
            to_fetch.append(part)
    with timed_step(SyncStep.FETCH):
        snapshots = await asyncio.gather(*(_guarded(p.source.fetch, slots, p.name) for p in to_fetch))
    for part, snapshot in zip(to_fetch, snapshots, strict=True):
        if isinstance(snapshot, SyncFailure):
            part.failure = snapshot
        else:
            assert isinstance(snapshot, SourceSnapshot) and snapshot.data is not None
            part.revision = snapshot.revision
            part.current = GoodDocument(snapshot.revision, snapshot.data, part.named.format.value)


async def _recover(parts: Sequence[_Part], store: CatalogStore) -> None:
    """Each source's fallback: its last good document in memory, or (after a restart, for a source
    status says is served) its entries in the stored generation. Read from storage only when needed."""
    missing = []
    for part in parts:
        good = part.memo.good
        if good is not None and good is not part.current:
            part.fallback = good
        elif good is None and part.previous is not None:
            missing.append(part)
    if not missing or not isinstance(store, ReadableStore):
        return
    try:
        stored = await store.read()
        if stored is None:
            return
        document = await asyncio.to_thread(read_served, stored.data)
        for part in missing:
            data = await asyncio.to_thread(entries_of_source, document, part.name)
            if data is not None and part.previous is not None:
                part.fallback = GoodDocument(part.previous, data, RECOVERED_FORMAT, complete=False)
    except Exception as exc:  # nothing to fall back on; the source's failure says why it needs it
        log.warning("cannot read the stored catalogue back for the sources' last good entries: %s", exc)


async def _prepare(
    spec: MCPRegistrySpec, parts: Sequence[_Part], limits: CatalogLimits, executor: Executor | None
) -> tuple[StoredCatalog, PreparedMerge]:
    chunks: list[bytes] = []
    inputs = []
    for index, part in enumerate(parts):
        current, fallback = part.current, part.fallback
        inputs.append(
            SourceInput(
                name=part.name,
                format=current.format if current is not None else "auto",
                filter_spec=filter_spec(part.named.filter),
                filter_path=f"spec.sources[{index}].filter",
                current=len(current.data) if current is not None else None,
                fallback=len(fallback.data) if fallback is not None else None,
                fallback_format=fallback.format if fallback is not None else "auto",
            )
        )
        chunks.extend(document.data for document in (current, fallback) if document is not None)
    options = MergeOptions(
        sources=tuple(inputs),
        registry_filter=filter_spec(spec.filter),
        registry_filter_path=FILTER_PATH,
        limits=limits,
        validation=spec.validation,
    )
    try:
        return await prepare_merged_stored(b"".join(chunks), options, executor=executor)
    except CatalogError as exc:  # the registry's filter
        raise SyncFailure(SyncStage.DATA, INVALID_DATA, render_issues(exc)) from None
    except ParsingFailed as exc:
        raise SyncFailure(SyncStage.STORAGE, "ParsingFailed", f"{_describe(parts)}: {exc}") from None


def _reports(parts: Sequence[_Part], merged: PreparedMerge) -> list[SourceReport]:
    reports = []
    for part, result in zip(parts, merged.sources, strict=True):
        failure = part.failure
        if result.refused is not None and part.current is not None:
            reason, message = result.refused
            where = f"{part.source.describe()} at {part.current.revision[:12]}"
            failure = SyncFailure(SyncStage.DATA, reason, f"{where}: {message}")
        used = {"current": part.current, "fallback": part.fallback}.get(result.used)
        reports.append(
            SourceReport(
                name=part.name,
                type=part.named.type.value,
                description=part.source.describe(),
                state=_state(result.used == "current", used is not None),
                revision=used.revision if used is not None else None,
                entries=result.entries,
                conflicts=result.conflicts,
                failure=failure,
            )
        )
    return reports


def _remember(parts: Sequence[_Part], merged: PreparedMerge, reports: Sequence[SourceReport]) -> None:
    """After a stored sync: each source's document that was used is its last good one; a refused
    document's revision is remembered with the refusal."""
    for part, result, report in zip(parts, merged.sources, reports, strict=True):
        if result.used == "current" and part.current is not None:
            part.memo.good, part.memo.refused_revision, part.memo.refused = part.current, None, None
        elif result.used == "fallback" and part.fallback is not None:
            part.memo.good = part.fallback
        if result.refused is not None and part.current is not None:
            part.memo.refused_revision, part.memo.refused = part.current.revision, report.failure
