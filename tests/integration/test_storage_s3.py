"""S3 storage against a real MinIO (built from Go modules): round trips, no rewrite when unchanged,
content-addressed generations and pruning, readers that never see half a generation, conflicts,
presigned downloads, errors a person can act on (and that never carry credentials), encryption,
deletion, the service stopping mid-operation, and a 10,000-server catalogue."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import urllib.request
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from mcpreg.storage import Backoff, StorageConflictError, StorageLocation, StoredCatalog
from mcpreg.storage.documents import extra_documents
from mcpreg.storage.encoding import MIB
from mcpreg.storage.s3_config import S3Address, S3Credentials, S3Settings
from mcpreg.storage.s3_errors import (
    S3AccessDeniedError,
    S3BucketMissingError,
    S3EncryptionRefusedError,
    S3EndpointUnreachableError,
)
from mcpreg.storage.s3_layout import catalog_key, generation_of, pointer_key, toolhive_key
from mcpreg.storage.s3_reader import S3CatalogReader
from mcpreg.storage.s3_store import S3CatalogStore
from mcpreg_dev.minio import MinioServer
from mcpreg_dev.samples import replicated_served

pytestmark = pytest.mark.integration

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SNAPSHOTS = sorted((SHARED / "toolhive").glob("registry-*.json"))
LATEST = SHARED / "toolhive" / "registry-2026-02-18.json"
NS, REG = "team-a", "company"


def catalog_of(path: Path, revision: str) -> StoredCatalog:
    from mcpreg.catalog import parse_catalog

    catalog = parse_catalog(path.read_bytes())
    return StoredCatalog.from_catalog(catalog, revision=revision)


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a loopback URL we made
        return bytes(response.read())


def provider(credentials: S3Credentials) -> Any:
    async def provide() -> S3Credentials:
        return credentials

    return provide


def store_for(minio: MinioServer, bucket: str, **kwargs: Any) -> S3CatalogStore:
    settings = kwargs.pop("settings", None) or minio.settings(bucket, prefix="catalogues")
    address = S3Address(settings, NS, kwargs.pop("registry", REG), provider(minio.credentials))
    return S3CatalogStore(address, **kwargs)


def reader_for(minio: MinioServer, bucket: str, **kwargs: Any) -> S3CatalogReader:
    settings = kwargs.pop("settings", None) or minio.settings(bucket, prefix="catalogues")
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("backoff", Backoff(initial=0.05, maximum=0.5))
    return S3CatalogReader(S3Address(settings, NS, REG, provider(minio.credentials)), **kwargs)


@pytest.fixture(scope="module")
def snapshots() -> list[StoredCatalog]:
    return [catalog_of(path, f"rev-{i}") for i, path in enumerate(SNAPSHOTS)]


@pytest.fixture(scope="module")
def big() -> StoredCatalog:
    data, count = replicated_served(LATEST, 10_000)
    return StoredCatalog.create(data, revision="big", server_count=count)


async def test_round_trip_layout_and_status(
    minio: MinioServer, bucket: str, snapshots: list[StoredCatalog]
) -> None:
    store, reader = store_for(minio, bucket), reader_for(minio, bucket)
    assert await store.current_hash() is None and await store.location() is None
    assert await reader.read() is None
    first = snapshots[-1]
    result = await store.write(first)
    assert result.written and result.encoding == "gzip" and result.previous_hash is None
    prefix = f"catalogues/{NS}/{REG}"
    assert result.location.to_status() == {
        "type": "s3",
        "s3": {
            "bucket": bucket,
            "prefix": prefix,
            "key": f"{prefix}/current.json",
            "endpoint": minio.endpoint,
            "region": "us-east-1",
        },
    }
    assert minio.keys(bucket) == sorted(
        [
            pointer_key(prefix),
            catalog_key(prefix, first.content_hash, "gzip"),
            toolhive_key(prefix, first.content_hash),
        ]
    )
    got = await reader.read()
    assert got is not None and got.data == first.data and got.verify()
    assert (got.revision, got.server_count, got.content_hash) == (
        first.revision,
        first.server_count,
        first.content_hash,
    )
    assert await store.current_hash() == first.content_hash
    assert await store.resource_names() == ()
    # The ToolHive rendering is what the API serves at /api/v1/registry.
    th = minio.client().get_object(Bucket=bucket, Key=toolhive_key(prefix, first.content_hash))["Body"].read()
    assert th == extra_documents(first)["toolhive"]


async def test_small_catalogue_is_plain_json(minio: MinioServer, bucket: str) -> None:
    data = json.dumps({"servers": []}).encode()
    small = StoredCatalog.create(data, revision="tiny", server_count=0)
    store = store_for(minio, bucket, documents=None)
    result = await store.write(small)
    assert result.encoding == "identity"
    body = minio.client().get_object(
        Bucket=bucket, Key=catalog_key(store.prefix, small.content_hash, "identity")
    )
    assert body["Body"].read() == data and body["ContentType"] == "application/json"
    assert (await reader_for(minio, bucket).read()) == small


async def test_unchanged_hash_rewrites_nothing(
    minio: MinioServer, bucket: str, snapshots: list[StoredCatalog]
) -> None:
    store = store_for(minio, bucket)
    first = await store.write(snapshots[0])
    client = minio.client()
    before = {k: client.head_object(Bucket=bucket, Key=k)["ETag"] for k in minio.keys(bucket)}
    again = await store.write(snapshots[0])
    assert not again.written and again.content_hash == snapshots[0].content_hash
    assert {k: client.head_object(Bucket=bucket, Key=k)["ETag"] for k in minio.keys(bucket)} == before
    # Someone deletes the catalogue object by hand: the store notices and repairs it.
    client.delete_object(
        Bucket=bucket, Key=catalog_key(store.prefix, snapshots[0].content_hash, first.encoding)
    )
    assert await store.current_hash() is None
    repaired = await store.write(snapshots[0])
    assert repaired.written
    assert (await reader_for(minio, bucket).read()) == snapshots[0]


async def test_successive_snapshots_prune_old_generations(
    minio: MinioServer, bucket: str, snapshots: list[StoredCatalog], big: StoredCatalog
) -> None:
    store = store_for(minio, bucket, keep_generations=2)
    extra = StoredCatalog.create(b'{"servers": []}', revision="empty", server_count=0)
    generations = [*snapshots, extra]
    for index, generation in enumerate(generations):
        result = await store.write(generation)
        assert result.written
        gens = {generation_of(store.prefix, k) for k in minio.keys(bucket, store.prefix + "/")} - {None}
        assert len(gens) == min(index + 1, 2)
        assert generation.content_hash.removeprefix("sha256:") in gens
    assert len(result.removed) > 0
    # Going back to the previous generation reuses its objects and only moves the pointer.
    client = minio.client()
    old_key = catalog_key(store.prefix, snapshots[-1].content_hash, "gzip")
    before = client.head_object(Bucket=bucket, Key=old_key)["LastModified"]
    back = await store.write(snapshots[-1])
    assert back.written and back.previous_hash == extra.content_hash
    assert client.head_object(Bucket=bucket, Key=old_key)["LastModified"] == before
    # Unrelated keys and a sibling registry whose name starts with ours are never pruned or deleted.
    client.put_object(Bucket=bucket, Key=f"{store.prefix}/NOTES.txt", Body=b"hello")
    sibling = store_for(minio, bucket, registry=f"{REG}-2")
    await sibling.write(snapshots[0])
    await store.delete()
    assert minio.keys(bucket, store.prefix + "/") == []
    assert await sibling.current_hash() == snapshots[0].content_hash
    assert await store.current_hash() is None
    await store.delete()  # nothing left: not an error


async def test_reader_follows_generations_whole(
    minio: MinioServer, bucket: str, snapshots: list[StoredCatalog]
) -> None:
    store, reader = store_for(minio, bucket, keep_generations=1), reader_for(minio, bucket)
    await store.write(snapshots[0])
    seen: list[StoredCatalog] = []

    async def follow() -> None:
        async with aclosing(reader.changes()) as changes:
            async for stored in changes:
                assert stored.verify()
                seen.append(stored)

    task = asyncio.create_task(follow())
    try:
        for round_ in range(3):
            for generation in (*snapshots[1:], snapshots[0]):
                await store.write(generation)
                await asyncio.sleep(0.05 * round_)
        await asyncio.wait_for(
            _until(lambda: seen and seen[-1].content_hash == snapshots[0].content_hash), 20
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    hashes = {s.content_hash for s in snapshots}
    assert all(s.content_hash in hashes for s in seen)
    assert all(a.content_hash != b.content_hash for a, b in itertools.pairwise(seen))


async def _until(predicate: Any, interval: float = 0.05) -> None:
    while not predicate():  # noqa: ASYNC110 - polling what another task appends to
        await asyncio.sleep(interval)


async def test_concurrent_writer_conflict_publishes_nothing(
    minio: MinioServer, bucket: str, snapshots: list[StoredCatalog]
) -> None:
    first, other = store_for(minio, bucket), store_for(minio, bucket)
    await first.write(snapshots[0])

    async def meanwhile(location: StorageLocation) -> None:
        await other.write(snapshots[1])  # another writer publishes between our upload and our pointer

    with pytest.raises(StorageConflictError, match="another writer"):
        await first.write(snapshots[2], before_publish=meanwhile)
    assert await first.current_hash() == snapshots[1].content_hash


async def test_presigned_download_of_toolhive_document(
    minio: MinioServer, bucket: str, snapshots: list[StoredCatalog]
) -> None:
    store, reader = store_for(minio, bucket), reader_for(minio, bucket, presign_ttl=120)
    await store.write(snapshots[-1])
    assert await reader.presigned_toolhive_url(snapshots[-1].content_hash) is None  # not loaded yet
    loaded = await reader.read()
    assert loaded is not None
    url = await reader.presigned_toolhive_url(loaded.content_hash)
    assert url is not None and "X-Amz-Expires=120" in url
    assert await reader.presigned_toolhive_url(loaded.content_hash) == url  # reused while fresh
    body = await asyncio.to_thread(_download, url)
    assert json.loads(body) == json.loads(extra_documents(snapshots[-1])["toolhive"])
    assert minio.secret_key not in url


async def test_missing_bucket(minio: MinioServer, snapshots: list[StoredCatalog]) -> None:
    store = store_for(minio, "no-such-bucket-here")
    with pytest.raises(S3BucketMissingError, match="bucket 'no-such-bucket-here' does not exist") as info:
        await store.write(snapshots[0])
    assert info.value.reason == "BucketMissing"
    await store.delete()  # nothing to delete in a bucket that does not exist


async def test_wrong_credentials_never_leak(
    minio: MinioServer, bucket: str, snapshots: list[StoredCatalog], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = S3Credentials(minio.access_key, "not-the-secret-" + "x" * 20)
    unknown = S3Credentials("AKIAUNKNOWNKEY123456", "unknown-secret-value-0123456789")
    caplog.set_level(logging.DEBUG)
    for credentials in (wrong, unknown):
        settings = minio.settings(bucket, prefix="catalogues")
        store = S3CatalogStore(S3Address(settings, NS, REG, provider(credentials)))
        with pytest.raises(S3AccessDeniedError) as info:
            await store.write(snapshots[0])
        message = str(info.value)
        assert "rejected the credentials" in message and info.value.reason == "AccessDenied"
        for secret in (credentials.secret_access_key, credentials.access_key_id, minio.secret_key):
            assert secret not in message and secret not in repr(store) and secret not in caplog.text
        reader = S3CatalogReader(S3Address(settings, NS, REG, provider(credentials)))
        with pytest.raises(S3AccessDeniedError):
            await reader.read()


async def test_endpoint_unreachable(snapshots: list[StoredCatalog]) -> None:
    from mcpreg_dev.controlplane import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    settings = S3Settings(
        bucket="b", endpoint=endpoint, force_path_style=True, connect_timeout=1, max_attempts=2
    )
    store = S3CatalogStore(S3Address(settings, NS, REG, provider(S3Credentials("a", "b"))))
    with pytest.raises(S3EndpointUnreachableError, match="unreachable") as info:
        await store.write(snapshots[0])
    assert info.value.reason == "EndpointUnreachable"


async def test_encryption_refused_without_kms(
    minio: MinioServer, bucket: str, snapshots: list[StoredCatalog]
) -> None:
    settings = minio.settings(bucket, server_side_encryption="AES256")
    store = S3CatalogStore(S3Address(settings, NS, REG, provider(minio.credentials)))
    with pytest.raises(S3EncryptionRefusedError, match="refused server-side encryption AES256") as info:
        await store.write(snapshots[0])
    assert info.value.reason == "EncryptionRefused"
    assert minio.keys(bucket) == []  # nothing published


@pytest.mark.parametrize("sse", ["AES256", "aws:kms"])
async def test_encryption_with_kms(minio_kms: MinioServer, snapshots: list[StoredCatalog], sse: str) -> None:
    bucket = minio_kms.create_bucket(f"sse-{sse.replace(':', '-').lower()}")
    kms_key = MinioServer.KMS_KEY_ID if sse == "aws:kms" else ""
    settings = minio_kms.settings(bucket, server_side_encryption=sse, kms_key_id=kms_key)
    store = S3CatalogStore(S3Address(settings, NS, REG, provider(minio_kms.credentials)))
    await store.write(snapshots[-1])
    client = minio_kms.client()
    for key in minio_kms.keys(bucket):
        if generation_of(store.prefix, key):
            assert client.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == sse
    reader = S3CatalogReader(S3Address(settings, NS, REG, provider(minio_kms.credentials)))
    assert (await reader.read()) == snapshots[-1]
    assert not (await store.write(snapshots[-1])).written


async def test_service_stopped_mid_operation(
    minio_private: MinioServer, snapshots: list[StoredCatalog]
) -> None:
    minio = minio_private
    bucket = minio.create_bucket("stops")
    store, reader = store_for(minio, bucket), reader_for(minio, bucket)
    await store.write(snapshots[0])
    seen: list[StoredCatalog] = []

    async def follow() -> None:
        async with aclosing(reader.changes()) as changes:
            async for stored in changes:
                seen.append(stored)

    task = asyncio.create_task(follow())
    try:
        await asyncio.wait_for(_until(lambda: len(seen) == 1), 10)
        minio.stop()
        with pytest.raises(S3EndpointUnreachableError):
            await store.write(snapshots[1])
        await asyncio.sleep(0.5)  # the reader fails its polls meanwhile, and keeps going
        assert not task.done() and len(seen) == 1
        minio.start()
        await store.write(snapshots[1])
        await asyncio.wait_for(_until(lambda: len(seen) == 2), 20)
        assert seen[1] == snapshots[1]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_ten_thousand_servers_round_trip_multipart(
    minio: MinioServer, bucket: str, big: StoredCatalog
) -> None:
    # Parts of 5 MiB above 5 MiB: the 18 MB ToolHive document goes up (and the reader's download
    # comes down) in several parallel parts.
    settings = minio.settings(
        bucket, prefix="big", multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, read_timeout=60
    )
    store = S3CatalogStore(S3Address(settings, NS, REG, provider(minio.credentials)))
    result = await store.write(big)
    assert result.written and big.server_count == 10_000
    th_key = toolhive_key(store.prefix, big.content_hash)
    head = minio.client().head_object(Bucket=bucket, Key=th_key)
    assert head["ContentLength"] > 5 * MIB and "-" in head["ETag"]  # a multipart ETag
    reader = S3CatalogReader(S3Address(settings, NS, REG, provider(minio.credentials)))
    got = await reader.read()
    assert got is not None and got.data == big.data and got.server_count == 10_000
    # Also through a download big enough to be multipart.
    raw = await store.objects.download(th_key, head["ContentLength"])
    assert len(raw) == head["ContentLength"]
