"""The OpenAPI document describes exactly what is served, and what is served matches it."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml
from api_testdata import Served
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mcpreg_api.openapi import build_document
from mcpreg_api.page.routes import PAGE_ROUTES

SAMPLES = {"serverName": "io.github.acme%2Fweather", "version": "latest"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], path)


def validator_for(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    resource: Resource[Any] = DRAFT202012.create_resource(document)
    registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)
    # Component references are "#/components/...": resolve them against the whole document.
    rooted = json.loads(json.dumps(schema).replace('"#/components/', '"urn:openapi#/components/'))
    cls = jsonschema.Draft202012Validator
    return cls(rooted, registry=registry, format_checker=cls.FORMAT_CHECKER)


async def test_served_documents_are_one_document(edge: Served) -> None:
    as_yaml = yaml.safe_load(await (await edge.client.get("/openapi.yaml")).read())
    response = await edge.client.get("/openapi.json")
    assert response.headers["Content-Type"].startswith("application/json")
    as_json = json.loads(await response.read())
    assert as_yaml == as_json == json.loads(json.dumps(build_document()))
    assert as_json["openapi"] == "3.1.0"
    assert as_json["info"]["version"] == "1.0.0"
    assert "https://github.com/modelcontextprotocol/registry" in as_json["info"]["description"]


def test_document_is_valid_openapi_31() -> None:
    document = build_document()
    jsonschema.Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for path, item in document["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


async def test_every_route_is_documented(edge: Served) -> None:
    documented = set(build_document()["paths"])
    served = {resource.canonical for resource in edge.app.router.resources()} - PAGE_ROUTES
    detail = {"/v0.1/servers/{tail}", "/v0/servers/{tail}"}  # one route answers the three detail paths
    assert served - detail <= documented
    for prefix in ("/v0.1", "/v0"):
        assert {
            f"{prefix}/servers/{{serverName}}",
            f"{prefix}/servers/{{serverName}}/versions",
            f"{prefix}/servers/{{serverName}}/versions/{{version}}",
        } <= documented
    assert documented - {p.replace("{serverName}", "{tail}") for p in documented} <= documented


async def test_every_documented_operation_answers_as_documented(edge: Served) -> None:
    document = build_document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            response = await edge.client.request(method.upper(), concrete(path))
            body = await response.read()
            status = str(response.status)
            assert status in operation["responses"], (method, path, status, body[:200])
            declared = operation["responses"][status].get("content")
            if method == "head" or not declared:
                assert body == b""
                continue
            content_type = response.headers["Content-Type"].split(";")[0]
            assert content_type in declared, (path, content_type)
            schema = declared[content_type]["schema"]
            if content_type.endswith("json"):
                validator_for(document, schema).validate(json.loads(body))


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/v0.1/servers?limit=0", 400),
        ("/v0.1/servers?cursor=x", 400),
        ("/v0.1/servers/io.github.acme%2Fnope", 404),
        ("/v0.1/servers/io.github.acme%2Fweather/versions/nope", 404),
        ("/v0/servers?updated_since=x", 400),
    ],
)
async def test_error_bodies_match_the_problem_schema(edge: Served, url: str, status: int) -> None:
    document = build_document()
    response = await edge.client.get(url)
    assert response.status == status
    schema = {"$ref": "#/components/schemas/Problem"}
    validator_for(document, schema).validate(json.loads(await response.read()))


async def test_list_parameters_come_from_the_query_model() -> None:
    parameters = {p["name"]: p for p in build_document()["paths"]["/v0.1/servers"]["get"]["parameters"]}
    assert set(parameters) == {"cursor", "limit", "search", "version", "updated_since", "include_deleted"}
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 30}
    assert parameters["updated_since"]["schema"] == {"type": "string", "format": "date-time"}
    assert parameters["include_deleted"]["schema"] == {"type": "boolean"}
