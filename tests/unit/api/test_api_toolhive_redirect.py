"""`GET /api/v1/registry` with a redirect source (presigned S3 downloads): 302 to the URL for the
generation being served, the bytes when there is no URL, and the bytes when signing fails."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from mcpreg.storage import FileCatalogReader
from mcpreg_api.app import LOADER, STATE, create_app
from mcpreg_api.config import AccessLogConfig, HttpConfig
from mcpreg_api.toolhive import ToolHiveRedirect


async def _client(path: Path, redirect: ToolHiveRedirect) -> TestClient:  # type: ignore[type-arg]
    reader = FileCatalogReader(path, poll_interval=0.02, count_servers=lambda _: 0)
    app = create_app(
        reader, config=HttpConfig(access_log=AccessLogConfig(enabled=False)), toolhive_redirect=redirect
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    await app[LOADER].wait_loaded()
    return client


async def test_redirects_to_the_url_for_the_served_generation(edge_file: Path) -> None:
    asked: list[str] = []

    async def presign(content_hash: str) -> str | None:
        asked.append(content_hash)
        return f"http://objects.example/{content_hash}?X-Amz-Signature=abc"

    client = await _client(edge_file, presign)
    try:
        response = await client.get("/api/v1/registry", allow_redirects=False)
        snapshot = client.app[STATE].snapshot
        assert snapshot is not None and asked == [snapshot.content_hash]
        assert response.status == 302
        assert (
            response.headers["Location"]
            == f"http://objects.example/{snapshot.content_hash}?X-Amz-Signature=abc"
        )
        assert response.headers["Cache-Control"] == "no-store"
    finally:
        await client.close()


async def test_sends_the_document_without_a_url_or_when_signing_fails(edge_file: Path) -> None:
    async def nothing(content_hash: str) -> str | None:
        return None

    async def broken(content_hash: str) -> str | None:
        raise RuntimeError("signing failed")

    for redirect in (nothing, broken):
        client = await _client(edge_file, redirect)
        try:
            response = await client.get("/api/v1/registry", allow_redirects=False)
            assert response.status == 200
            assert "servers" in await response.json()
        finally:
            await client.close()
