"""The per-MCPRegistry control loop: decides when to sync, runs one sync at a time, and keeps status
and Events true at every step.

Kopf runs one `RegistryController.run` per MCPRegistry as a daemon, so syncs of one registry are
serial and different registries proceed concurrently. Anything that may call for a sync (a spec or
annotation change, a change of the source ConfigMap, a deleted data ConfigMap) only *wakes* the loop;
the loop itself decides, from the live object and its status, whether a sync is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from mcpreg.storage.interfaces import CatalogStore
from mcpreg_operator.api_reconciler import ApiReconciler
from mcpreg_operator.backoff import next_due
from mcpreg_operator.events import EventRecorder
from mcpreg_operator.phase import derive_overall
from mcpreg_operator.sources.factory import build_source
from mcpreg_operator.sources.git import GitClient
from mcpreg_operator.spec import (
    GROUP,
    PLURAL,
    SYNC_TRIGGER_ANNOTATION,
    VERSION,
    ConditionStatus,
    ConditionType,
    MCPRegistrySpec,
    MCPRegistryStatus,
    Phase,
    StorageRef,
    SyncPhase,
    SyncStatus,
    parse_go_duration,
)
from mcpreg_operator.storage_factory import cleanup_after_move
from mcpreg_operator.sync import LastGood, SyncFailure, SyncOutcome, SyncStage, data_spec_hash, run_sync
from mcpreg_operator.workload import Owner

log = logging.getLogger(__name__)

StoreFactory = Callable[[MCPRegistrySpec, Mapping[str, Any]], CatalogStore]


@dataclass
class OperatorContext:
    """Shared by every controller: API clients, the git client, the worker pool, store construction."""

    api: client.ApiClient
    git: GitClient
    executor: Executor | None  # blocking I/O (git), which mostly waits
    store_factory: StoreFactory
    events: EventRecorder
    # Parsing and hashing are CPU-bound: more threads than cores only add memory (every concurrent
    # parse holds a whole catalogue), so they get a pool of their own sized to the machine.
    cpu_executor: Executor | None = None
    # Bounds how many syncs run at once across all registries. Every sync holds a catalogue several
    # times over (downloaded bytes, parsed model, canonical JSON, the API request and response), so the
    # operator's peak memory follows this number, not the number of registries.
    sync_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class RegistryController:
    namespace: str
    name: str
    ctx: OperatorContext
    wake_event: asyncio.Event = field(default_factory=asyncio.Event)
    # The data-shaping spec of the last sync attempt; None until the first sync after (re)start, so a
    # sync always runs on creation and on operator resume.
    attempted_spec_hash: str | None = None
    last_wake_reason: str = ""
    # The status this controller last wrote. It is the only writer of these fields, and Kopf's live
    # body lags behind our own patches, so decisions use this copy once it exists.
    status: MCPRegistryStatus | None = None
    # The data-shaping spec hash of what storage holds (persisted as status.syncStatus.specHash).
    stored_spec_hash: str | None = None
    # The spec and generation being acted on, and the last status written (to skip identical writes).
    spec: MCPRegistrySpec | None = None
    generation: int = 0
    last_patched: dict[str, Any] | None = None
    syncing: bool = False
    api: ApiReconciler | None = None

    def wake(self, reason: str = "") -> None:
        self.last_wake_reason = reason or self.last_wake_reason
        self.wake_event.set()

    # --- deciding -----------------------------------------------------------------------------

    @staticmethod
    def _status(body: Mapping[str, Any]) -> MCPRegistryStatus:
        try:
            return MCPRegistryStatus.model_validate(body.get("status") or {})
        except ValidationError:
            # A status written by someone else that does not parse is rebuilt from scratch.
            return MCPRegistryStatus()

    def _due(self, body: Mapping[str, Any], spec: MCPRegistrySpec, status: MCPRegistryStatus) -> str | None:
        """Why a sync should run now, or None."""
        if self.attempted_spec_hash is None:
            return "Startup"
        trigger = (body.get("metadata", {}).get("annotations") or {}).get(SYNC_TRIGGER_ANNOTATION)
        if trigger is not None and trigger != status.last_manual_sync_trigger:
            return "ManualTrigger"
        if data_spec_hash(spec) != self.attempted_spec_hash:
            return "SpecChanged"
        if self.last_wake_reason in ("SourceChanged", "StorageChanged"):
            return self.last_wake_reason
        due = self._next_due(spec, status)
        if due is not None and due <= _now():
            return "Retry" if (status.sync_status and status.sync_status.attempt_count) else "Interval"
        return None

    @staticmethod
    def _interval_s(spec: MCPRegistrySpec) -> float | None:
        interval = spec.sync_policy.interval if spec.sync_policy else None
        return parse_go_duration(interval) if interval else None

    def _next_due(self, spec: MCPRegistrySpec, status: MCPRegistryStatus) -> datetime | None:
        sync = status.sync_status or SyncStatus()
        return next_due(
            now=_now(),
            last_success=sync.last_sync_time,
            last_attempt=sync.last_attempt,
            attempt_count=sync.attempt_count or 0,
            interval_s=self._interval_s(spec),
        )

    # --- the loop -----------------------------------------------------------------------------

    async def run(self, body: Mapping[str, Any], stopped: Any) -> None:
        """Loop until Kopf stops the daemon (deletion or operator shutdown). `body` is Kopf's live view."""
        while not stopped:
            # Cleared before the work, never after: a wake-up that arrives while this pass runs
            # must lead to another pass, not be lost.
            self.wake_event.clear()
            if self.status is None:
                self.status = self._status(body)
                self.stored_spec_hash = status_spec_hash(body)
            status = self.status
            try:
                spec = MCPRegistrySpec.model_validate(body.get("spec") or {})
            except ValidationError as exc:
                await self._report_invalid_spec(body, status, exc)
                await self._sleep(None, stopped)
                continue
            self.spec = spec
            self.generation = int(body.get("metadata", {}).get("generation") or 0)
            reason = self._due(body, spec, status)
            if reason is not None:
                self.last_wake_reason = ""
                async with self.ctx.sync_slots:
                    self.syncing = True
                    try:
                        await self.sync(body, spec, status, reason)
                    finally:
                        self.syncing = False
                await self._reconcile_api(body, spec, status)
                continue  # re-evaluate at once: a trigger may have arrived meanwhile
            await self._reconcile_api(body, spec, status)
            due = self._next_due(spec, status)
            delay = None if due is None else max(0.0, (due - _now()).total_seconds())
            await self._sleep(delay, stopped)

    async def _sleep(self, delay: float | None, stopped: Any) -> None:
        # Kopf's `stopped` flag is awaited through its own wait(); poll it at a coarse period so a
        # deletion ends the loop promptly even while no wake-up arrives.
        deadline = None if delay is None else time.monotonic() + delay
        while not stopped:
            step = 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake_event.wait(), timeout=step)
                return
            if deadline is not None and time.monotonic() >= deadline:
                return

    # --- the API workload ---------------------------------------------------------------------

    async def _reconcile_api(
        self, body: Mapping[str, Any], spec: MCPRegistrySpec, status: MCPRegistryStatus
    ) -> None:
        meta = body.get("metadata", {})
        if self.api is None:
            self.api = ApiReconciler(
                self.ctx.api, self.namespace, Owner(name=self.name, uid=str(meta.get("uid")))
            )
        try:
            store = self.ctx.store_factory(spec, body)
            if inspect.isawaitable(store):
                store = await store
            data_configmaps = await store.resource_names()
            await self.api.reconcile(spec, status, data_configmaps, self.generation)
        except ApiException as exc:
            # Reported, retried on the next wake-up; the catalogue keeps being served meanwhile.
            log.warning(
                "%s/%s: cannot reconcile the API workload: HTTP %s %s",
                self.namespace,
                self.name,
                exc.status,
                exc.reason,
            )
            status.set_condition(
                ConditionType.API_READY, ConditionStatus.FALSE, "WorkloadError",
                f"cannot create or update the API workload: HTTP {exc.status} {exc.reason}",
                observed_generation=self.generation,
            )  # fmt: skip
            self.api.mark_dirty()
        await self._patch_status(status)

    def stored_hash(self) -> str | None:
        """The content hash this controller last stored (or found stored)."""
        sync = self.status.sync_status if self.status is not None else None
        return sync.last_sync_hash if sync is not None else None

    def storage_event_is_foreign(self, content_hash: str | None) -> bool:
        """Whether a data ConfigMap holding `content_hash` was changed by someone else. During a sync our
        own write's events arrive before status knows the new hash: those are never foreign."""
        return not self.syncing and content_hash != self.stored_hash()

    def workload_changed(self) -> None:
        """An owned Deployment/Service/ServiceAccount/Role/RoleBinding changed: check it."""
        if self.api is not None:
            self.api.mark_dirty()
        self.wake("WorkloadChanged")

    # --- one sync -----------------------------------------------------------------------------

    async def sync(
        self, body: Mapping[str, Any], spec: MCPRegistrySpec, status: MCPRegistryStatus, reason: str
    ) -> None:
        meta = body.get("metadata", {})
        generation = int(meta.get("generation") or 0)
        trigger = (meta.get("annotations") or {}).get(SYNC_TRIGGER_ANNOTATION)
        self.attempted_spec_hash = data_spec_hash(spec)
        started = _now()
        sync_status = status.sync_status.model_copy() if status.sync_status else SyncStatus()
        previous_failures = sync_status.attempt_count or 0
        sync_status.phase = SyncPhase.SYNCING
        sync_status.last_attempt = started
        sync_status.message = f"sync started ({reason})"
        status.sync_status = sync_status
        await self._patch_status(status)

        source = build_source(spec, self.namespace, self.ctx.core, self.ctx.git, self.ctx.executor)
        store = self.ctx.store_factory(spec, body)
        last_good = LastGood(
            revision=sync_status.revision,
            content_hash=sync_status.last_sync_hash,
            spec_hash=self.stored_spec_hash,
        )
        try:
            outcome = await run_sync(
                spec=spec, source=source, store=store, last_good=last_good, executor=self.ctx.cpu_executor
            )
        except SyncFailure as failure:
            self._record_failure(status, failure, generation, previous_failures)
            if trigger is not None and reason == "ManualTrigger":
                status.last_manual_sync_trigger = trigger
            await self._patch_status(status)
            self.ctx.events.warning(body, "SyncFailed", failure.message)
            log.warning(
                "%s/%s: sync failed (%s): %s", self.namespace, self.name, failure.reason, failure.message
            )
            return
        except Exception as exc:
            # A bug must not kill the loop; status says what happened and the retry backs off.
            log.exception("%s/%s: unexpected error during sync", self.namespace, self.name)
            internal = SyncFailure(
                SyncStage.STORAGE, "InternalError", f"internal error: {type(exc).__name__}"
            )
            self._record_failure(status, internal, generation, previous_failures)
            await self._patch_status(status)
            self.ctx.events.warning(body, "SyncFailed", internal.message)
            return

        # The data may have moved (storage.type switched, another bucket or prefix): it is safely in
        # the new place, so remove the old copy while status.storageRef still names it (a crash here
        # leaves storageRef pointing at the old place, and the next sync cleans up again).
        await cleanup_after_move(
            self.ctx.api, self.ctx.events, body, spec, status.storage_ref, outcome.storage_location
        )
        self._record_success(status, outcome, generation)
        self.stored_spec_hash = self.attempted_spec_hash
        if status.sync_status is not None:
            status.sync_status.spec_hash = self.attempted_spec_hash
        if trigger is not None and reason == "ManualTrigger":
            status.last_manual_sync_trigger = trigger
        await self._patch_status(status)
        if previous_failures:
            self.ctx.events.normal(
                body, "SyncRecovered", f"sync succeeded again after {previous_failures} failed attempt(s)"
            )
        if outcome.written:
            self.ctx.events.normal(
                body,
                "Synced",
                f"stored {outcome.server_count} servers ({outcome.content_hash[:19]}…) from {outcome.source} "
                f"at {outcome.revision[:12]}",
            )
        log.info(
            "%s/%s: sync ok (%s): revision=%s hash=%s written=%s fetched=%s",
            self.namespace,
            self.name,
            reason,
            outcome.revision[:12],
            outcome.content_hash[:19],
            outcome.written,
            outcome.fetched,
        )

    def _record_success(self, status: MCPRegistryStatus, outcome: SyncOutcome, generation: int) -> None:
        sync = status.sync_status or SyncStatus()
        now = _now()
        if outcome.server_count >= 0:
            sync.server_count = outcome.server_count
        sync.phase = SyncPhase.COMPLETE
        sync.revision = outcome.revision
        sync.last_sync_hash = outcome.content_hash
        sync.last_sync_time = now
        sync.attempt_count = 0
        servers = sync.server_count if sync.server_count is not None else 0
        sync.message = f"{servers} servers from {outcome.source} at {outcome.revision[:12]}" + (
            "" if outcome.fetched else " (unchanged; nothing downloaded)"
        )
        status.sync_status = sync
        status.storage_ref = StorageRef.model_validate(outcome.storage_location)
        status.observed_generation = generation
        set_ = status.set_condition
        set_(
            ConditionType.SOURCE_AVAILABLE,
            ConditionStatus.TRUE,
            "SourceReachable",
            f"{outcome.source} resolved to {outcome.revision[:12]}",
            observed_generation=generation,
            at=now,
        )
        set_(
            ConditionType.DATA_VALID,
            ConditionStatus.TRUE,
            "Valid",
            f"{servers} valid servers",
            observed_generation=generation,
            at=now,
        )
        set_(
            ConditionType.SYNCED,
            ConditionStatus.TRUE,
            "Synced",
            f"catalogue {outcome.content_hash[:19]}… stored",
            observed_generation=generation,
            at=now,
        )

    def _record_failure(
        self, status: MCPRegistryStatus, failure: SyncFailure, generation: int, previous_failures: int
    ) -> None:
        sync = status.sync_status or SyncStatus()
        now = _now()
        sync.phase = SyncPhase.FAILED
        sync.attempt_count = previous_failures + 1
        kept = (
            f"; still serving the last good catalogue ({sync.server_count} servers, {sync.revision[:12]})"
            if sync.last_sync_hash and sync.revision
            else ""
        )
        sync.message = failure.message + kept
        status.sync_status = sync
        status.observed_generation = generation
        set_ = status.set_condition
        if failure.stage is SyncStage.SOURCE:
            set_(
                ConditionType.SOURCE_AVAILABLE,
                ConditionStatus.FALSE,
                failure.reason,
                failure.message,
                observed_generation=generation,
                at=now,
            )
        elif failure.stage is SyncStage.DATA:
            set_(
                ConditionType.SOURCE_AVAILABLE,
                ConditionStatus.TRUE,
                "SourceReachable",
                "source read",
                observed_generation=generation,
                at=now,
            )
            set_(
                ConditionType.DATA_VALID,
                ConditionStatus.FALSE,
                failure.reason,
                failure.message,
                observed_generation=generation,
                at=now,
            )
        set_(
            ConditionType.SYNCED,
            ConditionStatus.FALSE,
            failure.reason,
            sync.message,
            observed_generation=generation,
            at=now,
        )

    async def _report_invalid_spec(
        self, body: Mapping[str, Any], status: MCPRegistryStatus, error: ValidationError
    ) -> None:
        generation = int(body.get("metadata", {}).get("generation") or 0)
        if status.observed_generation == generation and status.phase is Phase.FAILED:
            return
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5]
        )
        # Nothing is derived from a spec that does not parse: the phase says so until it is fixed.
        self.spec = None
        status.phase = Phase.FAILED
        status.message = f"invalid spec: {problems}"
        status.observed_generation = generation
        status.set_condition(
            ConditionType.READY,
            ConditionStatus.FALSE,
            "InvalidSpec",
            status.message,
            observed_generation=generation,
        )
        await self._patch_status(status)
        self.ctx.events.warning(body, "InvalidSpec", status.message)

    # --- status -------------------------------------------------------------------------------

    async def _patch_status(self, status: MCPRegistryStatus) -> None:
        if self.spec is not None:
            derive_overall(status, api_enabled=self.spec.api.enabled, generation=self.generation)
        payload = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        if payload == self.last_patched:
            return  # nothing new to say: no write, no watch event
        # Fields that became empty must be removed explicitly from a merge patch (e.g. an endpoint
        # that is no longer served).
        for key in ("apiStatus",):
            previous = (self.last_patched or {}).get(key) or {}
            if key in payload:
                for gone in set(previous) - set(payload[key]):
                    payload[key][gone] = None
        if "storageRef" in payload:
            # Storage moved from S3 elsewhere: drop the old location even if this process never
            # wrote it (after a restart there is no `last_patched` to compare with).
            payload["storageRef"].setdefault("s3", None)
        try:
            await merge_patch_status(self.ctx.custom, self.namespace, self.name, payload)
        except ApiException as exc:
            if exc.status == 404:
                return  # deleted while syncing; nothing left to report on
            raise
        self.last_patched = status.model_dump(mode="json", by_alias=True, exclude_none=True)


async def merge_patch_status(
    custom: client.CustomObjectsApi, namespace: str, name: str, status: Mapping[str, Any]
) -> None:
    """JSON merge patch of an MCPRegistry's status subresource (custom resources refuse the client's
    default, a strategic merge patch)."""
    await custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"status": dict(status)},
        _content_type="application/merge-patch+json",
    )


def status_spec_hash(body: Mapping[str, Any]) -> str | None:
    """The data-shaping spec hash of the data in storage, as recorded in status by the last success."""
    value = ((body.get("status") or {}).get("syncStatus") or {}).get("specHash")
    return str(value) if value else None
