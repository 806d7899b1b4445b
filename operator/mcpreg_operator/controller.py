"""The per-MCPRegistry control loop: level-triggered passes inside one error boundary.

Kopf runs one `RegistryController.run` per MCPRegistry as a daemon, so passes of one registry are
serial and different registries proceed concurrently. Anything that may call for work (a spec or
annotation change, a change of the source ConfigMap, a deleted data ConfigMap, an owned object
edited) only *wakes* the loop. Each pass then:

1. reads the object afresh (its spec, status and resourceVersion);
2. decides, by the pure functions of `decisions`, whether a sync is due and why;
3. acts: the sync (if due) and the API workload;
4. writes status once, by a PUT of the status subresource conditional on the resourceVersion read in
   step 1. Losing to another writer (a person, the finalizer's Terminating, a spec change) means
   reading again and applying the pass's results to the fresh status; an object being deleted is
   never written. A sync that downloads also writes `Syncing` when it starts, so status tells the
   truth during a long sync.

Any exception in a pass is caught at the pass boundary: it becomes a condition (when status can be
written at all), a log line, and a retry after a backoff. The daemon itself never ends on an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from pydantic import ValidationError

from mcpreg.kube import ConflictError, JsonObject, KubeClient, NotFoundError, Resource
from mcpreg.storage.interfaces import CatalogStore
from mcpreg.storage.model import StorageLocation
from mcpreg_operator import decisions, quarantine
from mcpreg_operator.api_reconciler import ApiReconciler, ApiReport, apply_api_report
from mcpreg_operator.events import EventRecorder
from mcpreg_operator.multi_sync import FailedSource, SourceMemo, run_multi_sync
from mcpreg_operator.phase import derive_overall
from mcpreg_operator.references import REASON as CROSS_NAMESPACE_REASON
from mcpreg_operator.references import foreign_references
from mcpreg_operator.signing_key import SigningKeyError, load_signer
from mcpreg_operator.source_status import source_events
from mcpreg_operator.sources.errors import SourceError
from mcpreg_operator.sources.factory import build_source
from mcpreg_operator.sources.git import GitClient
from mcpreg_operator.spec.identity import API_VERSION, GROUP, KIND, PLURAL, SYNC_TRIGGER_ANNOTATION, VERSION
from mcpreg_operator.spec.named_source import NamedSource
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import MCPRegistryStatus
from mcpreg_operator.storage_factory import cleanup_after_move
from mcpreg_operator.sync import (
    CatalogSource,
    LastGood,
    SyncFailure,
    SyncOptions,
    SyncOutcome,
    SyncStage,
    failure_from_error,
    run_sync,
)
from mcpreg_operator.sync_metrics import count_sync
from mcpreg_operator.workload import Owner

log = logging.getLogger(__name__)

MCPREGISTRIES = Resource(GROUP, VERSION, PLURAL)
MCPREGISTRY_STATUS = MCPREGISTRIES.of("status")
StoreFactory = Callable[[MCPRegistrySpec, Mapping[str, Any]], CatalogStore]
Mutation = Callable[[MCPRegistryStatus], None]
# Conditional status writes lost to other writers in a row before the pass gives up (and retries later).
STATUS_WRITE_ATTEMPTS = 5
# resourceVersions of our own recent status writes: their watch events need no pass.
OWN_WRITES_REMEMBERED = 16


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
    # times over (downloaded bytes, parsed model, served document, the API request and response), so the
    # operator's peak memory follows this number, not the number of registries.
    sync_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))

    @property
    def kube(self) -> KubeClient:
        return KubeClient(self.api)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def parse_status(obj: Mapping[str, Any]) -> MCPRegistryStatus:
    try:
        return MCPRegistryStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        # A status written by someone else that does not parse is rebuilt from scratch.
        return MCPRegistryStatus()


def _dump(status: MCPRegistryStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def _spec_problems(error: ValidationError) -> str:
    return "; ".join(f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5])


class ObjectGone(Exception):
    """The MCPRegistry was deleted (or began deletion) during a pass."""


@dataclass
class PassResult:
    """What a pass did, for the Events and the log written after its status landed."""

    mutations: list[Mutation] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


@dataclass
class RegistryController:
    namespace: str
    name: str
    ctx: OperatorContext
    wake_event: asyncio.Event = field(default_factory=asyncio.Event)
    # Facts the object cannot show: whether this process has synced yet (creation and operator
    # resume both sync), and events that call for a sync (SourceChanged, StorageChanged).
    synced_once: bool = False
    pending: set[str] = field(default_factory=set)
    pass_failures: int = 0  # consecutive passes that ended in an error
    api_failures: int = 0  # consecutive passes that could not reconcile the API workload
    syncing: bool = False
    # The head's content hash last seen in a watch event during the current sync: our own write, or
    # an edit by hand that raced it. Checked once the sync's hash is known, so no such edit is lost.
    head_seen_while_syncing: str | None = None
    # The content hash status last showed as stored: tells our own data writes from foreign edits.
    known_hash: str | None = None
    own_writes: deque[str] = field(default_factory=lambda: deque(maxlen=OWN_WRITES_REMEMBERED))
    api: ApiReconciler | None = None
    # spec.sources: what this process remembers of each source (its last good document), by name.
    source_memos: dict[str, SourceMemo] = field(default_factory=dict)

    def wake(self, reason: str = "") -> None:
        if reason in (decisions.SOURCE_CHANGED, decisions.STORAGE_CHANGED):
            self.pending.add(reason)
        self.wake_event.set()

    def is_own_write(self, resource_version: str | None) -> bool:
        """A watch event of an object version this controller wrote itself (nothing new in it)."""
        return resource_version is not None and resource_version in self.own_writes

    def storage_event_is_foreign(self, content_hash: str | None) -> bool:
        """Whether a data ConfigMap holding `content_hash` was changed by someone else. During a sync our
        own write's events arrive before status knows the new hash: they are remembered and judged when
        the sync ends (`_head_edited_while_syncing`)."""
        if self.syncing:
            self.head_seen_while_syncing = content_hash
            return False
        return content_hash != self.known_hash

    def _head_edited_while_syncing(self) -> bool:
        """Whether the last head event of the sync that just ended held another hash than it stored."""
        seen, self.head_seen_while_syncing = self.head_seen_while_syncing, None
        return seen is not None and seen != self.known_hash

    def workload_changed(self) -> None:
        """An owned Deployment/Service/ServiceAccount/Role/RoleBinding/ConfigMap changed: check it."""
        if self.api is not None:
            self.api.mark_dirty()
        self.wake("WorkloadChanged")

    # --- the loop -----------------------------------------------------------------------------

    async def run(self, stopped: Any) -> None:
        """Loop until Kopf stops the daemon (deletion or operator shutdown)."""
        while not stopped:
            # Cleared before the pass, never after: a wake-up that arrives while it runs leads to
            # another pass, not lost.
            self.wake_event.clear()
            try:
                delay = await self.reconcile_once()
                self.pass_failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the one error boundary: never a dead daemon
                self.pass_failures += 1
                delay = decisions.seconds_until_next_pass(
                    None, MCPRegistryStatus(), _now(), self.pass_failures
                )
                log.warning(
                    "%s/%s: reconcile pass failed (%s: %s); retrying in %.0f s",
                    self.namespace,
                    self.name,
                    type(exc).__name__,
                    exc,
                    delay or 0,
                    exc_info=not isinstance(exc, (SyncFailure, OSError)) and log.isEnabledFor(logging.DEBUG),
                )
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

    # --- one pass -----------------------------------------------------------------------------

    async def reconcile_once(self) -> float | None:
        """One level-triggered pass; returns how long to sleep when nothing wakes the loop."""
        obj = await self.ctx.kube.get(MCPREGISTRIES, self.namespace, self.name)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return None  # gone or going: the finalizer's handler says Terminating, nothing else to do
        meta = obj.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        if self.api is None:
            # Before any sync: publishing a new generation widens the API pods' Role through it.
            self.api = ApiReconciler(
                self.ctx.api, self.namespace, Owner(name=self.name, uid=str(meta.get("uid")))
            )
        observed = parse_status(obj)
        self.known_hash = (
            observed.sync_status.last_sync_hash if observed.sync_status else None
        ) or self.known_hash
        result = PassResult()
        spec: MCPRegistrySpec | None = None
        try:
            spec = MCPRegistrySpec.model_validate(obj.get("spec") or {})
        except ValidationError as exc:
            refused_reason, problems = "InvalidSpec", _spec_problems(exc)
        else:
            # Admitted by the CRD, but naming an object of another namespace: refused as a whole.
            refused_reason, problems = (
                CROSS_NAMESPACE_REASON,
                "; ".join(foreign_references(spec, self.namespace)),
            )
        if spec is None or problems:
            now = _now()
            result.mutations.append(
                lambda s: decisions.record_invalid_spec(
                    s, problems, generation=generation, now=now, reason=refused_reason
                )
            )
            written = await self._write_status(obj, result.mutations, spec=None, generation=generation)
            if written is not None and written is not obj:
                self.ctx.events.warning(written, refused_reason, f"invalid spec: {problems}")
            return None  # until the spec changes

        reason = decisions.sync_reason(
            spec,
            observed,
            decisions.Observed(
                now=_now(),
                generation=generation,
                trigger=(meta.get("annotations") or {}).get(SYNC_TRIGGER_ANNOTATION),
                first_pass=not self.synced_once,
                pending=frozenset(self.pending),
            ),
        )
        if reason is not None:
            self.pending.clear()
            async with self.ctx.sync_slots:
                self.syncing, self.head_seen_while_syncing = True, None
                try:
                    obj = await self._sync(obj, spec, observed, reason, generation, result)
                finally:
                    self.syncing = False
                self.synced_once = True
            if obj is None:
                return None

        result.mutations.append(lambda s: decisions.acknowledge_generation(s, generation=generation))
        await self._reconcile_api(obj, spec, generation, result)
        written = await self._write_status(obj, result.mutations, spec=spec, generation=generation)
        if written is not None:
            for type_, event_reason, message in result.events:
                self.ctx.events.post(written, type_, event_reason, message)
            final = parse_status(written)
            self.known_hash = final.sync_status.last_sync_hash if final.sync_status else self.known_hash
            if self._head_edited_while_syncing():
                self.wake(decisions.STORAGE_CHANGED)
            return decisions.seconds_until_next_pass(spec, final, _now(), self.api_failures)
        return None

    # --- the sync -----------------------------------------------------------------------------

    async def _sync(
        self,
        obj: JsonObject,
        spec: MCPRegistrySpec,
        observed: MCPRegistryStatus,
        reason: str,
        generation: int,
        result: PassResult,
    ) -> JsonObject | None:
        """Run one sync; its status mutations and Events go into `result`. Returns the object as last
        written (the Syncing mark moves its resourceVersion), or None when it went away."""
        started = _now()
        trigger = ((obj.get("metadata") or {}).get("annotations") or {}).get(SYNC_TRIGGER_ANNOTATION)
        previous = observed.sync_status
        previous_failures = (previous.attempt_count or 0) if previous else 0
        current_obj: JsonObject | None = obj

        async def announce() -> None:
            # Only a sync that downloads says Syncing: the cheap unchanged-revision check is over
            # before anyone could read it, and would cost a write (and a watch event) per interval.
            nonlocal current_obj
            if current_obj is None:
                return
            current_obj = await self._write_status(
                current_obj,
                [lambda s: decisions.mark_syncing(s, reason=reason, now=started)],
                spec=spec,
                generation=generation,
            )
            if current_obj is None:
                raise ObjectGone  # deleted meanwhile: stop this sync

        store = self.ctx.store_factory(spec, obj)
        last_good = LastGood(
            revision=previous.revision if previous else None,
            content_hash=previous.last_sync_hash if previous else None,
            spec_hash=previous.spec_hash if previous else None,
            signing_key_id=previous.signing_key_id if previous else None,
        )
        try:
            options = SyncOptions(
                executor=self.ctx.cpu_executor,
                on_fetch=announce,
                before_publish=lambda location: self._before_publish(spec, store, location),
                signer=await load_signer(spec.signing, self.namespace, self.ctx.kube),
            )
            outcome: SyncOutcome | SyncFailure
            if spec.sources is not None:
                outcome = await run_multi_sync(
                    spec=spec,
                    sources=[(named, self._catalog_source(named)) for named in spec.sources],
                    store=store,
                    last_good=last_good,
                    previous={source.name: source.revision for source in observed.sources or ()},
                    memos=self.source_memos,
                    options=options,
                )
            else:
                outcome = await run_sync(
                    spec=spec,
                    source=build_source(
                        spec,
                        self.namespace,
                        self.ctx.kube,
                        self.ctx.git,
                        self.ctx.executor,
                        registry=self.name,
                    ),
                    store=store,
                    last_good=last_good,
                    options=options,
                )
        except ObjectGone:
            return None
        except SigningKeyError as exc:  # nothing stored changes: the last good catalogue stays served
            outcome = SyncFailure(SyncStage.SPEC, exc.reason, exc.message)
        except Exception as exc:
            # Outside run_sync's own handling: a status write (the Syncing mark) or the Role widened
            # before publishing, both requests to the API server; anything else is a bug.
            outcome = failure_from_error(exc, SyncStage.STORAGE)
            if outcome.stage is SyncStage.INTERNAL:
                log.exception("%s/%s: unexpected error during sync", self.namespace, self.name)
        if current_obj is None:
            return None
        now = _now()
        result.mutations.append(lambda s: decisions.record_trigger(s, trigger=trigger))
        count_sync(outcome if isinstance(outcome, SyncOutcome) else None)
        if isinstance(outcome, SyncFailure):
            failure = outcome
            result.mutations.append(
                lambda s: decisions.record_failure(
                    s, failure, generation=generation, started=started, now=now
                )
            )
            result.events.append(("Warning", "SyncFailed", failure.message))
            log.warning(
                "%s/%s: sync failed (%s): %s", self.namespace, self.name, failure.reason, failure.message
            )
            return current_obj

        success = outcome
        # The data may have moved (storage.type switched, another bucket or prefix): it is safely in
        # the new place, so remove the old copy while status.storageRef still names it (a crash here
        # leaves storageRef pointing at the old place, and the next sync cleans up again).
        await cleanup_after_move(
            self.ctx.api, self.ctx.events, obj, spec, observed.storage_ref, success.storage_location
        )
        result.mutations.append(
            lambda s: decisions.record_success(
                s, success, spec=spec, generation=generation, started=started, now=now
            )
        )
        result.events.extend(source_events(observed, success))
        skipped = quarantine.skipped_event(success.entries, previous.skipped_hash if previous else None)
        if skipped is not None:
            result.events.append(("Warning", quarantine.ENTRIES_SKIPPED, skipped))
        if previous_failures:
            result.events.append(
                (
                    "Normal",
                    "SyncRecovered",
                    f"sync succeeded again after {previous_failures} failed attempt(s)",
                )
            )
        if success.written:
            result.events.append(
                (
                    "Normal",
                    "Synced",
                    f"stored {success.server_count} servers ({success.content_hash[:19]}…) from "
                    f"{success.source} at {success.revision[:12]}",
                )
            )
        log.info(
            "%s/%s: sync ok (%s): revision=%s hash=%s written=%s fetched=%s",
            self.namespace,
            self.name,
            reason,
            success.revision[:12],
            success.content_hash[:19],
            success.written,
            success.fetched,
        )
        return current_obj

    def _catalog_source(self, named: NamedSource) -> CatalogSource:
        """One source of spec.sources; one that cannot be built fails alone (see `FailedSource`)."""
        try:
            return build_source(
                named, self.namespace, self.ctx.kube, self.ctx.git, self.ctx.executor, registry=self.name
            )
        except SourceError as exc:
            return FailedSource(exc, f"source {named.name}")

    async def _before_publish(
        self, spec: MCPRegistrySpec, store: CatalogStore, location: StorageLocation
    ) -> None:
        """Before the head switches to a new generation: the API pods may read its parts."""
        new = list(location.config_maps)
        if not new or self.api is None:
            return
        current = await store.resource_names()
        await self.api.allow_reading(spec, current, new)

    # --- the API workload ---------------------------------------------------------------------

    async def _reconcile_api(
        self, obj: JsonObject, spec: MCPRegistrySpec, generation: int, result: PassResult
    ) -> None:
        assert self.api is not None  # made at the start of the pass
        now = _now()
        try:
            store = self.ctx.store_factory(spec, obj)
            data_configmaps: Sequence[str] = await store.resource_names()
            report: ApiReport = await self.api.reconcile(spec, data_configmaps)
        except Exception as exc:
            # Reported, retried on the next pass; the catalogue keeps being served meanwhile.
            self.api.mark_dirty()
            message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError) else str(exc)
            log.warning("%s/%s: cannot reconcile the API workload: %s", self.namespace, self.name, message)
            result.mutations.append(
                lambda s: decisions.record_workload_error(s, message, generation=generation, now=now)
            )
            self.api_failures += 1
            return
        self.api_failures = 0
        result.mutations.append(lambda s: apply_api_report(s, report, generation=generation, now=now))

    # --- status -------------------------------------------------------------------------------

    async def _write_status(
        self,
        obj: JsonObject,
        mutations: Sequence[Mutation],
        *,
        spec: MCPRegistrySpec | None,
        generation: int,
    ) -> JsonObject | None:
        """Apply `mutations` to the object's status and write it, conditional on its resourceVersion.

        Returns the object as written (or `obj` itself when nothing changed), None when it is gone or
        being deleted. On a conflict the object is read again and the mutations applied afresh.
        """
        current = obj
        for _ in range(STATUS_WRITE_ATTEMPTS):
            observed = parse_status(current)
            desired = observed.model_copy(deep=True)
            for mutate in mutations:
                mutate(desired)
            if spec is not None:
                derive_overall(desired, api_enabled=spec.api.enabled, generation=generation)
            payload = _dump(desired)
            if payload == _dump(observed) and current.get("status") is not None:
                return current  # nothing new to say: no write, no watch event
            meta = current.get("metadata") or {}
            body = {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "resourceVersion": meta.get("resourceVersion"),
                },
                "status": payload,
            }
            try:
                written = await self.ctx.kube.replace(MCPREGISTRY_STATUS, self.namespace, self.name, body)
            except NotFoundError:
                return None
            except ConflictError:
                fresh = await self.ctx.kube.get(MCPREGISTRIES, self.namespace, self.name)
                if fresh is None or (fresh.get("metadata") or {}).get("deletionTimestamp"):
                    return None
                # Written anyway when the spec changed meanwhile: what this pass found is the truth
                # about the generation it acted on, and the next pass (woken by the change) acts on
                # the new one.
                current = fresh
                continue
            version = (written.get("metadata") or {}).get("resourceVersion")
            if version:
                self.own_writes.append(str(version))
            return written
        raise ConflictError(
            409, "Conflict", f"status of {self.namespace}/{self.name} kept changing under the operator"
        )


async def write_terminating(kube: KubeClient, namespace: str, name: str) -> None:
    """The finalizer's first step: phase Terminating, unconditionally (deletion outranks any pass)."""
    await kube.merge_patch(
        MCPREGISTRY_STATUS,
        namespace,
        name,
        {"status": {"phase": "Terminating", "message": "deleting"}},
    )
