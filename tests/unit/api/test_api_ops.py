"""Health, readiness, version, Prometheus metrics and the JSON-lines access log."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from api_testdata import Served

from mcpreg.storage import FileCatalogReader
from mcpreg_api import __version__
from mcpreg_api.accesslog import AccessLogSink
from mcpreg_api.app import LOADER, create_app
from mcpreg_api.schemas import Health, Readiness, VersionInfo
from mcpreg_api.server import runner_options


async def test_health_readiness_version(real: Served) -> None:
    assert Health.model_validate(await (await real.client.get("/health")).json()).status == "ok"
    readiness = Readiness.model_validate(await (await real.client.get("/readiness")).json())
    assert readiness.status == "ready" and readiness.catalog is not None
    assert readiness.catalog.servers == 102 and readiness.catalog.contentHash.startswith("sha256:")
    version = VersionInfo.model_validate(await (await real.client.get("/version")).json())
    assert version.version == __version__
    assert version.api_versions == ["v0.1", "v0"]


async def test_metrics(real: Served) -> None:
    await real.client.get("/v0.1/servers?limit=3")
    await real.client.get("/v0.1/servers/io.github.stacklok%2Ffetch")
    await real.client.get("/v0/servers/io.github.stacklok%2Fnope/versions")
    await real.client.get("/v0.1/servers?limit=0")
    await real.client.get("/no/such/path/1")
    await real.client.get("/no/such/path/2")
    response = await real.client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'mcpreg_api_requests_total{method="GET",route="/v0.1/servers",status="200"} 1.0' in text
    assert 'mcpreg_api_requests_total{method="GET",route="/v0.1/servers",status="400"} 1.0' in text
    assert 'route="/v0.1/servers/{name}",status="200"' in text
    assert 'route="/v0/servers/{name}/versions",status="404"' in text
    # Unknown paths share one label: a client cannot grow the label set.
    assert 'mcpreg_api_requests_total{method="GET",route="unmatched",status="404"} 2.0' in text
    assert "mcpreg_api_request_duration_seconds_bucket" in text
    assert "mcpreg_api_catalog_servers 102.0" in text
    assert "mcpreg_api_catalog_entries 102.0" in text
    assert "mcpreg_api_ready 1.0" in text
    assert 'mcpreg_api_catalog_reloads_total{result="loaded"} 1.0' in text
    assert "mcpreg_api_catalog_reload_duration_seconds_count 1.0" in text


async def test_access_log_is_json_lines(shared_data: Path) -> None:
    stream = io.StringIO()
    reader = FileCatalogReader(
        shared_data / "toolhive" / "registry-2026-02-18.json", count_servers=lambda _: 0
    )
    app = create_app(reader)
    server = TestServer(app)
    await server.start_server(**runner_options(app, stream))
    async with TestClient(server) as client:
        await app[LOADER].wait_loaded()
        await client.get(
            "/v0.1/servers/io.github.stacklok%2Ffetch?include_deleted=false",
            headers={"User-Agent": "toolhive/test", "X-Request-ID": "req-1"},
        )
        await client.get("/v0.1/servers?limit=abc")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert set(first) == {
        "time",
        "remote",
        "method",
        "path",
        "query",
        "status",
        "bytes",
        "latency_ms",
        "user_agent",
        "request_id",
    }
    assert first["remote"] == "127.0.0.1"
    assert first["method"] == "GET"
    assert first["path"] == "/v0.1/servers/io.github.stacklok%2Ffetch"  # as sent, still encoded
    assert first["query"] == "include_deleted=false"
    assert first["status"] == 200 and first["bytes"] > 100
    assert first["user_agent"] == "toolhive/test" and first["request_id"] == "req-1"
    assert first["time"].endswith("Z") and first["latency_ms"] >= 0
    assert second["status"] == 400 and "request_id" not in second


async def test_access_log_sink_buffers_and_flushes() -> None:
    stream = io.StringIO()
    sink = AccessLogSink(stream, flush_interval=0.05)
    sink.write('{"a":1}')
    sink.write('{"a":2}')
    assert stream.getvalue() == ""  # buffered
    await asyncio.sleep(0.2)
    assert stream.getvalue() == '{"a":1}\n{"a":2}\n'  # flushed by the timer
    sink.write("x" * 70_000)  # a full buffer is written at once
    assert stream.getvalue().endswith("x\n")
    immediate = io.StringIO()
    AccessLogSink(immediate, flush_interval=0).write("line")
    assert immediate.getvalue() == "line\n"
