"""Kopf handlers: the operator's wiring. Each MCPRegistry gets one daemon running its
`RegistryController`; every other handler only wakes that controller up.

Kopf's own bookkeeping is kept out of `status`: progress and the last-handled configuration live in
annotations under `mcpregistry.dev/`, and handlers return nothing (Kopf would store results in status).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from kubernetes_asyncio import client, config

from mcpreg.kube import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NETWORK_POLICIES,
    ROLE_BINDINGS,
    ROLES,
    SERVICE_ACCOUNTS,
    SERVICES,
    KubeClient,
    KubeError,
    NotFoundError,
)
from mcpreg.labels import (
    API_COMPONENT,
    CATALOG_COMPONENT,
    COMPONENT,
    INSTANCE,
    MANAGED_BY,
    OPERATOR,
    is_managed,
)
from mcpreg.storage.configmap_layout import ANNOTATION_HASH, LABEL_OBJECT
from mcpreg.storage.errors import StorageError
from mcpreg_operator import looplag
from mcpreg_operator.api_reconciler import delete_token_review_binding
from mcpreg_operator.controller import OperatorContext, RegistryController, write_terminating
from mcpreg_operator.events import EventRecorder
from mcpreg_operator.metawatch import EventType, MetadataWatch, NamespaceScope, ObjectMeta
from mcpreg_operator.source_readers import SourceReaders
from mcpreg_operator.source_watches import SourceWatches
from mcpreg_operator.sources.git import GitClient, GitFetchLimits
from mcpreg_operator.spec.identity import GROUP, PLURAL, VERSION
from mcpreg_operator.storage_factory import build_store, delete_storage

log = logging.getLogger(__name__)

CONTROLLERS: dict[tuple[str, str], RegistryController] = {}
SOURCE_READERS = SourceReaders()
# The operator's `--namespace` patterns (empty: every namespace); set before Kopf starts.
WATCH_NAMESPACES: list[str] = []
STORAGE_DELETE_RETRIES = 5  # the finalizer's attempts to remove S3 objects before letting go


async def _api_client() -> client.ApiClient:
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config()
    return client.ApiClient()


def _watch_api_client() -> client.ApiClient:
    """A client of its own for the long-lived watches (after `_api_client` loaded the configuration):
    each holds a connection for as long as it runs, one per source ConfigMap among them, so they must
    neither count against nor wait on the pool of 100 connections the operator's requests share."""
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = None  # type: ignore[assignment]
    return client.ApiClient(configuration)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Kopf would post an Event for every handler run; ours are the ones a person wants to read.
    settings.posting.level = logging.WARNING
    # A watch can go quiet without closing: seen right after the CRD is installed, while the API server
    # (re)initializes the new resource's storage, the operator's first watch delivered nothing for the
    # whole client timeout (then 300 s). Kopf relists on every reconnect, and MCPRegistries are few, so
    # short timeouts bound such a stall at a minute for the price of a small list a minute.
    settings.watching.server_timeout = 45
    settings.watching.client_timeout = 60
    # Git and parsing run in threads; git mostly waits on the network, so more threads than cores.
    executor = ThreadPoolExecutor(
        max_workers=int(os.environ.get("MCPREG_SYNC_WORKERS", "16")), thread_name_prefix="mcpreg-sync"
    )
    api = await _api_client()
    memo.ctx = OperatorContext(
        api=api,
        # A git command that takes longer than this (default 120 s) fails the sync as SourceUnreachable.
        git=GitClient(GitFetchLimits(timeout_s=float(os.environ.get("MCPREG_GIT_TIMEOUT_SECONDS", "120")))),
        executor=executor,
        store_factory=lambda spec, body: build_store(api, spec, body),
        events=EventRecorder(),
        cpu_executor=ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="mcpreg-parse"),
        sync_slots=asyncio.Semaphore(int(os.environ.get("MCPREG_MAX_CONCURRENT_SYNCS", "4"))),
    )
    # How late the event loop wakes: the operator's health under load (mcpreg_operator_event_loop_lag_*).
    looplag.start_lag_monitor()
    # Kopf watches MCPRegistries; everything else the operator only needs to hear about is watched by
    # metadata (see `metawatch`), in tasks of their own that live as long as the operator.
    memo.watch_api = _watch_api_client()
    watch_kube = KubeClient(memo.watch_api)
    watches = metadata_watches(watch_kube, WATCH_NAMESPACES)
    memo.watch_tasks = [asyncio.create_task(watch.run(), name=repr(watch)) for watch in watches]
    # Source ConfigMaps, one watch each, following the MCPRegistries' specs (see `registry_changed`).
    memo.source_watches = SourceWatches(watch_kube, configmap_changed, NamespaceScope(WATCH_NAMESPACES))
    memo.source_watches.follow(SOURCE_READERS.sources())


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    tasks: list[asyncio.Task[None]] = memo.get("watch_tasks") or []
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    source_watches: SourceWatches | None = memo.get("source_watches")
    if source_watches is not None:
        await source_watches.stop()
    watch_api: client.ApiClient | None = memo.get("watch_api")
    if watch_api is not None:
        await watch_api.close()
    ctx: OperatorContext | None = memo.get("ctx")
    if ctx is not None:
        await ctx.api.close()
        for pool in (ctx.executor, ctx.cpu_executor):
            if isinstance(pool, ThreadPoolExecutor):
                pool.shutdown(wait=False, cancel_futures=True)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=30.0)
