"""Kopf handlers: the operator's wiring. Each MCPRegistry gets one daemon running its
`RegistryController`; every other handler only wakes that controller up.

Kopf's own bookkeeping is kept out of `status`: progress and the last-handled configuration live in
annotations under `mcpregistry.dev/`, and handlers return nothing (Kopf would store results in status).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from kubernetes_asyncio import client, config

from mcpreg.kube import KubeError, NotFoundError
from mcpreg.labels import API_COMPONENT, COMPONENT, INSTANCE, MANAGED_BY, OPERATOR, is_managed
from mcpreg.storage.configmap_layout import ANNOTATION_HASH, LABEL_OBJECT
from mcpreg.storage.errors import StorageError
from mcpreg_operator import looplag
from mcpreg_operator.controller import OperatorContext, RegistryController, write_terminating
from mcpreg_operator.events import EventRecorder
from mcpreg_operator.sources.git import GitClient, GitFetchLimits
from mcpreg_operator.spec.identity import GROUP, PLURAL, VERSION
from mcpreg_operator.storage_factory import build_store, delete_storage

log = logging.getLogger(__name__)

CONTROLLERS: dict[tuple[str, str], RegistryController] = {}
STORAGE_DELETE_RETRIES = 5  # the finalizer's attempts to remove S3 objects before letting go


async def _api_client() -> client.ApiClient:
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config()
    return client.ApiClient()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Kopf would post an Event for every handler run; ours are the ones a person wants to read.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
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


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
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
def registry_changed(name: str, namespace: str | None, meta: kopf.Meta, **_: Any) -> None:
    """Spec, annotation (the manual trigger) or status changes: let the controller re-evaluate, unless
    the change is the controller's own status write."""
    controller = CONTROLLERS.get((namespace or "", name))
    if controller is not None and not controller.is_own_write(meta.get("resourceVersion")):
        controller.wake()


@kopf.index(GROUP, VERSION, PLURAL)
def source_configmaps(
    name: str, namespace: str | None, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], str] | None:
    """Which MCPRegistries read which ConfigMap, so a change of that ConfigMap syncs them promptly."""
    source = spec.get("source") or {}
    config_map = source.get("configMap") or {}
    if source.get("type") == "configmap" and config_map.get("name"):
        return {(namespace or "", str(config_map["name"])): name}
    return None


@kopf.on.event("", "v1", "configmaps")
def configmap_changed(
    name: str,
    namespace: str | None,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    type: str,
    source_configmaps: kopf.Index[tuple[str, str], str] | None = None,
    **_: Any,
) -> None:
    """A source ConfigMap changed (sync it promptly), one of our data ConfigMaps did (check it), or the
    API's configuration ConfigMap did (part of the API workload: restore it)."""
    namespace = namespace or ""
    if is_managed(labels) and labels.get(COMPONENT) == API_COMPONENT:
        _workload_changed(namespace, labels)
        return
    readers: Iterable[str] = (
        source_configmaps.get((namespace, name), []) if source_configmaps is not None else []
    )
    for registry in readers:
        controller = CONTROLLERS.get((namespace, registry))
        if controller is not None:
            controller.wake("SourceChanged")
    # Our own data ConfigMaps: deleted, or holding other data than we stored (edited behind our back),
    # means storage must be checked. Our own writes come back as events too; those are ignored.
    if is_managed(labels) and type in ("DELETED", "MODIFIED"):
        controller = CONTROLLERS.get((namespace, labels.get(INSTANCE, "")))
        if controller is None:
            return
        edited_head = labels.get(LABEL_OBJECT) == "head" and controller.storage_event_is_foreign(
            (annotations or {}).get(ANNOTATION_HASH)
        )
        if type == "DELETED" or edited_head:
            controller.wake("StorageChanged")


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


# The API workload the operator owns: any change (an edit, a deletion, a Deployment's status moving as
# pods become ready) lets the owning registry's controller re-check it and report it.
_WORKLOAD_LABELS = {MANAGED_BY: OPERATOR, COMPONENT: API_COMPONENT}


def _workload_changed(namespace: str | None, labels: Mapping[str, str]) -> None:
    controller = CONTROLLERS.get((namespace or "", labels.get(INSTANCE, "")))
    if controller is not None:
        controller.workload_changed()


def api_workload_changed(namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
    _workload_changed(namespace, labels)


# The kinds of the API workload (the configuration ConfigMap is seen by `configmap_event`).
_WORKLOAD_KINDS = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("", "v1", "serviceaccounts"),
    ("rbac.authorization.k8s.io", "v1", "roles"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
)
for _group, _version, _plural in _WORKLOAD_KINDS:
    kopf.on.event(_group, _version, _plural, labels=_WORKLOAD_LABELS)(api_workload_changed)
