"""Test data and client-side helpers for the registry API tests.

`go_*` helpers reproduce what ToolHive's Go client does on the wire: how it escapes names
(`url.PathEscape`) and queries (`url.Values.Encode`), and how `encoding/json` decodes the v0.1 list and
server responses into the registry's Go types (`v0.ServerListResponse`, `v0.ServerResponse`): a field of
the wrong JSON type, or a timestamp `time.Time` cannot parse, fails the whole decode there, so it fails
here too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import string
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from mcpreg.storage.model import StoredCatalog
from mcpreg_api.app import LOADER
from mcpreg_api.loader import CatalogLoader

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DATA = Path(os.environ.get("MCPREG_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
REAL_CATALOGUES = (
    "toolhive/registry-2025-07-29.json",
    "toolhive/registry-2025-12-03.json",
    "toolhive/registry-2026-02-18.json",
    "upstream/upstream-registry-example.json",
)
SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
OFFICIAL = "io.modelcontextprotocol.registry/official"


def entry(
    name: str,
    version: str,
    *,
    description: str = "A test server",
    title: str | None = None,
    status: str = "active",
    published: str = "2025-01-01T00:00:00Z",
    updated: str | None = None,
) -> dict[str, Any]:
    """One `{"server", "_meta"}` item of an upstream (v0.1 list response) catalogue."""
    server: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "name": name,
        "description": description,
        "version": version,
        "remotes": [{"type": "streamable-http", "url": f"https://{name.split('/')[0]}.example.com/mcp"}],
    }
    if title is not None:
        server["title"] = title
    official: dict[str, Any] = {"status": status, "publishedAt": published, "isLatest": False}
    if updated is not None:
        official["updatedAt"] = updated
    return {"server": server, "_meta": {OFFICIAL: official}}


def catalogue_bytes(entries: list[dict[str, Any]]) -> bytes:
    return json.dumps({"servers": entries}).encode()


def edge_catalogue() -> list[dict[str, Any]]:
    """Several versions (one with build metadata, one deleted), a name that looks like a path."""
    return [
        entry("io.github.acme/weather", "1.0.0", title="Weather", description="Forecasts"),
        entry(
            "io.github.acme/weather",
            "1.0.0+build",
            title="Weather",
            description="Forecasts",
            published="2025-02-01T00:00:00Z",
        ),
        entry(
            "io.github.acme/weather",
            "2.0.0",
            title="Weather",
            description="Forecasts",
            status="deleted",
            published="2025-03-01 00:00:00z",
        ),
        entry("io.github.acme/versions", "0.1.0", description="Named like a path segment"),
        entry("io.github.acme/gone", "1.0.0", status="deleted", published="2025-04-01T00:00:00Z"),
        entry(
            "io.github.other/percent",
            "0.0.1",
            description="Has 100% coverage_and_more",
            published="2025-05-01T12:00:00.5+02:00",
        ),
        entry("com.example/zeta", "3.1.4", title="ZETA Search", description="Looks things up"),
    ]


@dataclass
class Served:
    client: TestClient[web.Request, web.Application]
    app: web.Application
    path: Path

    @property
    def loader(self) -> CatalogLoader:
        return self.app[LOADER]


Serve = Callable[..., Awaitable[Served]]
"""The `serve` fixture: `await serve(path, wait=True, config=None, with_limits=False)`."""


# --- what Go does ------------------------------------------------------------------------------------------

_UNRESERVED = set(string.ascii_letters + string.digits + "-_.~")
# url.PathEscape (encodePathSegment): these stay as they are; '/', ';', ',' and '?' are escaped.
_PATH_SEGMENT_SAFE = _UNRESERVED | set("$&+=:@")


def go_path_escape(text: str) -> str:
    """Go's `url.PathEscape`."""
    return "".join(
        ch if ch in _PATH_SEGMENT_SAFE else "".join(f"%{b:02X}" for b in ch.encode()) for ch in text
    )


def go_query_escape(text: str) -> str:
    """Go's `url.QueryEscape` (spaces become '+')."""
    out = []
    for ch in text:
        if ch in _UNRESERVED:
            out.append(ch)
        elif ch == " ":
            out.append("+")
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode()))
    return "".join(out)