async def registry_loop(
    name: str, namespace: str | None, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any
) -> None:
    """One per MCPRegistry, started on creation and on operator resume (which is when it first syncs)."""
    assert namespace is not None  # MCPRegistry is namespaced
    controller = RegistryController(namespace=namespace, name=name, ctx=memo.ctx)
    CONTROLLERS[(namespace, name)] = controller
    try:
        await controller.run(stopped)
    finally:
        if CONTROLLERS.get((namespace, name)) is controller:
            del CONTROLLERS[(namespace, name)]


@kopf.on.event(GROUP, VERSION, PLURAL)
async def registry_changed(
    name: str,
    namespace: str | None,
    meta: kopf.Meta,
    spec: kopf.Spec,
    type: str | None,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Spec, annotation (the manual trigger) or status changes: let the controller re-evaluate, unless
    the change is the controller's own status write. Async, so that it runs on the event loop: it
    starts and stops the source ConfigMaps' watches."""
    if type == "DELETED":
        SOURCE_READERS.forget(namespace or "", name)
    else:
        SOURCE_READERS.update(namespace or "", name, spec)
    source_watches: SourceWatches | None = memo.get("source_watches")
    if source_watches is not None:
        source_watches.follow(SOURCE_READERS.sources())
    controller = CONTROLLERS.get((namespace or "", name))
    if controller is not None and not controller.is_own_write(meta.get("resourceVersion")):
        controller.wake()


def configmap_changed(kind: EventType, obj: ObjectMeta) -> None:
    """A source ConfigMap changed (sync it promptly), one of our data ConfigMaps did (check it), or the
    API's configuration ConfigMap did (part of the API workload: restore it). Called by the watch of
    the operator's own ConfigMaps and by each source ConfigMap's watch."""
    labels = obj.labels
    if is_managed(labels) and labels.get(COMPONENT) == API_COMPONENT:
        workload_changed(kind, obj)
        return
    for registry in SOURCE_READERS.readers(obj.namespace, obj.name):
        controller = CONTROLLERS.get((obj.namespace, registry))
        if controller is not None:
            controller.wake("SourceChanged")
    # Our own data ConfigMaps: deleted, or holding other data than we stored (edited behind our back),
    # means storage must be checked. Our own writes come back as events too; those are ignored.
    if is_managed(labels) and kind in ("DELETED", "MODIFIED"):
        controller = CONTROLLERS.get((obj.namespace, labels.get(INSTANCE, "")))
        if controller is None:
            return
        edited_head = labels.get(LABEL_OBJECT) == "head" and controller.storage_event_is_foreign(
            obj.annotations.get(ANNOTATION_HASH)
        )
        if kind == "DELETED" or edited_head:
            controller.wake("StorageChanged")


def workload_changed(kind: EventType, obj: ObjectMeta) -> None:
    """An object of an API workload changed (an edit, a deletion, a Deployment's status moving as pods
    become ready): the owning registry's controller re-checks and reports it."""
    controller = CONTROLLERS.get((obj.namespace, obj.labels.get(INSTANCE, "")))
    if controller is not None:
        controller.workload_changed()


def metadata_watches(kube: KubeClient, namespaces: Sequence[str]) -> list[MetadataWatch]:
    """The operator's own ConfigMaps (catalogue data, API configuration) and the API workload's kinds,
    selected by their labels on the server, in the namespaces the operator serves: `namespaces` as
    given to `mcpreg operator --namespace` (none: the whole cluster). Names are watched one namespace
    each, which is all a namespaced install's Roles allow; glob patterns need the cluster-wide watch,
    filtered here as Kopf filters them. Source ConfigMaps are watched one by one (`SourceWatches`):
    no other ConfigMap reaches the operator."""
    scope = NamespaceScope(namespaces)
    watches = []
    for namespace in scope.watched():
        watches.append(
            MetadataWatch(
                kube,
                CONFIGMAPS,
                scope.only(configmap_changed),
                namespace=namespace,
                label_selector=OWN_CONFIGMAPS_SELECTOR,
            )
        )
        watches.extend(
            MetadataWatch(
                kube,
                resource,
                scope.only(workload_changed),
                namespace=namespace,
                label_selector=_WORKLOAD_SELECTOR,
            )
            for resource in _WORKLOAD_KINDS
        )
    return watches


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def registry_deleted(
    name: str, namespace: str | None, memo: kopf.Memo, body: kopf.Body, retry: int, **_: Any
) -> None:
    """Say Terminating, and remove what ownerReferences cannot (S3 objects). Owned Kubernetes
    objects go by garbage collection. Must work even when the spec is invalid."""
    ctx: OperatorContext = memo.ctx
    try:
        await write_terminating(ctx.kube, namespace or "", name)
    except NotFoundError:
        pass
    except KubeError as exc:
        log.warning("%s/%s: cannot mark Terminating: %s", namespace, name, exc)
    # The token-review ClusterRoleBinding (auth mode kubernetes): cluster-scoped, so not collected.
    try:
        await delete_token_review_binding(ctx.kube, namespace or "", name)
    except KubeError as exc:
        raise kopf.TemporaryError(f"cannot remove the API's token-review binding: {exc}", delay=5) from None
    # S3 objects: found from the spec, or from status.storageRef when the spec is invalid. Retried
    # while the service fails; after a few attempts the registry is let go (so a namespace can always
    # be deleted), with a Warning Event saying what was left behind.
    try:
        done = await delete_storage(ctx.api, namespace or "", name, body)
    except (StorageError, KubeError) as exc:
        if retry < STORAGE_DELETE_RETRIES:
            raise kopf.TemporaryError(f"cannot remove the catalogue from storage: {exc}", delay=5) from None
        message = f"gave up removing the catalogue from storage after {retry + 1} attempts: {exc}"
        log.warning("%s/%s: %s; remove the objects by hand", namespace, name, message)
        ctx.events.warning(body, "StorageNotRemoved", message)
        return
    log.info("%s/%s: deleted: %s", namespace, name, done)


# The API workload the operator owns, found by its labels on the server (the configuration ConfigMap
# comes with the ConfigMap watch).
_WORKLOAD_SELECTOR = f"{MANAGED_BY}={OPERATOR},{COMPONENT}={API_COMPONENT}"
# The operator's own ConfigMaps: the catalogue's head and parts, and each API's configuration.
OWN_CONFIGMAPS_SELECTOR = f"{MANAGED_BY}={OPERATOR},{COMPONENT} in ({CATALOG_COMPONENT},{API_COMPONENT})"
_WORKLOAD_KINDS = (DEPLOYMENTS, SERVICES, SERVICE_ACCOUNTS, ROLES, ROLE_BINDINGS, NETWORK_POLICIES)
