"""The controller's decisions, as pure functions of the spec, the observed status and what the
controller observed: is a sync due and why, what status becomes after each outcome, when the next
pass is due. Nothing here does I/O or reads the clock, so every rule is unit-tested on its own
(tests/unit/operator/test_decisions.py); the controller only gathers the inputs and carries out the result.

Status mutations work in place on a copy the caller made of the status it last read, so that when a
conditional write loses to another writer the same mutations can be applied again to the fresh copy.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime

from mcpreg_operator import quarantine
from mcpreg_operator.backoff import next_due, retry_delay
from mcpreg_operator.source_status import record_sources
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import (
    ConditionStatus,
    ConditionType,
    MCPRegistryStatus,
    Phase,
    StorageRef,
    SyncPhase,
    SyncStatus,
)
from mcpreg_operator.sync import SyncFailure, SyncOutcome, SyncStage, data_spec_hash

# Wake-up reasons that call for a sync by themselves (events the status cannot show).
SOURCE_CHANGED = "SourceChanged"
STORAGE_CHANGED = "StorageChanged"
# A pass that failed outside a sync (the API server unreachable, a status write refused) is retried
# after retry_delay(failures), at most this far apart.
PASS_RETRY_CAP_S = 300.0


@dataclass(frozen=True)
class Observed:
    """What the controller knows beyond the object itself."""

    now: datetime
    generation: int
    trigger: str | None  # the sync-trigger annotation's value
    first_pass: bool  # no sync has run in this process yet (creation, or operator resume)
    pending: Set[str] = frozenset()  # SOURCE_CHANGED / STORAGE_CHANGED seen since the last sync


def interval_seconds(spec: MCPRegistrySpec) -> float | None:
    return spec.sync_policy.interval_seconds if spec.sync_policy else None


def sync_due_at(spec: MCPRegistrySpec, status: MCPRegistryStatus, now: datetime) -> datetime | None:
    """When the next sync is due without anyone asking (interval or retry); None: only on request."""
    sync = status.sync_status or SyncStatus()
    return next_due(
        now=now,
        last_success=sync.last_sync_time,
        last_attempt=sync.last_attempt,
        attempt_count=sync.attempt_count or 0,
        interval_s=interval_seconds(spec),
        source_failures=failing_source_count(spec, status),
    )


def failing_source_count(spec: MCPRegistrySpec, status: MCPRegistryStatus) -> int:
    """The most consecutive failures of one of `spec.sources` as of the latest sync (0: all work)."""
    if spec.sources is None:
        return 0
    names = {source.name for source in spec.sources}
    return max((s.consecutive_failures or 0 for s in status.sources or () if s.name in names), default=0)


def sync_reason(spec: MCPRegistrySpec, status: MCPRegistryStatus, observed: Observed) -> str | None:
    """Why a sync should run now, or None."""
    if observed.first_pass:
        return "Startup"
    if observed.trigger is not None and observed.trigger != status.last_manual_sync_trigger:
        return "ManualTrigger"
    sync = status.sync_status or SyncStatus()
    if data_spec_hash(spec) != sync.spec_hash:
        # The stored data was shaped by another spec. Once an attempt for this generation has
        # failed, retries follow the backoff instead of running on every pass.
        failed_for_this_spec = (
            sync.phase is SyncPhase.FAILED and status.observed_generation == observed.generation
        )
        if not failed_for_this_spec:
            return "SpecChanged"
    for reason in (SOURCE_CHANGED, STORAGE_CHANGED):
        if reason in observed.pending:
            return reason
    due = sync_due_at(spec, status, observed.now)
    if due is not None and due <= observed.now:
        return "Retry" if sync.attempt_count or failing_source_count(spec, status) else "Interval"
    return None


def seconds_until_next_pass(
    spec: MCPRegistrySpec | None, status: MCPRegistryStatus, now: datetime, pass_failures: int
) -> float | None:
    """How long the controller may sleep when nothing wakes it; None: until woken."""
    delays: list[float] = []
    if pass_failures:
        delays.append(min(retry_delay(pass_failures, None), PASS_RETRY_CAP_S))
    if spec is not None:
        due = sync_due_at(spec, status, now)
        if due is not None:
            delays.append(max(0.0, (due - now).total_seconds()))
    return min(delays) if delays else None


# --- what status becomes ---------------------------------------------------------------------------


def _sync_status(status: MCPRegistryStatus) -> SyncStatus:
    if status.sync_status is None:
        status.sync_status = SyncStatus()
    return status.sync_status


def mark_syncing(status: MCPRegistryStatus, *, reason: str, now: datetime) -> None:
    """A sync that downloads has started: say so (the last good data stays served meanwhile)."""
    sync = _sync_status(status)
    sync.phase = SyncPhase.SYNCING
    sync.last_attempt = now
    sync.message = f"sync started ({reason})"


def record_trigger(status: MCPRegistryStatus, *, trigger: str | None) -> None:
    """A manual trigger is acknowledged whether its sync succeeds or fails, and by any sync that read
    it: a trigger set just before an operator start is served by the Startup sync, and no later event
    would come to ask for it again."""
    if trigger is not None:
        status.last_manual_sync_trigger = trigger


def record_success(
    status: MCPRegistryStatus,
    outcome: SyncOutcome,
    *,
    spec: MCPRegistrySpec,
    generation: int,
    started: datetime,
    now: datetime,
) -> None:
    sync = _sync_status(status)
    if outcome.server_count >= 0:
        sync.server_count = outcome.server_count
    entries = outcome.entries
    if entries is not None:
        sync.skipped_count = entries.skipped_count
        sync.warning_count = entries.warning_count
        sync.skipped_hash = entries.skipped_hash
    sync.phase = SyncPhase.COMPLETE
    sync.revision = outcome.revision
    sync.last_sync_hash = outcome.content_hash
    sync.last_sync_time = now
    sync.last_attempt = started
    sync.attempt_count = 0
    sync.spec_hash = data_spec_hash(spec)
    sync.signing_key_id = outcome.signing_key_id
    servers = sync.server_count if sync.server_count is not None else 0
    skipped = sync.skipped_count or 0
    sync.message = (
        f"{servers} servers from {outcome.source} at {outcome.revision[:12]}"
        + (f"; {quarantine.counted(skipped, 'invalid entry', 'invalid entries')} skipped" if skipped else "")
        + ("" if outcome.fetched else " (unchanged; nothing downloaded)")
    )
    status.storage_ref = StorageRef.model_validate(outcome.storage_location)
    status.observed_generation = generation
    set_ = status.set_condition
    short = outcome.revision[:12]
    set_(ConditionType.SOURCE_AVAILABLE, ConditionStatus.TRUE, "SourceReachable",
         f"{outcome.source} resolved to {short}", observed_generation=generation, at=now)  # fmt: skip
    current = status.condition(ConditionType.DATA_VALID)
    if entries is not None:
        valid, reason, message = quarantine.data_valid(entries, servers)
    elif current is not None and current.reason in quarantine.STORED_DATA_REASONS:
        # Nothing was read: what the sync that read the stored data said still holds (with the names).
        valid, reason, message = current.status is ConditionStatus.TRUE, current.reason, current.message
    else:
        valid, reason, message = quarantine.data_valid_from_counts(skipped, sync.warning_count or 0, servers)
    set_(ConditionType.DATA_VALID, ConditionStatus.TRUE if valid else ConditionStatus.FALSE, reason,
         message, observed_generation=generation, at=now)  # fmt: skip
    stored = f"catalogue {outcome.content_hash[:19]}… stored"
    set_(ConditionType.SYNCED, ConditionStatus.TRUE, "Synced", stored,
         observed_generation=generation, at=now)  # fmt: skip
    record_sources(status, outcome, generation=generation, now=now)


def record_failure(
    status: MCPRegistryStatus, failure: SyncFailure, *, generation: int, started: datetime, now: datetime
) -> None:
    sync = _sync_status(status)
    sync.phase = SyncPhase.FAILED
    sync.last_attempt = started
    sync.attempt_count = (sync.attempt_count or 0) + 1
    kept = (
        f"; still serving the last good catalogue ({sync.server_count} servers, {sync.revision[:12]})"
        if sync.last_sync_hash and sync.revision
        else ""
    )
    sync.message = failure.message + kept
    status.observed_generation = generation
    set_ = status.set_condition
    if failure.stage is SyncStage.SOURCE:
        set_(ConditionType.SOURCE_AVAILABLE, ConditionStatus.FALSE, failure.reason, failure.message,
             observed_generation=generation, at=now)  # fmt: skip
    elif failure.stage is SyncStage.DATA:
        set_(ConditionType.SOURCE_AVAILABLE, ConditionStatus.TRUE, "SourceReachable", "source read",
             observed_generation=generation, at=now)  # fmt: skip
        set_(ConditionType.DATA_VALID, ConditionStatus.FALSE, failure.reason, failure.message,
             observed_generation=generation, at=now)  # fmt: skip
    set_(ConditionType.SYNCED, ConditionStatus.FALSE, failure.reason, sync.message,
         observed_generation=generation, at=now)  # fmt: skip


def record_invalid_spec(
    status: MCPRegistryStatus, problems: str, *, generation: int, now: datetime, reason: str = "InvalidSpec"
) -> None:
    """Nothing is derived from a spec that does not parse, or that the operator refuses to act on
    (`reason` says why, e.g. CrossNamespaceReference): the phase says so until it is fixed."""
    status.phase = Phase.FAILED
    status.message = f"invalid spec: {problems}"
    status.observed_generation = generation
    status.set_condition(ConditionType.READY, ConditionStatus.FALSE, reason, status.message,
                         observed_generation=generation, at=now)  # fmt: skip


def record_workload_error(status: MCPRegistryStatus, message: str, *, generation: int, now: datetime) -> None:
    """The API workload could not be created or checked; the catalogue keeps being served meanwhile."""
    status.set_condition(ConditionType.API_READY, ConditionStatus.FALSE, "WorkloadError",
                         f"cannot create or update the API workload: {message}",
                         observed_generation=generation, at=now)  # fmt: skip


def acknowledge_generation(status: MCPRegistryStatus, *, generation: int) -> None:
    """A pass acted on this generation (its data-shaping part unchanged, or synced)."""
    status.observed_generation = generation
