"""What a sync of several sources (`spec.sources`) does to status and which Events it calls for: pure
functions of the outcome and the status before it, like `decisions` (which calls `record_sources`).

One failing source does not fail the sync: its last good entries stay served, Ready stays True, and
the Synced condition turns False with the reason SourcesDegraded naming it (SourceAvailable or
DataValid too, for an unreachable source or a refused document). `status.sources` says, per source,
what is served of it and its latest failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mcpreg_operator.merge import Conflict
from mcpreg_operator.spec.status import (
    ConditionStatus,
    ConditionType,
    ConflictsStatus,
    MCPRegistryStatus,
    NameConflict,
    SourceState,
    SourceStatus,
)
from mcpreg_operator.sync import SourceReport, SyncOutcome, SyncStage

SOURCES_DEGRADED = "SourcesDegraded"
SOURCE_FAILED = "SourceFailed"
SOURCE_RECOVERED = "SourceRecovered"
NAME_CONFLICTS = "NameConflicts"
#: Longest failure message kept per source in status (the field's bound).
MAX_ERROR = 4096


def _short(message: str) -> str:
    return message if len(message) <= MAX_ERROR else message[: MAX_ERROR - 1] + "…"


def failed(outcome: SyncOutcome) -> list[SourceReport]:
    return [report for report in outcome.sources if report.failure is not None]


def degraded_summary(reports: Sequence[SourceReport]) -> str:
    """`source team (SourceUnreachable): …; its last good entries are served`, for conditions."""
    parts = []
    for report in reports:
        assert report.failure is not None
        revision = (report.revision or "")[:12]
        kept = {
            SourceState.LAST_GOOD: f"its last good entries ({revision}) are served",
            SourceState.MISSING: "it never synced: nothing of it is served",
        }.get(report.state, "")
        parts.append(f"source {report.name} ({report.failure.reason}): {report.failure.message}; {kept}")
    return "; ".join(parts)


def record_sources(
    status: MCPRegistryStatus, outcome: SyncOutcome, *, generation: int, now: datetime
) -> None:
    """Status after a successful sync: `sources`, `conflicts` and, when a source failed, the conditions
    that say so. A one-source outcome clears them (the spec may have switched forms)."""
    if not outcome.sources:
        status.sources, status.conflicts = None, None
        return
    before = {source.name: source for source in status.sources or ()}
    status.sources = [_source_status(report, before.get(report.name), now) for report in outcome.sources]
    if outcome.conflicts is not None:
        status.conflicts = _conflicts(
            outcome.conflicts.count, outcome.conflicts.hash, outcome.conflicts.items
        )
    broken = failed(outcome)
    if not broken:
        return
    set_ = status.set_condition
    unreachable = [r for r in broken if r.failure is not None and r.failure.stage is not SyncStage.DATA]
    refused = [r for r in broken if r.failure is not None and r.failure.stage is SyncStage.DATA]
    if unreachable:
        set_(ConditionType.SOURCE_AVAILABLE, ConditionStatus.FALSE, SOURCES_DEGRADED,
             degraded_summary(unreachable), observed_generation=generation, at=now)  # fmt: skip
    if refused:
        set_(ConditionType.DATA_VALID, ConditionStatus.FALSE, SOURCES_DEGRADED,
             degraded_summary(refused), observed_generation=generation, at=now)  # fmt: skip
    names = ", ".join(r.name for r in broken)
    message = f"{len(broken)} of {len(outcome.sources)} sources failed ({names}): {degraded_summary(broken)}"
    set_(ConditionType.SYNCED, ConditionStatus.FALSE, SOURCES_DEGRADED, message,
         observed_generation=generation, at=now)  # fmt: skip
    if status.sync_status is not None:
        status.sync_status.message = f"{status.sync_status.message}; {len(broken)} source(s) failed: {names}"


def _source_status(report: SourceReport, before: SourceStatus | None, now: datetime) -> SourceStatus:
    current = SourceStatus(
        name=report.name,
        type=report.type,
        state=report.state,
        revision=report.revision,
        # Not known on the cheap path (nothing was read): what the sync that read it said still holds.
        entry_count=report.entries
        if report.entries is not None
        else (before.entry_count if before else None),
        conflicts=report.conflicts
        if report.conflicts is not None
        else (before.conflicts if before else None),
        last_success_time=before.last_success_time if before else None,
        last_error=before.last_error if before else None,
        last_error_reason=before.last_error_reason if before else None,
        last_error_time=before.last_error_time if before else None,
    )
    if report.failure is None:
        current.last_success_time = now
    else:
        still_failing = before is not None and before.state is not SourceState.CURRENT
        earlier = (before.consecutive_failures or 0) if before is not None and still_failing else 0
        current.consecutive_failures = earlier + 1
        current.last_error = _short(report.failure.message)
        current.last_error_reason = report.failure.reason
        if before is None or before.last_error != current.last_error or before.state is SourceState.CURRENT:
            current.last_error_time = now
    return current


def _conflicts(count: int, hash_: str | None, items: Sequence[Conflict]) -> ConflictsStatus | None:
    if count == 0:
        return None
    return ConflictsStatus(
        count=count,
        hash=hash_,
        items=[NameConflict(name=c.name[:512], source=c.winner, shadowed=c.loser) for c in items],
    )


def source_events(before: MCPRegistryStatus, outcome: SyncOutcome) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events a successful sync of several sources calls for: a source
    that failed (once per new failure, not again while it fails the same way), one that recovered,
    and a changed set of name conflicts."""
    events: list[tuple[str, str, str]] = []
    previous = {source.name: source for source in before.sources or ()}
    for report in outcome.sources:
        was = previous.get(report.name)
        if report.failure is not None:
            same = (
                was is not None
                and was.state is not SourceState.CURRENT
                and was.last_error == _short(report.failure.message)
            )
            if not same:
                events.append(("Warning", SOURCE_FAILED, degraded_summary([report])))
        elif was is not None and was.state is not SourceState.CURRENT:
            events.append(
                ("Normal", SOURCE_RECOVERED, f"source {report.name} synced again at {report.revision}")
            )
    conflicts = outcome.conflicts
    known = before.conflicts.hash if before.conflicts else None
    if conflicts is not None and conflicts.count and conflicts.hash != known:
        listed = "; ".join(
            f"{c.name} (served from {c.winner}, also in {c.loser})" for c in conflicts.items[:5]
        )
        more = conflicts.count - min(5, len(conflicts.items))
        events.append(
            (
                "Warning",
                NAME_CONFLICTS,
                f"{conflicts.count} server name(s) are in several sources; the first source in "
                f"spec.sources serves each: {listed}" + (f" (and {more} more)" if more > 0 else ""),
            )
        )
    return events
