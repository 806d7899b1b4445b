"""The generation protocol's guarantees, checked once against each backend: ConfigMaps on the session's
control plane and S3 on the session's MinIO. Round trip, an unchanged hash is a no-op, the manifest is
published last (a reader never sees half a generation), compare-and-publish conflicts, pruning, a
corrupt blob is detected, `changes()` delivers new generations, data in the format written before
the manifest existed stays readable, and signatures travel with their generation (a new key
republishes it). Backend-specific behaviour is tested in test_storage_configmap.py and
test_storage_s3.py."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from kubernetes import client as sync_client
from kubernetes_asyncio import config as async_config

from fixtures.kube import Kube
from mcpreg.catalog.served import served_documents
from mcpreg.signing import PrivateKeySigner, load_public_key, sign_documents, verify_blob
from mcpreg.storage import (
    Backoff,
    ConfigMapAddress,
    ConfigMapCatalogReader,
    ConfigMapCatalogStore,
    EncodingLimits,
    StorageConflictError,
    StorageCorruptError,
    StorageLocation,
    StoredCatalog,
    sha256_hash,
)
from mcpreg.storage.reader import GenerationReader
from mcpreg.storage.s3_config import S3Address
from mcpreg.storage.s3_layout import catalog_key, generation_of, pointer_key, toolhive_key
from mcpreg.storage.s3_reader import S3CatalogReader
from mcpreg.storage.s3_store import S3CatalogStore
from mcpreg.storage.writer import GenerationWriter
from mcpreg_dev.minio import MinioServer
from mcpreg_dev.samples import replicated_served

pytestmark = pytest.mark.integration

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
LATEST = SHARED / "toolhive" / "registry-2026-02-18.json"
OLDER = SHARED / "toolhive" / "registry-2025-12-03.json"
REGISTRY = "company-registry"
# ConfigMap parts of 24 KiB: every generation here is a head and several parts.
SMALL_PARTS = EncodingLimits(max_object_bytes=24 * 1024)


@pytest.fixture(scope="module")
def generations() -> list[StoredCatalog]:
    """Three different real catalogues (each a few hundred KB, split into parts on ConfigMaps)."""
    made = []
    for index, (path, servers) in enumerate([(LATEST, 120), (OLDER, 120), (LATEST, 160)]):
        data, count = replicated_served(path, servers)
        made.append(StoredCatalog.create(data, revision=f"gen-{index}", server_count=count))
    return made


@dataclass
class Harness:
    """One backend, and what a test needs to look at (or damage) its objects behind its back."""

    name: str
    store: Callable[[], GenerationWriter[Any]]
    reader: Callable[[], GenerationReader[Any]]
    versions: Callable[[], dict[str, str]]  # every stored object → its version (resourceVersion, ETag)
    corrupt_blob: Callable[[], None]  # flip one byte of the published generation's first blob
    write_old_format: Callable[[StoredCatalog], None]  # as the code before the manifest stored it


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]


def _old_annotations(
    stored: StoredCatalog, *, encoding: str, stored_size: int, layout: str
) -> dict[str, str]:
    return {
        "mcpregistry.dev/storage-format": "1",
        "mcpregistry.dev/content-hash": stored.content_hash,
        "mcpregistry.dev/revision": stored.revision,
        "mcpregistry.dev/stored-at": stored.stored_at.isoformat().replace("+00:00", "Z"),
        "mcpregistry.dev/server-count": str(stored.server_count),
        "mcpregistry.dev/encoding": encoding,
        "mcpregistry.dev/size": str(stored.size),
        "mcpregistry.dev/stored-size": str(stored_size),
        "mcpregistry.dev/layout": layout,
    }


def _configmap_labels(kind: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "mcp-registry",
        "app.kubernetes.io/instance": REGISTRY,
        "app.kubernetes.io/component": "catalog-data",
        "app.kubernetes.io/managed-by": "mcp-registry-operator",
        "mcpregistry.dev/catalog-object": kind,
    }


def _configmap_harness(kube: Kube, namespace: str, api: Any) -> Harness:
    core = kube.core
    address = ConfigMapAddress(api, namespace, REGISTRY)

    def objects() -> list[sync_client.V1ConfigMap]:
        # The catalogue's own objects (an operator in the session may add the API configuration).
        selector = f"app.kubernetes.io/instance={REGISTRY},app.kubernetes.io/component=catalog-data"
        return list(core.list_namespaced_config_map(namespace, label_selector=selector).items)

    def corrupt_blob() -> None:
        head = core.read_namespaced_config_map(f"{REGISTRY}-data", namespace)
        first = json.loads(head.metadata.annotations["mcpregistry.dev/parts"])[0]["name"]
        part = core.read_namespaced_config_map(first, namespace)
        core.delete_namespaced_config_map(first, namespace)  # immutable: replaced, not edited
        damaged = _flip(base64.b64decode(part.binary_data["part"]))
        part.metadata = sync_client.V1ObjectMeta(
            name=first, labels=part.metadata.labels, annotations=part.metadata.annotations
        )
        part.binary_data = {"part": base64.b64encode(damaged).decode()}
        core.create_namespaced_config_map(namespace, part)

    def write_old_format(stored: StoredCatalog) -> None:
        payload = gzip.compress(stored.data, compresslevel=4, mtime=0)
        half = len(payload) // 2
        chunks = [payload[:half], payload[half:]]
        digest = stored.content_hash.removeprefix("sha256:")[:12]
        refs: list[dict[str, Any]] = [
            {"name": f"{REGISTRY}-data-{digest}-{i}", "size": len(chunk), "sha256": sha256_hash(chunk)}
            for i, chunk in enumerate(chunks)
        ]
        for index, (ref, chunk) in enumerate(zip(refs, chunks, strict=True)):
            part_annotations = {
                "mcpregistry.dev/storage-format": "1",
                "mcpregistry.dev/content-hash": stored.content_hash,
                "mcpregistry.dev/part-index": str(index),
                "mcpregistry.dev/part-hash": ref["sha256"],
            }
            meta = sync_client.V1ObjectMeta(
                name=ref["name"], labels=_configmap_labels("part"), annotations=part_annotations
            )
            body = sync_client.V1ConfigMap(
                metadata=meta, immutable=True, binary_data={"part": base64.b64encode(chunk).decode()}
            )
            core.create_namespaced_config_map(namespace, body)
        annotations = _old_annotations(stored, encoding="gzip", stored_size=len(payload), layout="split")
        annotations["mcpregistry.dev/parts"] = json.dumps(refs, separators=(",", ":"))
        meta = sync_client.V1ObjectMeta(
            name=f"{REGISTRY}-data", labels=_configmap_labels("head"), annotations=annotations
        )
        core.create_namespaced_config_map(namespace, sync_client.V1ConfigMap(metadata=meta))

    return Harness(
        name="configmap",
        store=lambda: ConfigMapCatalogStore(address, owner=None, limits=SMALL_PARTS),
        reader=lambda: ConfigMapCatalogReader(
            address, limits=SMALL_PARTS, read_attempts=2, backoff=Backoff(0.05, 0.5)
        ),
        versions=lambda: {cm.metadata.name: cm.metadata.resource_version for cm in objects()},
        corrupt_blob=corrupt_blob,
        write_old_format=write_old_format,
    )


def _s3_harness(minio: MinioServer, bucket: str) -> Harness:
    settings = minio.settings(bucket, prefix="catalogues")
    client = minio.client()
    prefix = f"catalogues/team-a/{REGISTRY}"

    async def provide() -> Any:
        return minio.credentials

    address = S3Address(settings, "team-a", REGISTRY, provide)

    def versions() -> dict[str, str]:
        return {key: client.head_object(Bucket=bucket, Key=key)["ETag"] for key in minio.keys(bucket)}

    def corrupt_blob() -> None:
        pointer = json.loads(client.get_object(Bucket=bucket, Key=pointer_key(prefix))["Body"].read())
        key = pointer["catalog"]["key"]
        damaged = _flip(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        client.put_object(Bucket=bucket, Key=key, Body=damaged)

    def write_old_format(stored: StoredCatalog) -> None:
        payload = gzip.compress(stored.data, compresslevel=4, mtime=0)
        toolhive = b'{"servers":{}}'
        catalog = catalog_key(prefix, stored.content_hash, "gzip")
        document = toolhive_key(prefix, stored.content_hash)
        metadata = {"content-hash": stored.content_hash, "server-count": str(stored.server_count)}
        client.put_object(Bucket=bucket, Key=catalog, Body=payload, Metadata=metadata)
        client.put_object(Bucket=bucket, Key=document, Body=toolhive, Metadata=metadata)
        pointer = {
            "format": "mcpregistry.dev/s3-catalog-pointer/v1",
            "contentHash": stored.content_hash,
            "revision": stored.revision,
            "storedAt": stored.stored_at.isoformat().replace("+00:00", "Z"),
            "serverCount": stored.server_count,
            "encoding": "gzip",
            "size": stored.size,
            "catalog": {"key": catalog, "size": len(payload)},
            "toolhive": {"key": document, "size": len(toolhive)},
        }
        body = json.dumps(pointer, indent=2, sort_keys=True).encode() + b"\n"
        client.put_object(Bucket=bucket, Key=pointer_key(prefix), Body=body)

    return Harness(
        name="s3",
        store=lambda: S3CatalogStore(address, keep_generations=1),
        reader=lambda: S3CatalogReader(address, poll_interval=0.1, backoff=Backoff(0.05, 0.5)),
        versions=versions,
        corrupt_blob=corrupt_blob,
        write_old_format=write_old_format,
    )


@pytest_asyncio.fixture(params=["configmap", "s3"], loop_scope="function")
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "s3":
        yield _s3_harness(request.getfixturevalue("minio"), request.getfixturevalue("bucket"))
        return
    kube: Kube = request.getfixturevalue("kube")
    namespace: str = request.getfixturevalue("namespace")
    api = await async_config.new_client_from_config(config_file=str(kube.kubeconfig))
    try:
        yield _configmap_harness(kube, namespace, api)
    finally:
        await api.close()


def assert_same(got: StoredCatalog | None, want: StoredCatalog) -> None:
    assert got is not None and got.verify()
    assert (got.data, got.content_hash, got.revision, got.server_count, got.stored_at) == (
        want.data,
        want.content_hash,
        want.revision,
        want.server_count,
        want.stored_at,
    )


async def test_round_trip(backend: Harness, generations: list[StoredCatalog]) -> None:
    store, reader = backend.store(), backend.reader()
    assert await store.current_hash() is None and await reader.read() is None
    result = await store.write(generations[0])
    assert result.written and result.previous_hash is None and result.location.type == backend.name
    assert await store.current_hash() == generations[0].content_hash
    assert await store.location() == result.location
    assert_same(await reader.read(), generations[0])


async def test_unchanged_hash_is_a_no_op(backend: Harness, generations: list[StoredCatalog]) -> None:
    store = backend.store()
    first = await store.write(generations[0])
    before = backend.versions()
    again = StoredCatalog.create(generations[0].data, revision="another-revision", server_count=1)
    second = await store.write(again)
    assert not second.written and second.location == first.location
    assert second.previous_hash == second.content_hash == first.content_hash
    assert backend.versions() == before  # not a single object touched


async def test_manifest_is_published_last(backend: Harness, generations: list[StoredCatalog]) -> None:
    a, b, c = generations
    store = backend.store()
    await store.write(a)
    observer = backend.reader()

    async def check(location: StorageLocation) -> None:
        # b's blobs are all stored by now, yet a reader still gets a, whole.
        assert_same(await observer.read(), a)
        assert set(backend.versions()) > set(before)

    before = backend.versions()
    await store.write(b, before_publish=check)
    assert_same(await observer.read(), b)

    # Readers reading all along never see anything but a whole generation.
    stop = asyncio.Event()
    revisions = {g.content_hash: g.revision for g in generations}
    seen: list[str] = []

    async def read_continuously() -> None:
        reader = backend.reader()
        while not stop.is_set():
            got = await reader.read()
            assert got is not None and got.verify() and revisions[got.content_hash] == got.revision
            seen.append(got.content_hash)

    readers = [asyncio.create_task(read_continuously()) for _ in range(2)]
    try:
        for generation in (c, a, b, c, a, b):
            assert (await store.write(generation)).written
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert len(set(seen)) >= 2


async def test_compare_and_publish_conflict(backend: Harness, generations: list[StoredCatalog]) -> None:
    a, b, c = generations
    first, second = backend.store(), backend.store()
    await first.write(a)

    async def meanwhile(location: StorageLocation) -> None:
        assert (await second.write(c)).written  # another writer publishes between our blobs and manifest

    with pytest.raises(StorageConflictError, match="another writer"):
        await first.write(b, before_publish=meanwhile)
    assert_same(await backend.reader().read(), c)
    assert await first.current_hash() == c.content_hash
    assert (await first.write(b)).written  # the refused writer's retry publishes b whole
    assert_same(await backend.reader().read(), b)


def _generation_objects(backend: Harness, stored: StoredCatalog) -> set[str]:
    digest = stored.content_hash.removeprefix("sha256:")
    if backend.name == "s3":
        prefix = f"catalogues/team-a/{REGISTRY}"
        return {key for key in backend.versions() if generation_of(prefix, key) == digest}
    return {name for name in backend.versions() if name.startswith(f"{REGISTRY}-data-{digest[:12]}-")}


async def test_pruning(backend: Harness, generations: list[StoredCatalog]) -> None:
    a, b, c = generations
    store = backend.store()
    await store.write(a)
    a_objects = _generation_objects(backend, a)
    await store.write(b)
    b_objects = _generation_objects(backend, b)
    result = await store.write(c)
    # a is neither published nor the generation just replaced: gone on both backends.
    assert a_objects and not _generation_objects(backend, a)
    assert result.removed and set(result.removed) <= a_objects | b_objects
    assert _generation_objects(backend, c)
    assert_same(await backend.reader().read(), c)


async def test_corrupt_blob_is_detected(backend: Harness, generations: list[StoredCatalog]) -> None:
    store, reader = backend.store(), backend.reader()
    await store.write(generations[0])
    await asyncio.to_thread(backend.corrupt_blob)
    with pytest.raises(StorageCorruptError):
        await reader.read()


async def test_changes_delivers_each_new_generation(
    backend: Harness, generations: list[StoredCatalog]
) -> None:
    a, b, _ = generations
    store = backend.store()
    async with aclosing(backend.reader().changes()) as changes:
        pending = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0.5)
        assert not pending.done()  # nothing stored yet: nothing yielded
        await store.write(a)
        assert_same(await asyncio.wait_for(pending, 20), a)
        await store.write(StoredCatalog.create(a.data, revision="same-data", server_count=1))  # no-op
        await store.write(b)
        assert_same(await asyncio.wait_for(anext(changes), 20), b)


async def test_old_format_is_read_and_kept(backend: Harness, generations: list[StoredCatalog]) -> None:
    old = generations[0]
    await asyncio.to_thread(backend.write_old_format, old)
    assert_same(await backend.reader().read(), old)
    store = backend.store()
    assert await store.current_hash() == old.content_hash
    # The format is current: the same catalogue is not rewritten; a new one replaces it as usual.
    assert not (await store.write(old)).written
    result = await store.write(generations[1])
    assert result.written and result.previous_hash == old.content_hash
    assert_same(await backend.reader().read(), generations[1])


def _signed(stored: StoredCatalog, signer: PrivateKeySigner) -> StoredCatalog:
    return replace(
        stored, signatures=sign_documents(signer, served_documents(stored.data, stored.content_hash))
    )


async def test_signatures_are_stored_with_the_generation_and_a_new_key_republishes_it(
    backend: Harness, generations: list[StoredCatalog]
) -> None:
    first, second = (
        PrivateKeySigner.from_pem(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        for key in (ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate())
    )
    a = generations[0]
    store = backend.store()
    async with aclosing(backend.reader().changes()) as changes:
        assert (await store.write(_signed(a, first))).written
        got = await asyncio.wait_for(anext(changes), 20)
        assert_same(got, a)
        assert got.signatures is not None and got.signatures.key_id == first.key_id
        assert (await backend.reader().read()) == got  # read() too
        assert not (await store.write(_signed(a, first))).written  # same data, same key: nothing to do
        # Same data, another key: the manifest is republished and readers get the new signatures.
        assert (await store.write(_signed(a, second))).written
        rotated = await asyncio.wait_for(anext(changes), 20)
        assert rotated.content_hash == a.content_hash
        assert rotated.signatures is not None and rotated.signatures.key_id == second.key_id
        public = load_public_key(rotated.signatures.public_key)
        for name, document in served_documents(rotated.data, rotated.content_hash).items():
            verify_blob(public, rotated.signatures.documents[name], document)
        # Unsigned again: readers see the generation without signatures.
        assert (await store.write(a)).written
        assert (await asyncio.wait_for(anext(changes), 20)).signatures is None
