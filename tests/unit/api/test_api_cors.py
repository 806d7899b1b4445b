"""CORS: preflights answered 204 on every read endpoint, Allow-Origin on every answer (errors and 304s
too), explicit origin lists echoed with Vary: Origin, credentials only with an explicit list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from api_testdata import Serve, Served
from pydantic import ValidationError

from mcpreg.apiconfig import CorsConfig
from mcpreg_api.config import AccessLogConfig, HttpConfig

PAGE = "https://vscode.dev"
PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization, content-type",
}
READ_ENDPOINTS = [
    "/v0.1/servers",
    "/v0.1/servers/io.github.acme%2Fweather",
    "/v0.1/servers/io.github.acme%2Fweather/versions",
    "/v0.1/servers/io.github.acme%2Fweather/versions/latest",
    "/v0/servers",
    "/api/v1/registry",
    "/openapi.json",
    "/openapi.yaml",
    "/v0.1/x/dev.mcpregistry/info",
]


def config(**cors: object) -> HttpConfig:
    return HttpConfig(access_log=AccessLogConfig(enabled=False), cors=CorsConfig.model_validate(cors))


@pytest.mark.parametrize("path", READ_ENDPOINTS)
async def test_preflight_is_answered_on_every_read_endpoint(edge: Served, path: str) -> None:
    response = await edge.client.options(path, headers=PREFLIGHT)
    assert response.status == 204, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) == 600
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert await response.read() == b""


@pytest.mark.parametrize("path", READ_ENDPOINTS)
async def test_reads_from_a_page_may_be_read(edge: Served, path: str) -> None:
    response = await edge.client.get(path, headers={"Origin": PAGE})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" not in response.headers.get("Vary", "")  # one answer for every origin


async def test_errors_and_not_modified_carry_cors_headers(edge: Served) -> None:
    missing = await edge.client.get("/v0.1/servers/no.such%2Fserver", headers={"Origin": PAGE})
    assert missing.status == 404
    assert missing.headers["Access-Control-Allow-Origin"] == "*"
    bad = await edge.client.get("/v0.1/servers?limit=0", headers={"Origin": PAGE})
    assert bad.status == 400
    assert bad.headers["Access-Control-Allow-Origin"] == "*"
    first = await edge.client.get("/v0.1/servers", headers={"Origin": PAGE})
    again = await edge.client.get(
        "/v0.1/servers", headers={"Origin": PAGE, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status == 304
    assert again.headers["Access-Control-Allow-Origin"] == "*"


async def test_a_request_without_origin_gets_no_cors_headers(edge: Served) -> None:
    response = await edge.client.get("/v0.1/servers")
    assert not any(name.lower().startswith("access-control-") for name in response.headers)


async def test_plain_options_says_what_is_allowed(edge: Served) -> None:
    response = await edge.client.options("/v0.1/servers")
    assert response.status == 204
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"


async def test_options_on_an_unknown_path_is_404_and_other_methods_stay_405(edge: Served) -> None:
    unknown = await edge.client.options("/v0.2/servers", headers=PREFLIGHT)
    assert unknown.status == 404
    post = await edge.client.post("/v0.1/servers", headers={"Origin": PAGE})
    assert post.status == 405
    assert post.headers["Access-Control-Allow-Origin"] == "*"


async def test_preflights_are_counted_in_the_metrics(edge: Served) -> None:
    await edge.client.options("/v0.1/servers", headers=PREFLIGHT)
    text = await (await edge.client.get("/metrics")).text()
    assert any(
        'route="preflight"' in line and 'method="OPTIONS"' in line and 'status="204"' in line
        for line in text.splitlines()
    ), text


async def test_an_origin_list_echoes_listed_origins_only(serve: Serve, edge_file: Path) -> None:
    served = await serve(edge_file, config=config(allowedOrigins=[PAGE, "http://localhost:3000"]))
    listed = await served.client.get("/v0.1/servers", headers={"Origin": PAGE})
    assert listed.headers["Access-Control-Allow-Origin"] == PAGE
    assert "Origin" in listed.headers["Vary"] and "Accept-Encoding" in listed.headers["Vary"]
    other = await served.client.get("/v0.1/servers", headers={"Origin": "https://evil.example"})
    assert other.status == 200
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Origin" in other.headers["Vary"]
    refused = await served.client.options(
        "/v0.1/servers", headers={**PREFLIGHT, "Origin": "https://evil.example"}
    )
    assert refused.status == 403
    assert "https://evil.example" in (await refused.json())["detail"]
    assert "Access-Control-Allow-Origin" not in refused.headers


async def test_credentials_are_allowed_only_for_listed_origins(serve: Serve, edge_file: Path) -> None:
    served = await serve(edge_file, config=config(allowedOrigins=[PAGE], allowCredentials=True))
    preflight = await served.client.options("/v0.1/servers", headers=PREFLIGHT)
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == PAGE
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    read = await served.client.get("/v0.1/servers", headers={"Origin": PAGE})
    assert read.headers["Access-Control-Allow-Credentials"] == "true"


async def test_an_empty_origin_list_turns_cors_off(serve: Serve, edge_file: Path) -> None:
    served = await serve(edge_file, config=config(allowedOrigins=[]))
    read = await served.client.get("/v0.1/servers", headers={"Origin": PAGE})
    assert "Access-Control-Allow-Origin" not in read.headers
    preflight = await served.client.options("/v0.1/servers", headers=PREFLIGHT)
    assert preflight.status == 403


@pytest.mark.parametrize(
    ("cors", "message"),
    [
        ({"allowedOrigins": ["*"], "allowCredentials": True}, "allowCredentials needs an explicit list"),
        ({"allowedOrigins": ["https://a.example/path"]}, "is not '*' or an origin"),
        ({"allowedOrigins": ["vscode.dev"]}, "is not '*' or an origin"),
        ({"allowedOrigins": ["*", PAGE]}, "list it alone"),
    ],
)
def test_inconsistent_cors_settings_are_refused(cors: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        CorsConfig.model_validate(cors)
