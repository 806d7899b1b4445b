"""The overall phase, message and Ready condition, derived from the sync and API parts of status.

One function decides them, from facts already in status, so they can never disagree with their parts.
"""

from __future__ import annotations

from mcpreg_operator.spec.status import (
    ApiPhase,
    ConditionStatus,
    ConditionType,
    MCPRegistryStatus,
    Phase,
    SyncPhase,
)


def derive_overall(status: MCPRegistryStatus, *, api_enabled: bool, generation: int) -> None:
    """Set `phase`, `message` and the Ready condition in place."""
    if status.phase is Phase.TERMINATING:
        return
    sync = status.sync_status
    api = status.api_status
    ready: tuple[ConditionStatus, str, str] | None
    if sync is None or sync.phase is None:
        status.phase, status.message = Phase.PENDING, "waiting for the first sync"
        ready = (ConditionStatus.FALSE, "NotSynced", status.message)
    elif sync.phase is SyncPhase.FAILED:
        status.phase, status.message = Phase.FAILED, sync.message or "the last sync failed"
        ready = (ConditionStatus.FALSE, "SyncFailed", status.message)
    elif sync.phase is SyncPhase.SYNCING:
        status.phase, status.message = Phase.SYNCING, sync.message or "syncing"
        # A routine sync does not make a serving registry un-ready: its data is still served.
        ready = None if sync.last_sync_hash else (ConditionStatus.FALSE, "NotSynced", status.message)
    elif not api_enabled or (api is not None and api.phase is ApiPhase.READY):
        status.phase, status.message = Phase.READY, sync.message or "synced"
        served = f"serving {sync.server_count or 0} servers"
        where = f" at {api.endpoint}" if api_enabled and api is not None and api.endpoint else ""
        ready = (ConditionStatus.TRUE, "Ready", served + where)
    elif api is not None and api.phase is ApiPhase.UNHEALTHY:
        status.phase = Phase.FAILED
        status.message = f"catalogue synced, but the registry API is unhealthy: {api.message or ''}".rstrip(
            ": "
        )
        ready = (ConditionStatus.FALSE, "APIUnhealthy", status.message)
    else:
        status.phase = Phase.PENDING
        detail = api.message if api is not None and api.message else "not deployed yet"
        status.message = (
            f"catalogue synced ({sync.server_count or 0} servers); waiting for the registry API: {detail}"
        )
        ready = (ConditionStatus.FALSE, "APINotReady", status.message)
    if ready is not None:
        status.set_condition(
            ConditionType.READY, ready[0], ready[1], ready[2], observed_generation=generation
        )
