"""The v0.1 endpoints over HTTP: shapes, filters, names and versions in paths, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_testdata import OFFICIAL, Served

from mcpreg_api.schemas import Problem, ServerListResponse, ServerResponse


async def get_json(served: Served, url: str, status: int = 200) -> Any:
    response = await served.client.get(url)
    body = await response.read()
    assert response.status == status, body
    return json.loads(body)


async def list_names(served: Served, url: str) -> list[tuple[str, str]]:
    document = await get_json(served, url)
    ServerListResponse.model_validate(document)
    return [(e["server"]["name"], e["server"]["version"]) for e in document["servers"]]


async def test_list_shape_and_default_limit(real: Served) -> None:
    response = await real.client.get("/v0.1/servers")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document = json.loads(await response.read())
    assert set(document) == {"servers", "metadata"}
    parsed = ServerListResponse.model_validate(document)
    assert len(parsed.servers) == 30 and document["metadata"]["count"] == 30
    assert set(document["metadata"]) == {"nextCursor", "count"}
    for item in document["servers"]:
        assert set(item) == {"server", "_meta"}
        official = item["_meta"][OFFICIAL]
        assert set(official) >= {"status", "publishedAt", "updatedAt", "isLatest"}
        assert official["publishedAt"].endswith("Z") and official["updatedAt"].endswith("Z")
    names = [(s["server"]["name"], s["server"]["version"]) for s in document["servers"]]
    assert names == sorted(names)


async def test_last_page_has_no_cursor(edge: Served) -> None:
    document = await get_json(edge, "/v0.1/servers?limit=100")
    assert document["metadata"] == {"count": len(document["servers"])}


async def test_deleted_are_hidden_unless_asked(edge: Served) -> None:
    visible = await list_names(edge, "/v0.1/servers?limit=100")
    assert ("io.github.acme/gone", "1.0.0") not in visible
    assert ("io.github.acme/weather", "2.0.0") not in visible
    everything = await list_names(edge, "/v0.1/servers?limit=100&include_deleted=true")
    assert set(everything) - set(visible) == {
        ("io.github.acme/gone", "1.0.0"),
        ("io.github.acme/weather", "2.0.0"),
    }


async def test_version_latest_and_exact(edge: Served) -> None:
    latest = await list_names(edge, "/v0.1/servers?version=latest")
    assert ("io.github.acme/weather", "1.0.0+build") in latest
    assert all(name != "io.github.acme/weather" or v == "1.0.0+build" for name, v in latest)
    exact = await list_names(edge, "/v0.1/servers?version=1.0.0%2Bbuild")
    assert exact == [("io.github.acme/weather", "1.0.0+build")]
    assert await list_names(edge, "/v0.1/servers?version=9.9.9") == []


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("weather", {"io.github.acme/weather"}),
        ("WEATHER", {"io.github.acme/weather"}),
        ("zeta search", {"com.example/zeta"}),  # title
        ("looks THINGS", {"com.example/zeta"}),  # description
        ("100%25", {"io.github.other/percent"}),  # a literal %, not a wildcard
        ("%25", {"io.github.other/percent"}),
        ("_and_", {"io.github.other/percent"}),  # a literal _, not a wildcard
        ("*", set()),
        (".*", set()),
        ("nothing-like-this", set()),
    ],
)
async def test_search(edge: Served, search: str, expected: set[str]) -> None:
    found = await list_names(edge, f"/v0.1/servers?search={search}&version=latest")
    assert {name for name, _ in found} == expected


async def test_updated_since(edge: Served) -> None:
    since = await list_names(edge, "/v0.1/servers?updated_since=2025-03-01T00:00:00Z&limit=100")
    # Strictly after; deleted entries included (an incremental sync must see deletions).
    assert set(since) == {("io.github.acme/gone", "1.0.0"), ("io.github.other/percent", "0.0.1")}
    # An explicit include_deleted=false is honoured.
    without = await list_names(edge, "/v0.1/servers?updated_since=2025-03-01T00:00:00Z&include_deleted=false")
    assert without == [("io.github.other/percent", "0.0.1")]


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("limit=0", "query.limit"),
        ("limit=101", "query.limit"),
        ("limit=abc", "query.limit"),
        ("limit=", "query.limit"),
        ("cursor=bogus", "query.cursor"),
        ("cursor=%FF%FE", "query.cursor"),
        ("updated_since=yesterday", "query.updated_since"),
        ("updated_since=2025-01-01T00:00:00+01:00", "query.updated_since"),  # raw '+' is a space
        ("include_deleted=maybe", "query.include_deleted"),
        ("search=%00", "query.search"),
        ("limit=1&limit=2", "query.limit"),
    ],
)
async def test_bad_parameters_are_400_json(edge: Served, query: str, location: str) -> None:
    for prefix in ("/v0.1", "/v0"):
        response = await edge.client.get(f"{prefix}/servers?{query}")
        assert response.status == 400
        assert response.headers["Content-Type"] == "application/problem+json"
        problem = Problem.model_validate_json(await response.read())
        assert problem.status == 400 and problem.errors
        assert problem.errors[0].location == location


@pytest.mark.parametrize("prefix", ["/v0.1", "/v0"])
@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("io.github.acme%2Fweather", "1.0.0+build"),
        ("io.github.acme%2fweather", "1.0.0+build"),  # lower-case hex
        ("io.github.acme/weather", "1.0.0+build"),  # slash sent unencoded
        ("io.github.acme%2Fweather/versions/latest", "1.0.0+build"),
        ("io.github.acme/weather/versions/latest", "1.0.0+build"),
        ("io.github.acme%2Fweather/versions/1.0.0", "1.0.0"),
        ("io.github.acme%2Fweather/versions/1.0.0%2Bbuild", "1.0.0+build"),
        ("io.github.acme%2Fweather/versions/1.0.0+build", "1.0.0+build"),  # '+' is literal in a path
        ("io.github.acme%2Fversions", "0.1.0"),  # a name ending in "versions"
        ("io.github.acme/versions", "0.1.0"),
        ("io.github.acme%2Fversions/versions/latest", "0.1.0"),
    ],
)
async def test_get_one_version(edge: Served, prefix: str, path: str, version: str) -> None:
    document = await get_json(edge, f"{prefix}/servers/{path}")
    parsed = ServerResponse.model_validate(document)
    assert set(document) == {"server", "_meta"}
    assert parsed.server.version == version
    assert document["_meta"][OFFICIAL]["isLatest"] is (version in ("1.0.0+build", "0.1.0"))


async def test_versions_newest_first(edge: Served) -> None:
    document = await get_json(edge, "/v0.1/servers/io.github.acme%2Fweather/versions")
    assert [s["server"]["version"] for s in document["servers"]] == ["1.0.0+build", "1.0.0"]
    assert document["metadata"] == {"count": 2}
    with_deleted = await get_json(
        edge, "/v0.1/servers/io.github.acme%2Fweather/versions?include_deleted=true"
    )
    assert [s["server"]["version"] for s in with_deleted["servers"]] == ["1.0.0+build", "2.0.0", "1.0.0"]
    # The deleted version's publishedAt was "2025-03-01 00:00:00z" in the source: served as RFC 3339 UTC.
    assert with_deleted["servers"][1]["_meta"][OFFICIAL]["publishedAt"] == "2025-03-01T00:00:00Z"


async def test_deleted_versions_need_include_deleted(edge: Served) -> None:
    await get_json(edge, "/v0.1/servers/io.github.acme%2Fweather/versions/2.0.0", status=404)
    document = await get_json(
        edge, "/v0.1/servers/io.github.acme%2Fweather/versions/2.0.0?include_deleted=true"
    )
    assert document["_meta"][OFFICIAL]["status"] == "deleted"
    await get_json(edge, "/v0.1/servers/io.github.acme%2Fgone", status=404)
    await get_json(edge, "/v0.1/servers/io.github.acme%2Fgone/versions", status=404)
    gone = await get_json(edge, "/v0.1/servers/io.github.acme%2Fgone?include_deleted=1")
    assert gone["server"]["name"] == "io.github.acme/gone"


async def test_timestamps_are_utc(edge: Served) -> None:
    document = await get_json(edge, "/v0.1/servers/io.github.other%2Fpercent")
    assert document["_meta"][OFFICIAL]["publishedAt"] == "2025-05-01T10:00:00.5Z"


@pytest.mark.parametrize(
    "path",
    [
        "/v0.1/servers/io.github.acme%2Fnope",
        "/v0.1/servers/io.github.acme%2Fnope/versions",
        "/v0.1/servers/io.github.acme%2Fweather/versions/9.9.9",
        "/v0.1/servers/io.github.acme%2Fweather/other",
        "/v0.1/servers/io.github.acme%2Fweather/versions/1.0.0/extra",
        "/v0.1/servers/%FF%FE",
        "/v0.1/servers/%25",
        "/v0.1/servers//versions",
        "/v0.2/servers",
        "/v0.1/server",
    ],
)
async def test_not_found_is_json(edge: Served, path: str) -> None:
    response = await edge.client.get(path)
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    Problem.model_validate_json(await response.read())


async def test_read_only(edge: Served) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = await edge.client.request(method, "/v0.1/servers")
        assert response.status == 405
        assert response.headers["Allow"]
        Problem.model_validate_json(await response.read())


async def test_head(edge: Served) -> None:
    get = await edge.client.get("/v0.1/servers?limit=2", headers={"Accept-Encoding": "identity"})
    head = await edge.client.head("/v0.1/servers?limit=2", headers={"Accept-Encoding": "identity"})
    assert head.status == 200
    assert await head.read() == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == str(len(await get.read()))


async def test_toolhive_registry(real: Served) -> None:
    document = await get_json(real, "/api/v1/registry")
    assert set(document) >= {"version", "last_updated", "servers", "remote_servers"}
    assert len(document["servers"]) + len(document["remote_servers"]) == 102
    assert "fetch" in document["servers"]
