"""The operator's metadata-only watches (`mcpreg_operator.metawatch`) against the real API server:
ConfigMaps in every namespace without their data, label-selected workload kinds, the relist that
turns a gap in the watch into the events it missed, and the ConfigMap watches the operator runs (its
own ConfigMaps by label, each source by name) hearing of nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio
from kubernetes import client as sync_client
from kubernetes_asyncio import config as async_config
from kubernetes_asyncio.client import ApiClient

from fixtures.kube import Kube
from mcpreg import labels
from mcpreg.kube import CONFIGMAPS, SERVICES, ForbiddenError, KubeClient
from mcpreg_operator.handlers import OWN_CONFIGMAPS_SELECTOR
from mcpreg_operator.metawatch import EventType, MetadataWatch, NamespaceScope, ObjectMeta
from mcpreg_operator.source_watches import SourceWatches

pytestmark = pytest.mark.integration

BIG_VALUE = "x" * 600_000  # a large ConfigMap: its data must never reach the operator


@pytest_asyncio.fixture(loop_scope="function")
async def kube_client(kube: Kube) -> AsyncIterator[KubeClient]:
    api: ApiClient = await async_config.new_client_from_config(config_file=str(kube.kubeconfig))
    yield KubeClient(api)
    await api.close()


@asynccontextmanager
async def running(watch: MetadataWatch) -> AsyncIterator[MetadataWatch]:
    """`watch` running in a task, its first listing done; cancelled on exit."""
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.wait_for(watch.listed.wait(), 30)
        yield watch
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[EventType, ObjectMeta]] = []

    def __call__(self, kind: EventType, meta: ObjectMeta) -> None:
        self.events.append((kind, meta))

    def of(self, namespace: str) -> list[tuple[EventType, str]]:
        """Events of `namespace`, leaving out the CA bundle ConfigMap Kubernetes puts in every one."""
        return [
            (kind, meta.name)
            for kind, meta in self.events
            if meta.namespace == namespace and meta.name != "kube-root-ca.crt"
        ]

    async def wait_for(
        self, namespace: str, expected: tuple[EventType, str], within: float = 30
    ) -> ObjectMeta:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            for kind, meta in self.events:
                if meta.namespace == namespace and (kind, meta.name) == expected:
                    return meta
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {expected} in {namespace}; got {self.of(namespace)}")


def _configmap(
    name: str, value: str = "v", extra_labels: dict[str, str] | None = None
) -> sync_client.V1ConfigMap:
    return sync_client.V1ConfigMap(
        metadata=sync_client.V1ObjectMeta(name=name, labels=extra_labels or {}, annotations={"note": "a"}),
        data={"registry.json": value},
    )


async def test_configmaps_of_every_namespace_arrive_as_metadata(
    kube: Kube, kube_client: KubeClient, namespace: str
) -> None:
    recorder = Recorder()
    async with running(MetadataWatch(kube_client, CONFIGMAPS, recorder, watch_timeout=5)):
        assert recorder.of(namespace) == [], "the first listing reports nothing"
        created = _configmap("source", BIG_VALUE, {"team": "a"})
        await asyncio.to_thread(kube.core.create_namespaced_config_map, namespace, created)
        added = await recorder.wait_for(namespace, ("ADDED", "source"))
        assert added.labels == {"team": "a"}
        assert added.annotations == {"note": "a"}
        await asyncio.to_thread(
            kube.core.patch_namespaced_config_map, "source", namespace, {"data": {"registry.json": "{}"}}
        )
        modified = await recorder.wait_for(namespace, ("MODIFIED", "source"))
        assert int(modified.resource_version) > int(added.resource_version)
        # The watch resumes across the server ending it (timeoutSeconds=5) without losing events.
        await asyncio.sleep(6)
        await asyncio.to_thread(kube.core.delete_namespaced_config_map, "source", namespace)
        await recorder.wait_for(namespace, ("DELETED", "source"))
        assert recorder.of(namespace) == [("ADDED", "source"), ("MODIFIED", "source"), ("DELETED", "source")]
        # What the watch asks for carries no data: the same request, listed.
        items, _ = await kube_client.list(CONFIGMAPS, "", metadata_only=True)
        assert items and all("data" not in item for item in items)


async def test_a_label_selector_narrows_the_watch_on_the_server(
    kube: Kube, kube_client: KubeClient, namespace: str
) -> None:
    workload = {labels.MANAGED_BY: labels.OPERATOR, labels.COMPONENT: labels.API_COMPONENT}
    selector = ",".join(f"{key}={value}" for key, value in workload.items())
    recorder = Recorder()
    async with running(MetadataWatch(kube_client, SERVICES, recorder, label_selector=selector)):
        for name, service_labels in (("other", {"app": "x"}), ("api", workload)):
            service = sync_client.V1Service(
                metadata=sync_client.V1ObjectMeta(name=name, labels=service_labels),
                spec=sync_client.V1ServiceSpec(ports=[sync_client.V1ServicePort(port=80)]),
            )
            await asyncio.to_thread(kube.core.create_namespaced_service, namespace, service)
        await recorder.wait_for(namespace, ("ADDED", "api"))
        await asyncio.sleep(1)
        assert recorder.of(namespace) == [("ADDED", "api")]


async def test_a_relist_reports_what_changed_while_not_watching(
    kube: Kube, kube_client: KubeClient, namespace: str
) -> None:
    """After an expired position (410 Gone) the watch lists again: the differences from what it knew
    become events, so a ConfigMap deleted or edited during the gap is not missed."""
    for name in ("kept", "edited", "deleted"):
        await asyncio.to_thread(kube.core.create_namespaced_config_map, namespace, _configmap(name))
    recorder = Recorder()
    watch = MetadataWatch(kube_client, CONFIGMAPS, recorder)
    await watch._list()
    assert recorder.of(namespace) == []
    await asyncio.to_thread(
        kube.core.patch_namespaced_config_map, "edited", namespace, {"data": {"registry.json": "2"}}
    )
    await asyncio.to_thread(kube.core.delete_namespaced_config_map, "deleted", namespace)
    await asyncio.to_thread(kube.core.create_namespaced_config_map, namespace, _configmap("new"))
    await watch._list()
    assert sorted(recorder.of(namespace)) == [
        ("ADDED", "new"),
        ("DELETED", "deleted"),
        ("MODIFIED", "edited"),
    ]
    assert watch.lists == 2


async def test_the_operator_hears_only_of_its_own_configmaps_and_its_sources(
    kube: Kube, kube_client: KubeClient, namespace: str
) -> None:
    """The operator's two ConfigMap watches, with the selectors it uses: its own ConfigMaps by label,
    each source by name. A change of any other ConfigMap (here many, one of them large) reaches
    neither, so it wakes nothing; a source change arrives within seconds."""
    recorder = Recorder()
    own = MetadataWatch(
        kube_client, CONFIGMAPS, recorder, namespace=namespace, label_selector=OWN_CONFIGMAPS_SELECTOR
    )
    sources = SourceWatches(kube_client, recorder, NamespaceScope([]), watch_timeout=5)
    async with running(own):
        sources.follow({(namespace, "source")})
        await asyncio.sleep(1)  # the source's first (empty) listing
        try:
            data_labels = {
                labels.MANAGED_BY: labels.OPERATOR,
                labels.COMPONENT: labels.CATALOG_COMPONENT,
                labels.INSTANCE: "reg",
            }
            unrelated = [_configmap(f"unrelated-{i}") for i in range(20)]
            unrelated.append(_configmap("unrelated-big", BIG_VALUE))
            # Managed by someone else, or ours but of no component the operator watches.
            unrelated.append(_configmap("other-manager", extra_labels={labels.MANAGED_BY: "helm"}))
            for body in [*unrelated, _configmap("reg-data", extra_labels=data_labels), _configmap("source")]:
                await asyncio.to_thread(kube.core.create_namespaced_config_map, namespace, body)
            await recorder.wait_for(namespace, ("ADDED", "reg-data"))
            await recorder.wait_for(namespace, ("ADDED", "source"))
            started = asyncio.get_running_loop().time()
            for name in [str(body.metadata.name) for body in unrelated] + ["source"]:
                await asyncio.to_thread(
                    kube.core.patch_namespaced_config_map, name, namespace, {"data": {"registry.json": "2"}}
                )
            await recorder.wait_for(namespace, ("MODIFIED", "source"), within=5)
            assert asyncio.get_running_loop().time() - started < 5, "a source change is noticed promptly"
            await asyncio.sleep(1)
            assert sorted(recorder.of(namespace)) == [
                ("ADDED", "reg-data"),
                ("ADDED", "source"),
                ("MODIFIED", "source"),
            ]
        finally:
            await sources.stop()


async def test_source_watches_follow_the_registries_specs(
    kube: Kube, kube_client: KubeClient, namespace: str
) -> None:
    """A source no registry reads any more is no longer watched; a newly named one is, from its
    creation on (a registry may name a ConfigMap before it exists)."""
    recorder = Recorder()
    sources = SourceWatches(kube_client, recorder, NamespaceScope([namespace]), watch_timeout=5)
    try:
        for name in ("first", "second"):
            await asyncio.to_thread(kube.core.create_namespaced_config_map, namespace, _configmap(name))
        sources.follow({(namespace, "first"), ("not-served", "first")})
        assert set(sources.tasks) == {(namespace, "first")}, "only namespaces the operator serves"
        await asyncio.sleep(1)
        sources.follow({(namespace, "second"), (namespace, "later")})
        await asyncio.sleep(1)
        for name in ("first", "second"):
            await asyncio.to_thread(
                kube.core.patch_namespaced_config_map, name, namespace, {"data": {"registry.json": "2"}}
            )
        await asyncio.to_thread(kube.core.create_namespaced_config_map, namespace, _configmap("later"))
        await recorder.wait_for(namespace, ("MODIFIED", "second"))
        await recorder.wait_for(namespace, ("ADDED", "later"))
        await asyncio.sleep(1)
        assert sorted(recorder.of(namespace)) == [("ADDED", "later"), ("MODIFIED", "second")]
    finally:
        await sources.stop()
    assert sources.tasks == {}


async def test_a_watch_by_name_is_authorized_by_resource_names(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """What the API server allows: a list/watch with an exact `metadata.name` field selector is
    authorized as a request for that name, so a Role with `resourceNames` is enough for a source's
    watch, while the same identity may not list the namespace's ConfigMaps."""
    await asyncio.to_thread(kube.core.create_namespaced_config_map, namespace, _configmap("source"))
    rule = {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["source"],
        "verbs": ["list", "watch"],
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "one-name"},
        "rules": [rule],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "one-name"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "one-name"},
        "subjects": [{"kind": "ServiceAccount", "name": "watcher", "namespace": namespace}],
    }
    await asyncio.to_thread(kube.rbac.create_namespaced_role, namespace, role)
    await asyncio.to_thread(kube.rbac.create_namespaced_role_binding, namespace, binding)
    kubeconfig = await asyncio.to_thread(
        kube.service_account_kubeconfig, namespace, "watcher", tmp_path / "watcher.kubeconfig"
    )
    api: ApiClient = await async_config.new_client_from_config(config_file=str(kubeconfig))
    as_watcher = KubeClient(api)
    recorder = Recorder()
    sources = SourceWatches(as_watcher, recorder, NamespaceScope([]), watch_timeout=5)
    try:
        with pytest.raises(ForbiddenError):
            await as_watcher.list(CONFIGMAPS, namespace, metadata_only=True)
        with pytest.raises(ForbiddenError):
            await as_watcher.list(
                CONFIGMAPS, namespace, field_selector="metadata.name=other", metadata_only=True
            )
        sources.follow({(namespace, "source")})
        await asyncio.sleep(1)
        await asyncio.to_thread(
            kube.core.patch_namespaced_config_map, "source", namespace, {"data": {"registry.json": "2"}}
        )
        await recorder.wait_for(namespace, ("MODIFIED", "source"), within=10)
    finally:
        await sources.stop()
        await api.close()
