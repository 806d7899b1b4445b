"""HTTP manners: ETag and 304, Cache-Control, gzip when asked, limits on what a client may send."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import pytest
from api_testdata import Serve, Served

from mcpreg.storage import FileCatalogReader
from mcpreg_api import manners
from mcpreg_api.app import LOADER, create_app
from mcpreg_api.config import AccessLogConfig, HttpConfig, HttpLimits
from mcpreg_api.manners import accepts_gzip, etag_matches
from mcpreg_api.rendering import Rendered, ResponseCache
from mcpreg_api.server import serve

IDENTITY = {"Accept-Encoding": "identity"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, GZIP;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("gzip;q=bogus", False),
        ("*;q=0", False),
        ("deflate, br", False),
        ("", False),
        ("identity", False),
        ("*, gzip;q=0", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"abc-gzip"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ('"ab"', False),
        ("", False),
    ],
)
def test_etag_matches(header: str, expected: bool) -> None:
    assert etag_matches(header, '"abc"') is expected


def test_response_cache_is_bounded() -> None:
    cache = ResponseCache(max_items=3, max_bytes=10_000)
    for i in range(10):
        cache.get_or_render(i, lambda: Rendered(b"x" * 100, '"x"'))
    assert len(cache) == 3
    calls: list[int] = []

    def render() -> Rendered:
        calls.append(1)
        return Rendered(b"", '""')

    cache.get_or_render(9, render)
    assert not calls  # a hit does not render again
    cache.get_or_render("big", lambda: Rendered(b"x" * 5_000, '"big"'))
    assert len(cache) == 3  # too big to keep: rendered but not cached


@pytest.mark.parametrize(
    "url",
    [
        "/v0.1/servers?limit=5",
        "/v0.1/servers/io.github.stacklok%2Ffetch",
        "/v0.1/servers/io.github.stacklok%2Ffetch/versions",
        "/v0.1/servers/io.github.stacklok%2Ffetch/versions/latest",
        "/api/v1/registry",
        "/openapi.yaml",
    ],
)
async def test_etag_and_304(real: Served, url: str) -> None:
    first = await real.client.get(url, headers=IDENTITY)
    assert first.status == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    assert first.headers["Vary"] == "Accept-Encoding"
    again = await real.client.get(url, headers={**IDENTITY, "If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    # The gzip variant has its own tag, and either tag revalidates either variant.
    zipped = await real.client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert zipped.status == 304 and zipped.headers["ETag"] != etag
    stale = await real.client.get(url, headers={**IDENTITY, "If-None-Match": '"something-else"'})
    assert stale.status == 200


async def test_same_request_same_etag_different_request_different_etag(real: Served) -> None:
    a = await real.client.get("/v0.1/servers?limit=5", headers=IDENTITY)
    b = await real.client.get("/v0.1/servers?limit=5&colour=blue", headers=IDENTITY)  # ignored parameter
    c = await real.client.get("/v0.1/servers?limit=6", headers=IDENTITY)
    assert a.headers["ETag"] == b.headers["ETag"] != c.headers["ETag"]
    assert await a.read() == await b.read()


async def test_gzip_only_when_asked(real: Served) -> None:
    plain = await real.client.get("/api/v1/registry", headers=IDENTITY)
    body = await plain.read()
    assert "Content-Encoding" not in plain.headers
    zipped = await real.client.get(
        "/api/v1/registry", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert zipped.headers["Content-Encoding"] == "gzip"
    raw = await zipped.read()
    assert len(raw) < len(body) / 3
    assert gzip.decompress(raw) == body
    assert json.loads(body)["servers"]


async def test_small_bodies_are_not_compressed(real: Served) -> None:
    response = await real.client.get("/health", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert "Content-Encoding" not in response.headers


async def test_operational_endpoints_are_not_cached(real: Served) -> None:
    for url in ("/health", "/readiness", "/version", "/metrics"):
        response = await real.client.get(url)
        assert response.headers["Cache-Control"] == "no-store", url


async def test_request_limits(serve: Serve, edge_file: Path) -> None:
    served = await serve(edge_file, with_limits=True)
    host, port = served.client.host, served.client.port
    long_line = await raw_request(
        host, port, f"GET /v0.1/servers?search={'x' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert long_line.split(b" ")[1] in (b"400", b"414", b"431")
    big_header = await raw_request(
        host, port, f"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {'y' * 9000}\r\n\r\n"
    )
    assert big_header.split(b" ")[1] in (b"400", b"431")
    many = "".join(f"X-H{i}: v\r\n" for i in range(100))
    many_headers = await raw_request(host, port, f"GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n")
    assert many_headers.split(b" ")[1] in (b"400", b"431")
    ok = await raw_request(host, port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")


async def raw_request(host: str, port: int, request: str) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request.encode())
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


async def test_slow_or_idle_clients_are_disconnected(serve: Serve, edge_file: Path) -> None:
    config = HttpConfig(
        access_log=AccessLogConfig(enabled=False), limits=HttpLimits(keepalive_timeout_seconds=0.5)
    )
    served = await serve(edge_file, config=config, with_limits=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection(served.client.host, served.client.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    try:
        for _ in range(40):  # dribble a header line every 0.1 s: the server must not wait forever
            if reader.at_eof():
                break
            writer.write(b"X-Slow: y\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
    except ConnectionError:
        pass
    finally:
        closed_after = loop.time() - started
        writer.close()
    assert closed_after < 3, f"a client dribbling headers kept its connection for {closed_after:.1f}s"


async def test_large_bodies_are_streamed_whole(real: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = await (await real.client.get("/api/v1/registry", headers=IDENTITY)).read()
    monkeypatch.setattr(manners, "STREAM_ABOVE", 1024)
    monkeypatch.setattr(manners, "STREAM_CHUNK", 4096)
    streamed = await real.client.get("/api/v1/registry", headers=IDENTITY)
    assert streamed.headers["Content-Length"] == str(len(whole))
    assert "Transfer-Encoding" not in streamed.headers
    assert await streamed.read() == whole
    zipped = await real.client.get(
        "/api/v1/registry", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert gzip.decompress(await zipped.read()) == whole
    head = await real.client.head("/api/v1/registry", headers=IDENTITY)
    assert head.headers["Content-Length"] == str(len(whole)) and await head.read() == b""


async def test_drain_on_shutdown_keeps_serving_not_ready_then_closes(edge_file: Path) -> None:
    """After the stop signal the server answers for `drain_seconds` with /readiness 503 and
    `Connection: close`, so a Service moves traffic away before the listener closes."""
    reader = FileCatalogReader(edge_file, poll_interval=0.02, count_servers=lambda _: 0)
    config = HttpConfig(access_log=AccessLogConfig(enabled=False), limits=HttpLimits(drain_seconds=0.6))
    app = create_app(reader, config=config)
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(app, port=0, stop=stop, on_listening=bound.set_result))
    port = await asyncio.wait_for(bound, 5)
    await app[LOADER].wait_loaded()
    before = await raw_request("127.0.0.1", port, "GET /readiness HTTP/1.1\r\nHost: x\r\n\r\n")
    assert before.startswith(b"HTTP/1.1 200")
    stop.set()
    await asyncio.sleep(0.1)
    draining = await raw_request("127.0.0.1", port, "GET /readiness HTTP/1.1\r\nHost: x\r\n\r\n")
    assert draining.startswith(b"HTTP/1.1 503") and b"shutting down" in draining
    data = await raw_request("127.0.0.1", port, "GET /v0.1/servers HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data
    await asyncio.wait_for(task, 5)
    with pytest.raises(OSError):
        await raw_request("127.0.0.1", port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
