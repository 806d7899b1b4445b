"""Reloading: readiness follows the data, new data is served atomically, bad data never replaces good."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

from api_testdata import Serve, Served, catalogue_bytes, entry
from prometheus_client import generate_latest

from mcpreg.storage import StoredCatalog
from mcpreg.storage.errors import StorageError
from mcpreg_api.app import STATE
from mcpreg_api.loader import CatalogLoader, CatalogState
from mcpreg_api.metrics import ApiMetrics
from mcpreg_api.snapshot import Snapshot


def generation(
    prefix: str, count: int, version: str = "1.0.0", published: str = "2025-01-01T00:00:00Z"
) -> bytes:
    return catalogue_bytes(
        [entry(f"io.github.{prefix}/server-{i:03d}", version, published=published) for i in range(count)]
    )


def replace_file(path: Path, data: bytes) -> None:
    """Atomically, as an editor or a ConfigMap volume does it."""
    staging = path.with_suffix(".tmp")
    staging.write_bytes(data)
    os.replace(staging, path)


async def status_of(served: Served, url: str) -> int:
    response = await served.client.get(url)
    await response.read()
    return response.status


async def test_not_ready_until_data_arrives(serve: Serve, tmp_path: Path) -> None:
    path = tmp_path / "later.json"
    served = await serve(path, wait=False)
    assert await status_of(served, "/health") == 200
    response = await served.client.get("/readiness")
    assert response.status == 503
    assert (await response.json())["status"] == "not ready"
    response = await served.client.get("/v0.1/servers")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Content-Type"] == "application/problem+json"
    assert await status_of(served, "/api/v1/registry") == 503
    replace_file(path, generation("acme", 3))
    await asyncio.wait_for(served.loader.wait_loaded(), 10)
    assert await status_of(served, "/readiness") == 200
    assert len((await (await served.client.get("/v0.1/servers")).json())["servers"]) == 3


async def test_file_change_is_served(serve: Serve, tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    path.write_bytes(generation("acme", 3))
    served = await serve(path)
    before = await served.client.get("/v0.1/servers")
    etag = before.headers["ETag"]
    replace_file(path, generation("other", 5))
    await asyncio.wait_for(served.loader.wait_loaded(2), 10)
    after = await served.client.get("/v0.1/servers", headers={"If-None-Match": etag})
    assert after.status == 200  # the old ETag no longer matches
    names = [s["server"]["name"] for s in (await after.json())["servers"]]
    assert names == [f"io.github.other/server-{i:03d}" for i in range(5)]
    version = await (await served.client.get("/version")).json()
    assert version["catalog"]["servers"] == 5


async def test_bad_data_keeps_the_last_good_catalogue(serve: Serve, tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    path.write_bytes(generation("acme", 3))
    served = await serve(path)
    processed = served.loader.processed
    replace_file(path, b'{"servers": [{"server": {"name": 42}}]}')
    await asyncio.wait_for(served.loader.wait_processed(processed + 1), 10)
    assert await status_of(served, "/readiness") == 200
    readiness = await (await served.client.get("/readiness")).json()
    assert "serving the last good catalogue" in readiness["detail"]
    listing = await (await served.client.get("/v0.1/servers")).json()
    assert len(listing["servers"]) == 3
    metrics = await (await served.client.get("/metrics")).text()
    assert 'mcpreg_api_catalog_reloads_total{result="invalid"} 1.0' in metrics
    replace_file(path, generation("acme", 4))  # a good version clears the problem
    await asyncio.wait_for(served.loader.wait_loaded(2), 10)
    assert "detail" not in await (await served.client.get("/readiness")).json()


async def test_same_content_is_not_reloaded(edge: Served) -> None:
    snapshot = edge.app[STATE].snapshot
    assert snapshot is not None
    same = StoredCatalog.create(edge.path.read_bytes(), revision="again", server_count=0)
    assert await edge.loader.apply(same) is False
    assert edge.app[STATE].snapshot is snapshot


async def test_reloads_never_mix_generations_or_drop_requests(serve: Serve, tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    a, b = generation("aaa", 150), generation("bbb", 150, version="2.0.0", published="2025-06-01T00:00:00Z")
    path.write_bytes(a)
    served = await serve(path)
    generations = [
        StoredCatalog.create(a, revision="a", server_count=150),
        StoredCatalog.create(b, revision="b", server_count=150),
    ]
    stop = asyncio.Event()
    problems: list[str] = []
    answered = 0

    async def swapper() -> None:
        for i in range(40):
            await served.loader.apply(generations[(i + 1) % 2])
            await asyncio.sleep(0)
        stop.set()

    async def reader() -> None:
        nonlocal answered
        while not stop.is_set():
            for url in (
                "/v0.1/servers?limit=100",
                "/api/v1/registry",
                "/v0.1/servers?version=latest&limit=37",
            ):
                response = await served.client.get(url)
                body = await response.read()
                answered += 1
                if response.status != 200:
                    problems.append(f"{url}: {response.status}")
                    continue
                document = json.loads(body)
                if isinstance(document["servers"], list):  # a v0.1 page
                    prefixes = {s["server"]["name"].split("/")[0] for s in document["servers"]}
                    versions = {s["server"]["version"] for s in document["servers"]}
                else:  # the ToolHive document (these test servers have no tools: it lists none)
                    prefixes = {document["last_updated"]}
                    versions = {"-"}
                if len(prefixes) != 1 or len(versions) != 1:
                    problems.append(f"{url}: mixed generations {prefixes} {versions}")

    await asyncio.gather(swapper(), *(reader() for _ in range(6)))
    assert not problems, problems[:5]
    assert answered > 40
    assert served.loader.loads >= 40


async def test_a_walk_across_a_reload_sees_each_server_once(serve: Serve, tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    first = [entry(f"io.github.acme/s{i:03d}", "1.0.0") for i in range(0, 60, 2)]
    second = [entry(f"io.github.acme/s{i:03d}", "1.0.0") for i in range(60)]  # the gaps filled in
    path.write_bytes(catalogue_bytes(first))
    served = await serve(path)
    seen: list[str] = []
    cursor = ""
    while True:
        response = await served.client.get(f"/v0.1/servers?limit=7{'&cursor=' + cursor if cursor else ''}")
        document = await response.json()
        seen += [s["server"]["name"] for s in document["servers"]]
        if len(seen) == 14:  # halfway: the catalogue grows under the walk
            await served.loader.apply(
                StoredCatalog.create(catalogue_bytes(second), revision="2", server_count=60)
            )
        cursor = document["metadata"].get("nextCursor", "")
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert seen[-1] == "io.github.acme/s059"


async def test_readiness_and_metrics_never_show_raw_exception_text() -> None:
    """A generation whose build fails unexpectedly, and a reader that fails: `/readiness` names the
    exception's type only (the log has the rest), the product's own storage messages in full."""
    secret = "password=hunter2 at /var/run/secrets/token"

    async def failing_build(stored: StoredCatalog) -> Snapshot:
        raise RuntimeError(secret)

    class FailingReader:
        def __init__(self, error: Exception) -> None:
            self.error = error

        async def changes(self) -> AsyncIterator[StoredCatalog]:
            raise self.error
            yield  # an async generator, as the readers' are

    metrics = ApiMetrics()
    state = CatalogState()
    loader = CatalogLoader(FailingReader(RuntimeError(secret)), state, metrics, build=failing_build)  # type: ignore[arg-type]
    stored = StoredCatalog.create(generation("acme", 1), revision="r", server_count=1)
    assert await loader.apply(stored) is False
    assert state.last_error is not None
    assert (
        secret not in state.last_error
        and "could not be loaded: RuntimeError (see the log)" in state.last_error
    )
    for error, shown in (
        (RuntimeError(secret), "reading the catalogue failed: RuntimeError (see the log)"),
        (
            StorageError("ConfigMap reg-data is missing"),
            "reading the catalogue failed: ConfigMap reg-data is missing",
        ),
    ):
        loader.reader = FailingReader(error)  # type: ignore[assignment]
        task = asyncio.create_task(loader.run())
        for _ in range(100):
            await asyncio.sleep(0.01)
            if state.last_error == shown:
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert state.last_error == shown
    assert secret not in generate_latest(metrics.registry).decode()
