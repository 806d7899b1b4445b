"""Contract: every request ToolHive's registry API client (`thv`, pkg/registry/api) makes, decoded the way it
decodes them, over the real catalogues.

What the client does (toolhive v0.48, pinned in tools/thv): `thv config set-registry URL` probes
`GET /v0.1/servers?limit=1&version=latest` and wants a JSON content type, a `servers` array and a
`metadata` object; the provider then validates the endpoint by listing every page at `limit=1` (with
`version=latest`) within 10 s; `ListServers` walks `nextCursor` at `limit=100` until it is empty;
`GetServer` asks for `/v0.1/servers/{url.PathEscape(name)}/versions/latest` (so the slash arrives as
%2F); `SearchServers` sends `search` and `version=latest`; `ValidateEndpoint` reads /openapi.yaml and
checks `info.version == "1.0.0"` and a description naming github.com/modelcontextprotocol/registry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from api_testdata import (
    REAL_CATALOGUES,
    GoServerList,
    Serve,
    Served,
    go_decode_server_list,
    go_decode_server_response,
    go_path_escape,
    go_probe_is_api,
    go_values_encode,
)

from mcpreg.catalog import parse_catalog


async def go_list_page(served: Served, params: dict[str, str]) -> GoServerList:
    response = await served.client.get(f"/v0.1/servers?{go_values_encode(params)}")
    body = await response.read()
    assert response.status == 200, body
    return go_decode_server_list(body)


async def go_list_all(served: Served, limit: int, version: str = "latest") -> list[str]:
    """`mcpRegistryClient.ListServers`: the cursor loop, with the client's 10,000-server safety cap."""
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        params = {"limit": str(limit), "version": version}
        if cursor:
            params["cursor"] = cursor
        page = await go_list_page(served, params)
        pages += 1
        assert page.count == len(page.servers)
        seen.extend(f"{s.server['name']}@{s.server['version']}" for s in page.servers)
        if not page.next_cursor:
            return seen
        cursor = page.next_cursor
        assert len(seen) <= 10_000 and pages <= 10_000


def expected_latest(path: Path) -> list[str]:
    catalog = parse_catalog(path.read_bytes())
    return sorted(f"{e.name}@{e.version}" for e in catalog.latest_entries() if e.status != "deleted")


@pytest.mark.parametrize("catalogue", REAL_CATALOGUES)
@pytest.mark.parametrize("limit", [1, 100])
async def test_cursor_loop_sees_every_server_once(
    serve: Serve, shared_data: Path, catalogue: str, limit: int
) -> None:
    path = shared_data / catalogue
    served = await serve(path)
    started = time.monotonic()
    seen = await go_list_all(served, limit)
    elapsed = time.monotonic() - started
    assert len(seen) == len(set(seen)), "a server was listed twice"
    assert sorted(seen) == expected_latest(path)
    if limit == 1:
        # thv's start-up validation walks every page at limit=1 within a 10 s budget.
        assert elapsed < 5, f"limit=1 walk took {elapsed:.1f}s"


async def test_walk_without_version_filter_lists_every_version(edge: Served) -> None:
    seen = await go_list_all(edge, 1, version="")
    assert len(seen) == len(set(seen)) == 5  # 7 entries, 2 deleted


async def test_probe_recognises_an_api(real: Served) -> None:
    response = await real.client.get("/v0.1/servers?" + go_values_encode({"limit": "1", "version": "latest"}))
    assert response.status == 200
    assert go_probe_is_api(response.headers["Content-Type"], await response.read())


async def test_get_server_by_escaped_name(real: Served, shared_data: Path) -> None:
    catalog = parse_catalog((shared_data / "toolhive" / "registry-2026-02-18.json").read_bytes())
    for name in catalog.names():
        url = f"/v0.1/servers/{go_path_escape(name)}/versions/latest"
        assert "%2F" in url
        response = await real.client.get(url)
        body = await response.read()
        assert response.status == 200, (url, body)
        decoded = go_decode_server_response(json.loads(body))
        assert decoded.server["name"] == name
        assert decoded.official is not None and decoded.official.is_latest


async def test_get_unknown_server_is_not_200(real: Served) -> None:
    # GetProvider tries `io.github.stacklok/<name>` first, then the name as given, then search.
    response = await real.client.get(
        f"/v0.1/servers/{go_path_escape('io.github.stacklok/no-such')}/versions/latest"
    )
    assert response.status == 404
    response = await real.client.get(f"/v0.1/servers/{go_path_escape('no-such')}/versions/latest")
    assert response.status == 404


@pytest.mark.parametrize(("query", "must_find"), [("fetch", "io.github.stacklok/fetch"), ("GitHub", None)])
async def test_search_as_thv_sends_it(real: Served, query: str, must_find: str | None) -> None:
    page = await go_list_page(real, {"search": query, "version": "latest"})
    names = [s.server["name"] for s in page.servers]
    assert names, f"nothing found for {query!r}"
    if must_find:
        assert must_find in names
    for server in page.servers:
        haystack = " ".join(str(server.server.get(k, "")) for k in ("name", "title", "description")).lower()
        assert query.lower() in haystack
        assert server.official is not None and server.official.is_latest


async def test_search_with_spaces_and_symbols(real: Served) -> None:
    # url.QueryEscape turns spaces into '+', which must arrive as spaces.
    page = await go_list_page(real, {"search": "fetch content", "version": "latest"})
    assert [s.server["name"] for s in page.servers] == ["io.github.stacklok/fetch"]
    page = await go_list_page(real, {"search": "a+b&c=d/e%f", "version": "latest"})
    assert page.servers == []


async def test_validate_endpoint(real: Served) -> None:
    response = await real.client.get("/openapi.yaml")
    assert response.status == 200
    document = yaml.safe_load(await response.read())
    assert document["info"]["version"] == "1.0.0"
    assert "https://github.com/modelcontextprotocol/registry" in document["info"]["description"]


async def test_error_statuses_are_not_2xx(real: Served) -> None:
    # The client turns any non-200 into an error carrying the body: it must be short and readable.
    response = await real.client.get("/v0.1/servers?limit=0")
    assert response.status == 400
    assert len(await response.read()) < 1000
