"""ConfigMap storage against the real control plane: round trips in every layout, no rewrite when
unchanged, readers that never see half a generation, cleanup, ownership and garbage collection,
and a reader confined by RBAC to the names the writer reports."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kubernetes import client as sync_client
from kubernetes_asyncio import config as async_config
from kubernetes_asyncio.client import ApiClient

from fixtures.kube import Kube, configmap_reader_role, wait_until
from mcpreg import labels
from mcpreg.kube import ConfigMapClient, ForbiddenError, GoneError, KubeError, KubeUnavailableError
from mcpreg.storage import (
    Backoff,
    CatalogReader,
    CatalogStore,
    ConfigMapAddress,
    ConfigMapCatalogReader,
    ConfigMapCatalogStore,
    EncodingLimits,
    OwnerReference,
    StorageConflictError,
    StorageCorruptError,
    StorageError,
    StorageLocation,
    StoredCatalog,
)
from mcpreg_dev.samples import replicated_catalog_json

pytestmark = pytest.mark.integration

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
LATEST = SHARED / "toolhive" / "registry-2026-02-18.json"
OLDER = SHARED / "toolhive" / "registry-2025-12-03.json"
REGISTRY = "company-registry"
KIB = 1024

# Split sooner than the default 900 KiB so that mid-sized catalogues have many parts and writes
# are quick: the code paths are the same.
SMALL_PARTS = EncodingLimits(max_object_bytes=96 * KIB)


def stored(data: bytes, revision: str, count: int) -> StoredCatalog:
    return StoredCatalog.create(data, revision=revision, server_count=count)


@pytest.fixture(scope="module")
def small() -> StoredCatalog:
    data, count = replicated_catalog_json(LATEST, 102)  # the real catalogue, canonical: ~190 KB
    return stored(data, "small", count)


@pytest.fixture(scope="module")
def medium() -> StoredCatalog:
    data, count = replicated_catalog_json(LATEST, 1000)  # ~1.9 MB: too big as-is, fits compressed
    return stored(data, "medium", count)


@pytest.fixture(scope="module")
def large() -> StoredCatalog:
    data, count = replicated_catalog_json(LATEST, 10_000)  # ~18.5 MB, ~3 MB compressed: split
    return stored(data, "large", count)


@pytest.fixture(scope="module")
def generation_pair() -> tuple[StoredCatalog, StoredCatalog]:
    """Two different catalogues that split into several parts under SMALL_PARTS."""
    a, count_a = replicated_catalog_json(LATEST, 1500)
    b, count_b = replicated_catalog_json(OLDER, 1500)
    return stored(a, "gen-a", count_a), stored(b, "gen-b", count_b)


@pytest_asyncio.fixture(loop_scope="function")  # the test's own loop: aiohttp sessions are bound to one
async def api(kube: Kube) -> AsyncIterator[ApiClient]:
    api_client = await async_config.new_client_from_config(config_file=str(kube.kubeconfig))
    yield api_client
    await api_client.close()


@pytest.fixture
def owner(kube: Kube, namespace: str) -> OwnerReference:
    """A real object to own the storage (a ConfigMap: any namespaced object works for the GC)."""
    created = kube.core.create_namespaced_config_map(
        namespace, sync_client.V1ConfigMap(metadata=sync_client.V1ObjectMeta(name="owner"))
    )
    return OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=created.metadata.uid)


def make_store(
    api: ApiClient, namespace: str, owner: OwnerReference | None, **kwargs: Any
) -> ConfigMapCatalogStore:
    return ConfigMapCatalogStore(ConfigMapAddress(api, namespace, REGISTRY), owner=owner, **kwargs)


def make_reader(api: ApiClient, namespace: str, **kwargs: Any) -> ConfigMapCatalogReader:
    kwargs.setdefault("backoff", Backoff(initial=0.05, maximum=1.0))
    return ConfigMapCatalogReader(ConfigMapAddress(api, namespace, REGISTRY), **kwargs)


def storage_configmaps(kube: Kube, namespace: str) -> dict[str, sync_client.V1ConfigMap]:
    # The catalogue's own objects: an operator in the same session may add the registry's API
    # configuration ConfigMap (same instance label, another component).
    items = kube.core.list_namespaced_config_map(
        namespace,
        label_selector=f"{labels.INSTANCE}={REGISTRY},{labels.COMPONENT}={labels.CATALOG_COMPONENT}",
    ).items
    return {item.metadata.name: item for item in items}


def head(kube: Kube, namespace: str) -> sync_client.V1ConfigMap:
    return kube.core.read_namespaced_config_map(f"{REGISTRY}-data", namespace)


def assert_same(got: StoredCatalog | None, want: StoredCatalog) -> None:
    assert got is not None
    assert got.data == want.data  # byte-identical
    assert got.content_hash == want.content_hash
    assert got.verify()
    assert got.revision == want.revision
    assert got.server_count == want.server_count
    assert got.stored_at == want.stored_at


# --- round trips -------------------------------------------------------------------------------


async def test_small_catalogue_is_stored_as_is(
    api: ApiClient, kube: Kube, namespace: str, owner: OwnerReference, small: StoredCatalog
) -> None:
    store = make_store(api, namespace, owner)
    assert isinstance(store, CatalogStore)
    assert await store.current_hash() is None
    assert await store.location() is None
    assert await store.resource_names() == (f"{REGISTRY}-data",)

    result = await store.write(small)

    assert result.written and result.encoding == "identity" and result.previous_hash is None
    assert result.location == StorageLocation(type="configmap", config_maps=(f"{REGISTRY}-data",))
    assert result.location.to_status() == {"type": "configmap", "configMaps": [f"{REGISTRY}-data"]}
    cm = head(kube, namespace)
    assert cm.data == {"catalog.json": small.data.decode()}  # readable with kubectl
    assert not cm.binary_data
    annotations = cm.metadata.annotations
    assert annotations["mcpregistry.dev/content-hash"] == small.content_hash
    assert annotations["mcpregistry.dev/server-count"] == "102"
    assert annotations["mcpregistry.dev/revision"] == "small"
    assert annotations["mcpregistry.dev/encoding"] == "identity"
    assert datetime.fromisoformat(annotations["mcpregistry.dev/stored-at"]) == small.stored_at
    assert await store.current_hash() == small.content_hash

    reader = make_reader(api, namespace)
    assert isinstance(reader, CatalogReader)
    assert_same(await reader.read(), small)


async def test_medium_catalogue_is_compressed(
    api: ApiClient, kube: Kube, namespace: str, owner: OwnerReference, medium: StoredCatalog
) -> None:
    store = make_store(api, namespace, owner)
    result = await store.write(medium)

    assert result.written and result.encoding == "gzip"
    assert result.location.config_maps == (f"{REGISTRY}-data",)
    assert len(medium.data) > 900 * KIB > result.stored_bytes
    cm = head(kube, namespace)
    assert set(cm.binary_data) == {"catalog.json.gz"} and not cm.data
    assert cm.metadata.annotations["mcpregistry.dev/encoding"] == "gzip"
    assert_same(await make_reader(api, namespace).read(), medium)


async def test_10000_servers_split_round_trip_byte_identical(
    api: ApiClient, kube: Kube, namespace: str, owner: OwnerReference, large: StoredCatalog
) -> None:
    assert large.server_count == 10_000
    store = make_store(api, namespace, owner)
    result = await store.write(large)

    parts = result.location.config_maps[1:]
    assert result.written and result.encoding == "gzip" and len(parts) >= 2
    prefix = f"{REGISTRY}-data-{large.content_hash.removeprefix('sha256:')[:12]}-"
    assert parts == tuple(f"{prefix}{i}" for i in range(len(parts)))
    assert await store.resource_names() == result.location.config_maps
    assert await store.location() == result.location

    objects = storage_configmaps(kube, namespace)
    assert set(objects) == set(result.location.config_maps)
    for name in parts:
        part = objects[name]
        assert part.immutable is True
        assert set(part.binary_data) == {"part"}
    manifest = json.loads(objects[f"{REGISTRY}-data"].metadata.annotations["mcpregistry.dev/parts"])
    assert [entry["name"] for entry in manifest] == list(parts)
    assert not objects[f"{REGISTRY}-data"].data and not objects[f"{REGISTRY}-data"].binary_data

    assert_same(await make_reader(api, namespace).read(), large)


async def test_every_object_is_owned_and_labelled(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
) -> None:
    result = await make_store(api, namespace, owner, limits=SMALL_PARTS).write(generation_pair[0])
    objects = storage_configmaps(kube, namespace)
    assert set(objects) == set(result.location.config_maps) and len(objects) > 2
    for name, cm in objects.items():
        labels = cm.metadata.labels
        assert labels["app.kubernetes.io/name"] == "mcp-registry", name
        assert labels["app.kubernetes.io/instance"] == REGISTRY
        assert labels["app.kubernetes.io/component"] == "catalog-data"
        assert labels["app.kubernetes.io/managed-by"] == "mcp-registry-operator"
        assert labels["mcpregistry.dev/catalog-object"] == ("head" if name == f"{REGISTRY}-data" else "part")
        [ref] = cm.metadata.owner_references
        assert (ref.api_version, ref.kind, ref.name, ref.uid) == ("v1", "ConfigMap", "owner", owner.uid)
        assert ref.controller is True and ref.block_owner_deletion is True


def test_owner_reference_for_registry_shape() -> None:
    assert OwnerReference.for_registry("company-registry", "u-1").to_kube() == {
        "apiVersion": "mcpregistry.dev/v1alpha1",
        "kind": "MCPRegistry",
        "name": "company-registry",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


# --- change detection and cleanup ----------------------------------------------------------------


async def test_unchanged_hash_writes_nothing(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
) -> None:
    store = make_store(api, namespace, owner, limits=SMALL_PARTS)
    first = await store.write(generation_pair[0])
    versions = {
        name: cm.metadata.resource_version for name, cm in storage_configmaps(kube, namespace).items()
    }

    again = StoredCatalog.create(generation_pair[0].data, revision="other-revision", server_count=1500)
    second = await store.write(again)

    assert first.written and not second.written
    assert second.location == first.location
    assert second.previous_hash == second.content_hash == first.content_hash
    after = {name: cm.metadata.resource_version for name, cm in storage_configmaps(kube, namespace).items()}
    assert after == versions  # not a single object touched


async def test_switching_generations_deletes_old_parts(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
    small: StoredCatalog,
) -> None:
    store = make_store(api, namespace, owner, limits=SMALL_PARTS)
    reader = make_reader(api, namespace, limits=SMALL_PARTS)
    a, b = generation_pair
    first = await store.write(a)
    second = await store.write(b)

    assert second.written and second.previous_hash == a.content_hash
    assert set(second.removed) == set(first.location.config_maps[1:])
    assert set(storage_configmaps(kube, namespace)) == set(second.location.config_maps)
    assert_same(await reader.read(), b)

    third = await store.write(small)  # split → inline: every part goes
    assert set(third.removed) == set(second.location.config_maps[1:])
    assert set(storage_configmaps(kube, namespace)) == {f"{REGISTRY}-data"}
    assert_same(await reader.read(), small)


async def test_orphaned_parts_of_a_crashed_write_are_removed_later(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
) -> None:
    a, b = generation_pair
    store = make_store(api, namespace, owner, limits=SMALL_PARTS)
    await store.write(a)

    class Crash(Exception):
        pass

    async def crash(location: StorageLocation) -> None:
        raise Crash  # after b's parts exist, before the head points at them

    with pytest.raises(Crash):
        await store.write(b, before_publish=crash)
    assert_same(await make_reader(api, namespace).read(), a)  # still the previous generation
    orphans = set(storage_configmaps(kube, namespace)) - set(await store.resource_names())
    assert orphans

    # Within the grace period a concurrent writer may still be about to publish them: kept.
    await make_store(api, namespace, owner, limits=SMALL_PARTS).write(a)
    assert orphans <= set(storage_configmaps(kube, namespace))
    result = await make_store(api, namespace, owner, limits=SMALL_PARTS, orphan_grace=timedelta(0)).write(
        StoredCatalog.create(b"{}", revision="tiny", server_count=0)
    )
    assert orphans <= set(result.removed)
    assert set(storage_configmaps(kube, namespace)) == {f"{REGISTRY}-data"}


async def test_missing_part_is_reported_and_repaired(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
) -> None:
    a = generation_pair[0]
    store = make_store(api, namespace, owner, limits=SMALL_PARTS)
    result = await store.write(a)
    kube.core.delete_namespaced_config_map(result.location.config_maps[2], namespace)

    with pytest.raises(StorageCorruptError, match="part"):
        await make_reader(api, namespace, read_attempts=2).read()
    assert await store.current_hash() is None  # incomplete counts as not stored: callers rewrite

    repaired = await store.write(a)
    assert repaired.written and repaired.location == result.location
    assert_same(await make_reader(api, namespace).read(), a)


async def test_foreign_configmap_with_the_head_name_is_not_overwritten(
    api: ApiClient, kube: Kube, namespace: str, owner: OwnerReference, small: StoredCatalog
) -> None:
    kube.core.create_namespaced_config_map(
        namespace,
        sync_client.V1ConfigMap(
            metadata=sync_client.V1ObjectMeta(name=f"{REGISTRY}-data"), data={"mine": "yes"}
        ),
    )
    with pytest.raises(StorageError, match="not managed by mcp-registry-operator"):
        await make_store(api, namespace, owner).write(small)
    assert head(kube, namespace).data == {"mine": "yes"}


async def test_concurrent_writer_is_refused_and_nothing_mixed(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
) -> None:
    a, b = generation_pair
    first = make_store(api, namespace, owner, limits=SMALL_PARTS)
    second = make_store(api, namespace, owner, limits=SMALL_PARTS)
    await first.write(a)
    other = StoredCatalog.create(b"[]", revision="second-writer", server_count=0)

    async def interleave(location: StorageLocation) -> None:
        # `first` has read the head and written b's parts; `second` publishes in between.
        assert (await second.write(other)).written

    with pytest.raises(StorageConflictError):
        await first.write(b, before_publish=interleave)
    assert_same(await make_reader(api, namespace).read(), other)
    assert await first.current_hash() == other.content_hash
    # A retry by the refused writer succeeds and publishes b whole.
    assert (await first.write(b)).written
    assert_same(await make_reader(api, namespace).read(), b)


async def test_delete_removes_everything(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
) -> None:
    store = make_store(api, namespace, owner, limits=SMALL_PARTS)
    await store.write(generation_pair[0])
    await store.delete()
    assert storage_configmaps(kube, namespace) == {}
    assert await make_reader(api, namespace).read() is None
    await store.delete()  # idempotent


# --- readers under change ------------------------------------------------------------------------


async def test_reader_never_sees_a_partial_generation(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
) -> None:
    a, b = generation_pair
    store = make_store(api, namespace, owner, limits=SMALL_PARTS)
    await store.write(a)
    reader = make_reader(api, namespace)
    stop = asyncio.Event()
    reads: list[str] = []

    async def read_continuously() -> None:
        while not stop.is_set():
            got = await reader.read()
            assert got is not None and got.verify(), "a read returned data that does not match its hash"
            assert got.content_hash in (a.content_hash, b.content_hash)
            assert got.revision == (a.revision if got.content_hash == a.content_hash else b.revision)
            reads.append(got.content_hash)

    seen: list[StoredCatalog] = []

    async def follow_changes() -> None:
        async with aclosing(make_reader(api, namespace).changes()) as changes:
            async for generation in changes:
                seen.append(generation)

    readers = [asyncio.create_task(read_continuously()) for _ in range(3)]
    follower = asyncio.create_task(follow_changes())
    try:
        for index in range(10):
            result = await store.write(b if index % 2 == 0 else a)
            assert result.written and result.removed  # the previous generation's parts went each time
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)  # let the follower catch up with the last generation (a)
    finally:
        stop.set()
        await asyncio.gather(*readers)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    assert reads.count(a.content_hash) and reads.count(b.content_hash), "readers never saw both generations"
    assert len(reads) > 10
    # The follower: every generation whole, never the same one twice in a row, ending on the latest.
    assert seen and all(generation.verify() for generation in seen)
    hashes = [generation.content_hash for generation in seen]
    assert all(first != second for first, second in itertools.pairwise(hashes))
    assert hashes[0] == a.content_hash and hashes[-1] == a.content_hash and b.content_hash in hashes


async def test_a_read_overtaken_by_a_new_generation_returns_the_new_one_whole(
    api: ApiClient, namespace: str, owner: OwnerReference, generation_pair: tuple[StoredCatalog, ...]
) -> None:
    a, b = generation_pair
    store = make_store(api, namespace, owner, limits=SMALL_PARTS)
    await store.write(a)
    reader = make_reader(api, namespace)
    reached, resume = asyncio.Event(), asyncio.Event()
    fetched: list[str] = []
    real_fetch = ConfigMapCatalogReader._fetch_blobs

    async def paused_fetch(self: ConfigMapCatalogReader, manifest: Any, head: Any) -> list[bytes]:
        fetched.append(manifest.content_hash)
        if len(fetched) == 1:  # the reader has a's head in hand; hold it there
            reached.set()
            await resume.wait()
        return await real_fetch(self, manifest, head)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ConfigMapCatalogReader, "_fetch_blobs", paused_fetch)
        reading = asyncio.ensure_future(reader.read())
        await asyncio.wait_for(reached.wait(), 10)
        result = await store.write(b)  # publishes b and deletes a's parts under the reader
        assert set(result.removed) and not set(result.removed) & set(result.location.config_maps)
        resume.set()
        assert_same(await asyncio.wait_for(reading, 20), b)
    assert fetched == [a.content_hash, b.content_hash]


async def _next(changes: AsyncIterator[StoredCatalog], within: float = 20.0) -> StoredCatalog:
    return await asyncio.wait_for(anext(changes), within)


async def test_changes_yields_each_new_generation_once(
    api: ApiClient,
    namespace: str,
    owner: OwnerReference,
    small: StoredCatalog,
    medium: StoredCatalog,
    generation_pair: tuple[StoredCatalog, ...],
) -> None:
    store = make_store(api, namespace, owner, limits=SMALL_PARTS)
    reader = make_reader(api, namespace, watch_timeout=2)  # watches end and resume often
    async with aclosing(reader.changes()) as changes:
        pending = asyncio.ensure_future(_next(changes))
        await asyncio.sleep(0.5)
        assert not pending.done()  # nothing stored yet: nothing yielded
        await store.write(small)
        assert_same(await pending, small)

        await store.write(medium)
        assert_same(await _next(changes), medium)
        await store.write(StoredCatalog.create(medium.data, revision="again", server_count=1000))  # no-op
        await store.write(generation_pair[0])  # split
        assert_same(await _next(changes), generation_pair[0])

        await store.delete()  # a deleted head: the consumer keeps what it has, nothing is yielded
        await asyncio.sleep(3)  # long enough for a watch to end and resume
        await store.write(small)
        assert_same(await _next(changes), small)


async def test_changes_survives_expired_watches_and_dropped_connections(
    api: ApiClient, namespace: str, owner: OwnerReference, small: StoredCatalog, medium: StoredCatalog
) -> None:
    store = make_store(api, namespace, owner)
    await store.write(small)
    reader = make_reader(api, namespace)
    # The API server's watch cache keeps far more history than a test lives, so it never expires a
    # resourceVersion here on its own: the first two watches fail as an expired watch (410) and a
    # dropped connection would, and the reader must recover through the real API server.
    failures: list[KubeError] = [
        GoneError(410, "Expired", "too old resource version"),
        KubeUnavailableError("watch connection broke: connection reset"),
    ]
    lists = 0
    real_list, real_watch = ConfigMapClient.list, ConfigMapClient.watch

    async def counting_list(self: ConfigMapClient, **kwargs: Any) -> tuple[list[Any], str]:
        nonlocal lists
        lists += 1
        return await real_list(self, **kwargs)

    async def flaky_watch(self: ConfigMapClient, **kwargs: Any) -> AsyncIterator[Any]:
        if failures:
            raise failures.pop(0)
        async for event in real_watch(self, **kwargs):
            yield event

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ConfigMapClient, "list", counting_list)
        patch.setattr(ConfigMapClient, "watch", flaky_watch)
        async with aclosing(reader.changes()) as changes:
            assert_same(await _next(changes), small)  # the current generation first
            pending = asyncio.ensure_future(_next(changes))
            for _ in range(100):  # let the reader run into both failures before publishing
                if not failures and lists >= 3:
                    break
                await asyncio.sleep(0.05)
            assert not failures and lists >= 3  # listed again after each failure
            await store.write(medium)
            assert_same(await pending, medium)


# --- garbage collection ------------------------------------------------------------------------------


async def test_garbage_collected_with_the_owner(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
) -> None:
    await make_store(api, namespace, owner, limits=SMALL_PARTS).write(generation_pair[0])
    assert len(storage_configmaps(kube, namespace)) > 2
    kube.core.delete_namespaced_config_map("owner", namespace)
    wait_until(
        lambda: not storage_configmaps(kube, namespace),
        timeout=60,
        what="storage ConfigMaps garbage-collected",
    )


async def test_garbage_collected_with_a_real_mcpregistry(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    crd: str,
    generation_pair: tuple[StoredCatalog, ...],
) -> None:
    # No operator involved: the MCPRegistry only has to exist, as the owner the operator passes in.
    # Its source names a ConfigMap that does not exist, so an operator running in the same test
    # session fails to sync it and never writes this storage itself.
    registry = kube.custom.create_namespaced_custom_object(
        "mcpregistry.dev",
        "v1alpha1",
        namespace,
        "mcpregistries",
        {
            "apiVersion": "mcpregistry.dev/v1alpha1",
            "kind": "MCPRegistry",
            "metadata": {"name": REGISTRY},
            "spec": {
                "source": {"type": "configmap", "configMap": {"name": "absent", "key": "registry.json"}}
            },
        },
    )
    owner = OwnerReference.for_registry(REGISTRY, registry["metadata"]["uid"])
    result = await make_store(api, namespace, owner, limits=SMALL_PARTS).write(generation_pair[0])
    assert set(storage_configmaps(kube, namespace)) == set(result.location.config_maps)
    kube.custom.delete_namespaced_custom_object(
        "mcpregistry.dev", "v1alpha1", namespace, "mcpregistries", REGISTRY
    )
    wait_until(
        lambda: not storage_configmaps(kube, namespace),
        timeout=90,
        what="storage ConfigMaps garbage-collected after the MCPRegistry",
    )


# --- RBAC: a reader allowed only the names the writer reports ------------------------------------------


def grant_reader(kube: Kube, namespace: str, names: tuple[str, ...], tmp_path: Path) -> Path:
    """A ServiceAccount whose Role allows get/list/watch on `names` only; returns its kubeconfig."""
    return kube.configmap_reader_kubeconfig(
        namespace, names, tmp_path / "sa.kubeconfig", role="catalog-reader"
    )


async def test_reader_with_only_the_reported_resource_names(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
    tmp_path: Path,
) -> None:
    a, b = generation_pair
    store = make_store(api, namespace, owner, limits=SMALL_PARTS)
    await store.write(a)
    names = await store.resource_names()
    assert len(names) > 2
    kubeconfig = grant_reader(kube, namespace, names, tmp_path)
    kube.core.create_namespaced_config_map(
        namespace,
        sync_client.V1ConfigMap(metadata=sync_client.V1ObjectMeta(name="someone-elses"), data={"k": "v"}),
    )
    restricted = await async_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        reader = make_reader(restricted, namespace)
        assert_same(
            await wait_for_async(reader.read, what="RBAC to allow the reader"), a
        )  # RoleBindings take effect asynchronously

        async def grant(location: StorageLocation) -> None:
            # What the operator does: allow the new generation's names before it is published.
            union = tuple(dict.fromkeys((*names, *location.config_maps)))
            kube.rbac.replace_namespaced_role(
                "catalog-reader", namespace, configmap_reader_role("catalog-reader", union)
            )

        async with aclosing(reader.changes()) as changes:
            assert_same(await _next(changes), a)
            result = await store.write(b, before_publish=grant)
            assert_same(await _next(changes), b)
        kube.rbac.replace_namespaced_role(
            "catalog-reader", namespace, configmap_reader_role("catalog-reader", result.location.config_maps)
        )

        client = ConfigMapClient(restricted, namespace)
        with pytest.raises(ForbiddenError):
            await client.get("someone-elses")
        # A part of the old generation, no longer granted (once the API server's RBAC cache caught up).
        await wait_for_forbidden(lambda: client.get(result.removed[0]), what="the narrowed Role")
        with pytest.raises(ForbiddenError):
            await client.list()  # listing without the name selector
        with pytest.raises(ForbiddenError):
            await client.list(field_selector="metadata.name=someone-elses")
        with pytest.raises(ForbiddenError):
            await client.create({"metadata": {"name": "x"}, "data": {}})
        store = ConfigMapCatalogStore(ConfigMapAddress(restricted, namespace, REGISTRY), owner=owner)
        with pytest.raises(ForbiddenError):
            await store.write(a)
    finally:
        await restricted.close()


async def test_reader_catches_up_when_access_is_granted_after_publishing(
    api: ApiClient,
    kube: Kube,
    namespace: str,
    owner: OwnerReference,
    generation_pair: tuple[StoredCatalog, ...],
    tmp_path: Path,
) -> None:
    # An operator that updates the Role only after publishing (or a slow RBAC cache): the reader
    # cannot read the new parts at first, keeps what it has, and loads them once allowed.
    a, b = generation_pair
    store = make_store(api, namespace, owner, limits=SMALL_PARTS)
    await store.write(a)
    kubeconfig = grant_reader(kube, namespace, await store.resource_names(), tmp_path)
    restricted = await async_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        reader = make_reader(restricted, namespace, read_attempts=2)
        await wait_for_async(reader.read, what="RBAC to allow the reader")
        async with aclosing(reader.changes()) as changes:
            assert_same(await _next(changes), a)
            pending = asyncio.ensure_future(_next(changes, within=60))
            result = await store.write(b)  # no before_publish: the reader is refused b's parts
            await asyncio.sleep(3)
            assert not pending.done()
            kube.rbac.replace_namespaced_role(
                "catalog-reader",
                namespace,
                configmap_reader_role("catalog-reader", result.location.config_maps),
            )
            assert_same(await pending, b)
    finally:
        await restricted.close()


async def wait_for_async(probe: Callable[[], Any], *, what: str, within: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await probe()
        except ForbiddenError:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}") from None
            await asyncio.sleep(0.2)


async def wait_for_forbidden(probe: Callable[[], Any], *, what: str, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        try:
            await probe()
        except ForbiddenError:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} to refuse access")