def go_values_encode(params: dict[str, str]) -> str:
    """Go's `url.Values.Encode`: keys sorted, each value query-escaped."""
    return "&".join(f"{go_query_escape(k)}={go_query_escape(params[k])}" for k in sorted(params))


class GoDecodeError(AssertionError):
    pass


# time.Time's UnmarshalJSON parses RFC 3339 (time.RFC3339Nano layout, strictly since Go 1.20).
_GO_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+\-][0-9]{2}:[0-9]{2})"
)


@dataclass
class GoOfficial:
    status: str
    published_at: str | None
    updated_at: str | None
    is_latest: bool


@dataclass
class GoServerResponse:
    server: dict[str, Any]
    official: GoOfficial | None


@dataclass
class GoServerList:
    servers: list[GoServerResponse]
    next_cursor: str
    count: int


def _go_string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GoDecodeError(f"{where}: cannot unmarshal {type(value).__name__} into Go string")
    return value


def _go_object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GoDecodeError(f"{where}: cannot unmarshal {type(value).__name__} into Go struct")
    return value


def _go_time(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _GO_RFC3339.fullmatch(value):
        raise GoDecodeError(f"{where}: parsing time {value!r} as RFC 3339 failed")
    return value


def _go_server_json(value: Any, where: str) -> dict[str, Any]:
    server = _go_object(value, where)
    for field in ("$schema", "name", "description", "title", "version", "websiteUrl"):
        _go_string(server.get(field), f"{where}.{field}")
    for field in ("packages", "remotes", "icons"):
        if server.get(field) is not None and not isinstance(server[field], list):
            raise GoDecodeError(f"{where}.{field}: cannot unmarshal into Go slice")
    meta = server.get("_meta")
    if meta is not None:
        _go_object(meta, f"{where}._meta")
    return server


def go_decode_server_response(value: Any, where: str = "ServerResponse") -> GoServerResponse:
    document = _go_object(value, where)
    server = _go_server_json(document.get("server"), f"{where}.server")
    meta = _go_object(document.get("_meta"), f"{where}._meta")
    raw = meta.get(OFFICIAL)
    official = None
    if raw is not None:
        block = _go_object(raw, f"{where}._meta.official")
        is_latest = block.get("isLatest", False)
        if not isinstance(is_latest, bool):
            raise GoDecodeError(f"{where}.isLatest: cannot unmarshal into Go bool")
        _go_time(block.get("statusChangedAt"), f"{where}.statusChangedAt")
        official = GoOfficial(
            status=_go_string(block.get("status"), f"{where}.status"),
            published_at=_go_time(block.get("publishedAt"), f"{where}.publishedAt"),
            updated_at=_go_time(block.get("updatedAt"), f"{where}.updatedAt"),
            is_latest=is_latest,
        )
    return GoServerResponse(server, official)


def go_decode_server_list(body: bytes) -> GoServerList:
    """`json.NewDecoder(body).Decode(&v0.ServerListResponse{})`, strictly typed."""
    document = _go_object(json.loads(body), "ServerListResponse")
    raw_servers = document.get("servers")
    if raw_servers is not None and not isinstance(raw_servers, list):
        raise GoDecodeError("servers: cannot unmarshal into Go slice")
    servers = [go_decode_server_response(s, f"servers[{i}]") for i, s in enumerate(raw_servers or [])]
    metadata = _go_object(document.get("metadata"), "metadata")
    count = metadata.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int):
        raise GoDecodeError("metadata.count: cannot unmarshal into Go int")
    return GoServerList(servers, _go_string(metadata.get("nextCursor"), "metadata.nextCursor"), count)


def go_probe_is_api(content_type: str, body: bytes) -> bool:
    """ToolHive's `isValidAPIResponse`: JSON content type, a `servers` array and a `metadata` object."""
    if "application/json" not in content_type:
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(data, dict)
        and isinstance(data.get("servers"), list)
        and isinstance(data.get("metadata"), dict)
    )


class OneGeneration:
    """A reader that publishes one generation, then nothing more."""

    def __init__(self, stored: StoredCatalog) -> None:
        self.stored = stored

    async def read(self) -> StoredCatalog | None:
        return self.stored

    async def changes(self) -> AsyncGenerator[StoredCatalog, None]:
        yield self.stored
        await asyncio.Event().wait()
