"""Fixtures for the registry API tests: the app over a real catalogue file, through the real file reader."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from api_testdata import SHARED_DATA, Serve, Served, catalogue_bytes, edge_catalogue

from mcpreg.storage import FileCatalogReader
from mcpreg_api.app import LOADER, create_app
from mcpreg_api.config import AccessLogConfig, HttpConfig
from mcpreg_api.server import runner_options


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "toolhive").is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set MCPREG_SHARED_DATA)")
    return SHARED_DATA


@pytest_asyncio.fixture(loop_scope="function")
async def serve() -> AsyncIterator[Serve]:
    """`await serve(path)`: the app following `path` (polled every 20 ms), once its data is loaded."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def start(
        path: Path, *, wait: bool = True, config: HttpConfig | None = None, with_limits: bool = False
    ) -> Served:
        reader = FileCatalogReader(path, poll_interval=0.02, count_servers=lambda _: 0)
        app = create_app(reader, config=config or HttpConfig(access_log=AccessLogConfig(enabled=False)))
        server = TestServer(app)
        # TestServer drops constructor options: the runner's (HTTP limits) go to start_server.
        await server.start_server(**(runner_options(app) if with_limits else {}))
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        if wait:
            await app[LOADER].wait_loaded()
        return Served(client, app, path)

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
def edge_file(tmp_path: Path) -> Path:
    path = tmp_path / "edge.json"
    path.write_bytes(catalogue_bytes(edge_catalogue()))
    return path


@pytest_asyncio.fixture(loop_scope="function")
async def edge(serve: Serve, edge_file: Path) -> Served:
    return await serve(edge_file)


@pytest_asyncio.fixture(loop_scope="function")
async def real(serve: Serve, shared_data: Path) -> Served:
    """The 102-server ToolHive catalogue."""
    return await serve(shared_data / "toolhive" / "registry-2026-02-18.json")
