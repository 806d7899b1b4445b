"""The OpenAPI 3.1 document of exactly what this server serves, as YAML and as JSON.

One source: `build_document()` assembles it from the route table below, the query-parameter models
(`queries`) and the response models (`schemas`); `/openapi.yaml` and `/openapi.json` are two
serialisations of that one dictionary, rendered once at start-up. `info.version` is "1.0.0" and the
description names https://github.com/modelcontextprotocol/registry: ToolHive's client checks both
before it trusts an endpoint to be an MCP Registry API.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import yaml
from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from mcpreg_api import __version__
from mcpreg_api.config import DOCUMENT_CACHE_CONTROL
from mcpreg_api.errors import PROBLEM_CONTENT_TYPE
from mcpreg_api.manners import send
from mcpreg_api.metrics import METRICS_CONTENT_TYPE
from mcpreg_api.paths import (
    ENTRIES_PATH,
    EXTENSION_PREFIX,
    INFO_PATH,
    SIGNATURE_SUFFIX,
    SIGNING_KEY_PATH,
    TOOLHIVE_PATH,
    UPSTREAM_PATH,
)
from mcpreg_api.queries import DetailQuery, ListServersQuery
from mcpreg_api.rendering import Rendered, make_etag
from mcpreg_api.routes_v01 import API_PREFIXES
from mcpreg_api.schemas import ALL_MODELS

OPENAPI_YAML_PATH = "/openapi.yaml"
OPENAPI_JSON_PATH = "/openapi.json"
YAML_CONTENT_TYPE = "application/yaml"
JSON_CONTENT_TYPE = "application/json"

_DESCRIPTION = """\
A read-only MCP server registry served by mcp-registry-operator (mcpreg) from an organisation's own
catalogue. It implements the MCP Registry API v0.1 of https://github.com/modelcontextprotocol/registry
(also under /v0), ToolHive's registry document at /api/v1/registry, its own extensions under
/v0.1/x/dev.mcpregistry/ (the specification's extension namespace), and operational endpoints.

Every GET also answers HEAD, and OPTIONS (CORS preflights: 204 with the Access-Control-* headers for the
origins the registry allows; every answer to an allowed Origin carries Access-Control-Allow-Origin).
Catalogue responses carry a strong ETag (send it back in If-None-Match to get 304 Not Modified) and
Cache-Control, and are gzip-compressed when the request accepts gzip. Every error has a JSON problem
body (RFC 9457); bad input is always a 4xx. Names and versions in paths are percent-encoded
(io.github.acme%2Fweather, 1.0.0%2Bbuild). A request whose request line exceeds 16 KiB, or with a header
line over 8 KiB or more than 64 headers, is refused before it reaches the API, with a plain-text 400 or
431.
"""
# Paragraphs as single lines: the YAML and JSON renderings then read naturally.
DESCRIPTION = "\n\n".join(" ".join(p.split()) for p in _DESCRIPTION.split("\n\n"))


def _ref(model: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model}"}


def _json_content(model: str, content_type: str = JSON_CONTENT_TYPE) -> dict[str, Any]:
    return {content_type: {"schema": _ref(model)}}


_CACHE_HEADERS = {
    "ETag": {"description": "Strong validator of this representation", "schema": {"type": "string"}},
    "Cache-Control": {"description": "How long the response may be reused", "schema": {"type": "string"}},
}


def _ok(model: str, description: str) -> dict[str, Any]:
    return {"description": description, "headers": _CACHE_HEADERS, "content": _json_content(model)}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json_content("Problem", PROBLEM_CONTENT_TYPE)}


_SIGNED_HEADERS = {
    **_CACHE_HEADERS,
    "X-Mcpreg-Generation": {"description": "Content hash of the generation", "schema": {"type": "string"}},
    "X-Mcpreg-Signing-Key-Id": {
        "description": "sha256: of the signing public key's DER (absent when unsigned)",
        "schema": {"type": "string"},
    },
    "X-Mcpreg-Signature": {
        "description": "The document's signature (documents only; absent when unsigned)",
        "schema": {"type": "string"},
    },
}
_NOT_MODIFIED = {"description": "Not modified: the If-None-Match ETag is current", "headers": _CACHE_HEADERS}
_BAD_REQUEST = _problem("A parameter is invalid; the body names it")
_NOT_FOUND = _problem("No such server or version")
_NOT_READY = _problem("No catalogue is loaded yet (see Retry-After)")


def _parameter_schema(prop: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A query model property as a parameter schema (the model's `None` means "not given")."""
    prop = dict(prop)
    description = prop.pop("description", None)
    prop.pop("title", None)
    if prop.get("default", ...) is None:
        prop.pop("default")
    branches = prop.pop("anyOf", None)
    if branches is not None:
        concrete = [b for b in branches if b.get("type") != "null"]
        if len(concrete) == 1:
            prop = {**concrete[0], **prop}
        else:
            prop["anyOf"] = concrete
    return prop, description


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    properties = model.model_json_schema()["properties"]
    parameters = []
    for name, prop in properties.items():
        schema, description = _parameter_schema(prop)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


_SERVER_NAME = _path_parameter("serverName", "Server name, percent-encoded (io.github.acme%2Fweather)")
_VERSION = _path_parameter("version", "Exact version, percent-encoded (1.0.0%2Bbuild), or `latest`")


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    tag: str = "servers",
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = responses
    return operation


_PREFLIGHT_HEADERS = {
    name: {"schema": {"type": "string"}}
    for name in (
        "Allow",
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
        "Access-Control-Max-Age",
    )
}


def _options(get: dict[str, Any]) -> dict[str, Any]:
    """The CORS preflight of `get`'s path (any path parameters are accepted: nothing is looked up)."""
    path_parameters = [p for p in get.get("parameters", []) if p["in"] == "path"]
    operation: dict[str, Any] = {
        "operationId": get["operationId"] + "-options",
        "summary": "CORS preflight (and plain OPTIONS): what a browser page may do here",
        "tags": get["tags"],
    }
    if path_parameters:
        operation["parameters"] = path_parameters
    operation["responses"] = {
        "204": {"description": "Allowed; see the Access-Control-* headers", "headers": _PREFLIGHT_HEADERS},
        "403": _problem("A preflight from an origin the registry does not allow"),
        "404": _problem("No such endpoint (a path no route matches, e.g. a name with a line break)"),
    }
    return operation


def _signing_text(operation_id: str, summary: str, description: str, media_type: str) -> dict[str, Any]:
    """A signature or the signing key: text of the generation served now, 404 when unsigned."""
    ok = {
        "description": description,
        "headers": _SIGNED_HEADERS,
        "content": {media_type: {"schema": {"type": "string"}}},
    }
    responses = {
        "200": ok,
        "304": _NOT_MODIFIED,
        "404": _problem("The catalogue is not signed"),
        "503": _NOT_READY,
    }
    return _with_head(_operation(operation_id, summary, responses, tag="extensions"))


def _with_head(get: dict[str, Any]) -> dict[str, Any]:
    """`get`, the matching `head` (same parameters and statuses, no bodies) and the preflight."""
    head = dict(get)
    head["operationId"] = get["operationId"] + "-head"
    head["summary"] = get["summary"] + " (headers only)"
    head["responses"] = {
        status: {k: v for k, v in response.items() if k != "content"}
        for status, response in get["responses"].items()
    }
    return {"get": get, "head": head, "options": _options(get)}


def _registry_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    list_params = _query_parameters(ListServersQuery)
    detail_params = _query_parameters(DetailQuery)
    for prefix in API_PREFIXES:
        suffix = prefix.replace("/", "-").replace(".", "")
        paths[f"{prefix}/servers"] = _with_head(
            _operation(
                f"list-servers{suffix}",
                "List server versions, ordered by name then version, a page at a time",
                {
                    "200": _ok("ServerListResponse", "A page of servers"),
                    "304": _NOT_MODIFIED,
                    "400": _BAD_REQUEST,
                    "503": _NOT_READY,
                },
                list_params,
            )
        )
        paths[f"{prefix}/servers/{{serverName}}"] = _with_head(
            _operation(
                f"get-server{suffix}",
                "The latest version of a server",
                {
                    "200": _ok("ServerResponse", "The server's latest version"),
                    "304": _NOT_MODIFIED,
                    "400": _BAD_REQUEST,
                    "404": _NOT_FOUND,
                    "503": _NOT_READY,
                },
                [_SERVER_NAME, *detail_params],
            )
        )
        paths[f"{prefix}/servers/{{serverName}}/versions"] = _with_head(
            _operation(
                f"get-server-versions{suffix}",
                "Every version of a server, newest first",
                {
                    "200": _ok("ServerListResponse", "The server's versions"),
                    "304": _NOT_MODIFIED,
                    "400": _BAD_REQUEST,
                    "404": _NOT_FOUND,
                    "503": _NOT_READY,
                },
                [_SERVER_NAME, *detail_params],
            )
        )
        paths[f"{prefix}/servers/{{serverName}}/versions/{{version}}"] = _with_head(
            _operation(
                f"get-server-version{suffix}",
                "One version of a server (`latest` for the latest)",
                {
                    "200": _ok("ServerResponse", "The server version"),
                    "304": _NOT_MODIFIED,
                    "400": _BAD_REQUEST,
                    "404": _NOT_FOUND,
                    "503": _NOT_READY,
                },
                [_SERVER_NAME, _VERSION, *detail_params],
            )
        )
    return paths


def _operations_path(operation_id: str, summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return _with_head(_operation(operation_id, summary, responses, tag="operations"))


def _document_responses(content_type: str) -> dict[str, Any]:
    """The answers of a cached document endpoint (the OpenAPI document in one of its forms)."""
    return {
        "200": {
            "description": "OpenAPI document",
            "headers": _CACHE_HEADERS,
            "content": {content_type: {"schema": {"type": "object"}}},
        },
        "304": _NOT_MODIFIED,
    }


def _other_paths() -> dict[str, Any]:
    readiness_content = _json_content("Readiness")
    metrics_type = METRICS_CONTENT_TYPE.split(";")[0]
    return {
        TOOLHIVE_PATH: _with_head(
            _operation(
                "get-toolhive-registry",
                "The whole catalogue in ToolHive's registry format",
                {
                    "200": _ok("ToolHiveRegistry", "The ToolHive registry document"),
                    "302": {
                        "description": (
                            "The same document is to be downloaded from object storage (servers run with "
                            "--s3-presign): Location is a presigned URL, valid for a few minutes"
                        ),
                        "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
                    },
                    "304": _NOT_MODIFIED,
                    "503": _NOT_READY,
                },
                tag="toolhive",
            )
        ),
        INFO_PATH: _with_head(
            _operation(
                "get-registry-info",
                "This registry: its name, source, the generation served and its counts",
                {
                    "200": _ok("RegistryInfo", "What this registry serves"),
                    "304": _NOT_MODIFIED,
                    "503": _NOT_READY,
                },
                tag="extensions",
            )
        ),
        UPSTREAM_PATH: _with_head(
            _operation(
                "get-upstream-list",
                "Every server version in one v0.1 list response: the upstream document the operator signs",
                {
                    "200": {**_ok("ServerListResponse", "All server versions"), "headers": _SIGNED_HEADERS},
                    "304": _NOT_MODIFIED,
                    "503": _NOT_READY,
                },
                tag="extensions",
            )
        ),
        ENTRIES_PATH: _with_head(
            _operation(
                "get-entries-manifest",
                "The entries manifest: each server version's digest, the document that makes one entry "
                "verifiable (its provenance block names it)",
                {
                    "200": {**_ok("EntriesManifest", "The entries manifest"), "headers": _SIGNED_HEADERS},
                    "304": _NOT_MODIFIED,
                    "404": _problem("The catalogue is not signed, or its entries manifest is not"),
                    "503": _NOT_READY,
                },
                tag="extensions",
            )
        ),
        **{
            path + SIGNATURE_SUFFIX: _signing_text(
                f"get-{name}-signature",
                f"The signature of {path}: base64, as `cosign sign-blob` writes it",
                "The signature of the generation served now",
                "text/plain",
            )
            for name, path in (
                ("toolhive", TOOLHIVE_PATH),
                ("upstream", UPSTREAM_PATH),
                ("entries", ENTRIES_PATH),
            )
        },
        SIGNING_KEY_PATH: _signing_text(
            "get-signing-key",
            "The public key (PEM) that signed the generation served now",
            "The public key",
            "application/x-pem-file",
        ),
        "/health": _operations_path(
            "health", "Liveness", {"200": {"description": "Alive", "content": _json_content("Health")}}
        ),
        "/readiness": _operations_path(
            "readiness",
            "Ready once a catalogue is loaded",
            {
                "200": {"description": "Serving a catalogue", "content": readiness_content},
                "503": {"description": "No catalogue loaded yet", "content": readiness_content},
            },
        ),
        "/version": _operations_path(
            "version",
            "Server version and the catalogue loaded",
            {"200": {"description": "Versions", "content": _json_content("VersionInfo")}},
        ),
        "/metrics": _operations_path(
            "metrics",
            "Prometheus metrics",
            {
                "200": {
                    "description": "Metrics in the Prometheus text format",
                    "content": {metrics_type: {"schema": {"type": "string"}}},
                }
            },
        ),
        OPENAPI_YAML_PATH: _operations_path(
            "openapi-yaml", "This document, as YAML", _document_responses(YAML_CONTENT_TYPE)
        ),
        OPENAPI_JSON_PATH: _operations_path(
            "openapi-json", "This document, as JSON", _document_responses(JSON_CONTENT_TYPE)
        ),
    }


def _component_schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(model, "validation") for model in ALL_MODELS], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


@cache
def build_document() -> dict[str, Any]:
    """The OpenAPI document (built once per process; treat as read-only)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MCP Registry API (mcpreg)",
            "version": "1.0.0",
            "description": DESCRIPTION,
            "x-server-version": __version__,
        },
        "tags": [
            {"name": "servers", "description": "MCP Registry API v0.1"},
            {"name": "toolhive", "description": "ToolHive compatibility"},
            {"name": "extensions", "description": f"Our extensions, under {EXTENSION_PREFIX}"},
            {"name": "operations", "description": "Health, readiness, version, metrics, this document"},
        ],
        "paths": {**_registry_paths(), **_other_paths()},
        "components": {"schemas": _component_schemas()},
    }


@cache
def rendered_documents() -> tuple[Rendered, Rendered]:
    """(YAML, JSON) bytes of the document, each with its ETag."""
    document = build_document()
    as_yaml = yaml.safe_dump(document, sort_keys=False, allow_unicode=False, width=110).encode()
    as_json = json.dumps(document, indent=2).encode()
    return (
        Rendered(as_yaml, make_etag(__version__, "openapi.yaml")),
        Rendered(as_json, make_etag(__version__, "openapi.json")),
    )


class OpenApiRoutes:
    def register(self, app: web.Application) -> None:
        app.router.add_get(OPENAPI_YAML_PATH, self.as_yaml)
        app.router.add_get(OPENAPI_JSON_PATH, self.as_json)

    async def as_yaml(self, request: web.Request) -> web.StreamResponse:
        return await send(
            request,
            rendered_documents()[0],
            cache_control=DOCUMENT_CACHE_CONTROL,
            content_type=YAML_CONTENT_TYPE,
        )

    async def as_json(self, request: web.Request) -> web.StreamResponse:
        return await send(request, rendered_documents()[1], cache_control=DOCUMENT_CACHE_CONTROL)
