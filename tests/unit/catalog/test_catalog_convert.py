"""Conversion facts: where each ToolHive field goes in server.json, and what comes back."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_testdata import container, encode, minimal_toolhive, remote, server_json

from mcpreg.catalog import (
    MCPREG_NAMESPACE,
    PUBLISHER_PROVIDED_KEY,
    STACKLOK_NAMESPACE,
    NotExpressible,
    ToolHiveForm,
    parse_catalog,
    server_json_to_toolhive,
    toolhive_key,
    toolhive_to_server_json,
    version_from_image,
)


def _stacklok(server: dict[str, Any], key: str) -> dict[str, Any]:
    block: dict[str, Any] = server["_meta"][PUBLISHER_PROVIDED_KEY][STACKLOK_NAMESPACE][key]
    return block


def _back(server: dict[str, Any]) -> ToolHiveForm:
    key = toolhive_key(server["name"])
    assert key is not None
    form = server_json_to_toolhive(server, key)
    assert isinstance(form, ToolHiveForm), form
    return form


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("ghcr.io/acme/fetch:1.2.3", "1.2.3"),
        ("ghcr.io/acme/fetch:v0.22.0", "0.22.0"),
        ("ghcr.io/acme/fetch:1.0.0-rc.1", "1.0.0-rc.1"),
        ("docker.io/mcp/time:latest", "1.0.0"),
        ("mcr.microsoft.com/playwright/mcp", "1.0.0"),
        ("example.com:5000/team/app", "1.0.0"),
        ("example.com:5000/team/app:2.0", "1.0.0"),
        ("ghcr.io/acme/graphlit:1.0.20251122001", "1.0.20251122001"),
    ],
)
def test_version_from_image_tag(image: str, version: str) -> None:
    assert version_from_image(image) == version


def test_container_server_becomes_oci_package_with_extensions() -> None:
    data = container(
        transport="sse",
        target_port=9000,
        env_vars=[{"name": "TOKEN", "description": "API token", "required": True, "secret": True}],
        args=["--read-only"],
        tags=["web"],
        proxy_port=8111,
        docker_tags=["1.2.3", "latest"],
        custom_metadata={"owner": "platform"},
        repository_url="https://github.com/acme/fetch",
    )
    server = toolhive_to_server_json(ToolHiveForm("container", "fetch", data))
    assert server["name"] == "io.github.stacklok/fetch"
    assert server["title"] == "fetch"
    assert server["version"] == "1.2.3"
    assert server["repository"] == {"url": "https://github.com/acme/fetch", "source": "github"}
    assert server["packages"] == [
        {
            "registryType": "oci",
            "identifier": "ghcr.io/example/fetch:1.2.3",
            "transport": {"type": "sse", "url": "http://localhost:9000"},
            "environmentVariables": [
                {"name": "TOKEN", "description": "API token", "isRequired": True, "isSecret": True}
            ],
        }
    ]
    assert "remotes" not in server
    assert _stacklok(server, data["image"]) == {
        "status": "Active",
        "tier": "Community",
        "tools": ["fetch"],
        "tags": ["web"],
        "args": ["--read-only"],
        "docker_tags": ["1.2.3", "latest"],
        "proxy_port": 8111,
        "custom_metadata": {"owner": "platform"},
    }
    assert MCPREG_NAMESPACE not in server["_meta"][PUBLISHER_PROVIDED_KEY]
    assert _back(server).data == data


def test_remote_server_becomes_remote_with_extensions_keyed_by_url() -> None:
    data = remote(
        headers=[
            {
                "name": "X-API-Key",
                "description": "Your key",
                "required": True,
                "secret": True,
                "choices": ["a"],
            }
        ],
        oauth_config={"issuer": "https://auth.example.com", "scopes": ["read"], "use_pkce": True},
        env_vars=[{"name": "REGION", "description": "Region to use", "required": False, "default": "eu"}],
        metadata={"stars": 5, "last_updated": "2026-01-02T03:04:05Z"},
    )
    server = toolhive_to_server_json(ToolHiveForm("remote", "weather", data), namespace="com.acme")
    assert server["name"] == "com.acme/weather"
    assert server["version"] == "1.0.0"
    assert server["remotes"] == [
        {
            "type": "streamable-http",
            "url": "https://weather.example.com/mcp",
            "headers": [
                {
                    "name": "X-API-Key",
                    "description": "Your key",
                    "isRequired": True,
                    "isSecret": True,
                    "choices": ["a"],
                }
            ],
        }
    ]
    block = _stacklok(server, data["url"])
    assert block["oauth_config"] == data["oauth_config"]
    assert block["env_vars"] == data["env_vars"]
    assert block["metadata"] == data["metadata"]
    back = _back(server)
    assert (back.kind, back.key, back.data) == ("remote", "weather", data)


def test_facts_without_a_server_json_field_travel_in_our_namespace() -> None:
    data = container(description="A" * 150, name="fetch", target_port=8080)  # stdio: no URL for the port
    server = toolhive_to_server_json(ToolHiveForm("container", "fetch", data))
    assert len(server["description"]) == 100
    assert server["description"].endswith("…")
    assert server["_meta"][PUBLISHER_PROVIDED_KEY][MCPREG_NAMESPACE] == {
        "description": "A" * 150,
        "name": "fetch",
        "target_port": 8080,
    }
    assert _back(server).data == data


def test_http_container_without_port_uses_plain_localhost() -> None:
    data = container(transport="streamable-http")
    server = toolhive_to_server_json(ToolHiveForm("container", "fetch", data))
    assert server["packages"][0]["transport"] == {"type": "streamable-http", "url": "http://localhost"}
    assert "target_port" not in _back(server).data


def test_explicit_empty_and_false_values_survive() -> None:
    data = container(
        env_vars=[{"name": "A", "description": "first one", "required": False, "secret": False}],
        args=[],
        custom_metadata={},
        permissions={"network": {"outbound": {}}, "read": [], "privileged": False},
    )
    server = toolhive_to_server_json(ToolHiveForm("container", "fetch", data))
    assert _back(server).data == data


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("io.github.stacklok/fetch", "fetch"),
        ("com.example/Weather_API", "weather-api"),
        ("com.example/a.b.c", "a-b-c"),
        ("com.example/--x--y--", "x-y"),
        ("com.example/ab", None),
        ("com.example/__", None),
    ],
)
def test_toolhive_key_from_upstream_name(name: str, key: str | None) -> None:
    assert toolhive_key(name) == key


def test_upstream_without_extensions_gets_safe_defaults_or_is_left_out() -> None:
    bare = server_json()
    del bare["_meta"]
    # No tools: ToolHive's format requires at least one, so the entry cannot be expressed.
    result = server_json_to_toolhive(bare, "weather")
    assert isinstance(result, NotExpressible)
    assert "servers.weather" not in result.reason
    assert "tools: is required" in result.reason


@pytest.mark.parametrize(
    ("packages", "remotes", "reason"),
    [
        ([], None, "has neither an OCI package nor a remote, which ToolHive needs"),
        (
            [{"registryType": "npm", "identifier": "@acme/w", "transport": {"type": "stdio"}}],
            None,
            "has no OCI package (found npm); ToolHive runs container images",
        ),
        (
            [
                {"registryType": "oci", "identifier": "a/b:1", "transport": {"type": "stdio"}},
                {"registryType": "oci", "identifier": "a/c:1", "transport": {"type": "stdio"}},
            ],
            None,
            "has 2 OCI packages; ToolHive needs exactly one",
        ),
    ],
)
def test_what_toolhive_cannot_express(packages: list[Any], remotes: Any, reason: str) -> None:
    server = server_json(packages=packages)
    result = server_json_to_toolhive(server, "weather")
    assert isinstance(result, NotExpressible)
    assert result.reason == reason


def test_inexpressible_entries_stay_in_the_upstream_view() -> None:
    npm_only = server_json(
        name="io.github.acme/npm-only",
        packages=[
            {
                "registryType": "npm",
                "identifier": "@acme/w",
                "version": "1.0.0",
                "transport": {"type": "stdio"},
            }
        ],
    )
    catalog = parse_catalog(encode([server_json(), npm_only]))
    assert [e["server"]["name"] for e in catalog.upstream_view()] == [
        "io.github.acme/weather",
        "io.github.acme/npm-only",
    ]
    assert list(catalog.toolhive_view()["servers"]) == ["weather"]
    assert [(s.name, s.reason) for s in catalog.toolhive_skipped] == [
        ("io.github.acme/npm-only", "has no OCI package (found npm); ToolHive runs container images")
    ]


def test_remotes_win_over_packages_like_toolhive_client() -> None:
    server = server_json(remotes=[{"type": "sse", "url": "https://w.example.com/sse"}])
    form = server_json_to_toolhive(server, "weather")
    assert isinstance(form, ToolHiveForm)
    assert form.kind == "remote"
    assert form.data["url"] == "https://w.example.com/sse"
    # The extension block is keyed by the image here; being the only block, it is still found.
    assert form.data["tools"] == ["forecast"]


def test_package_arguments_flatten_like_toolhive_client() -> None:
    server = server_json()
    server["packages"][0]["packageArguments"] = [
        {"type": "named", "name": "--port", "value": "8080"},
        {"type": "positional", "value": "serve"},
        {"type": "positional", "valueHint": "path"},
    ]
    form = server_json_to_toolhive(server, "weather")
    assert isinstance(form, ToolHiveForm)
    assert form.data["args"] == ["--port", "8080", "serve"]


def test_upstream_env_vars_get_toolhive_descriptions_when_missing() -> None:
    server = server_json()
    server["packages"][0]["environmentVariables"] = [{"name": "TOKEN", "isSecret": True}]
    form = server_json_to_toolhive(server, "weather")
    assert isinstance(form, ToolHiveForm)
    assert form.data["env_vars"] == [
        {"name": "TOKEN", "description": "Environment variable TOKEN", "required": False, "secret": True}
    ]


def test_lowercase_status_and_float_counts_from_publishers() -> None:
    server = server_json()
    block = _stacklok(server, "ghcr.io/acme/weather:1.0.0")
    block.update(
        status="deprecated", metadata={"stars": 12.0, "pulls": 3, "kubernetes": {"kind": "MCPServer"}}
    )
    block["permissions"] = {"name": "network", "network": {"outbound": {"insecure_allow_all": True}}}
    catalog = parse_catalog(encode([server]))
    entry = catalog.entries[0]
    assert entry.status == "deprecated"
    data = catalog.toolhive_view()["servers"]["weather"]
    assert data["status"] == "Deprecated"
    assert data["metadata"] == {"stars": 12, "pulls": 3}
    assert data["permissions"] == {"network": {"outbound": {"insecure_allow_all": True}}}


def test_namespace_is_configurable_at_parse_time() -> None:
    catalog = parse_catalog(encode(minimal_toolhive(fetch=container())), namespace="com.acme.mcp")
    assert catalog.names() == ["com.acme.mcp/fetch"]
    assert catalog.get("com.acme.mcp/fetch") is not None


def test_registry_facts_for_the_official_meta() -> None:
    document = minimal_toolhive(
        fetch=container(metadata={"last_updated": "2025-12-01T00:00:00Z"}),
        old=container(status="Deprecated"),
    )
    catalog = parse_catalog(encode(document))
    fetch = catalog.get("io.github.stacklok/fetch")
    old = catalog.get("io.github.stacklok/old")
    assert fetch is not None and old is not None
    assert fetch.official_meta() == {
        "status": "active",
        "isLatest": True,
        "publishedAt": "2025-12-01T00:00:00Z",
        "updatedAt": "2025-12-01T00:00:00Z",
    }
    # Without its own timestamp an entry takes the catalogue's.
    assert old.official_meta()["status"] == "deprecated"
    assert old.published_at == "2026-01-01T00:00:00Z"
    assert catalog.upstream_view()[0] == {
        "server": fetch.server,
        "_meta": {"io.modelcontextprotocol.registry/official": fetch.official_meta()},
    }


def test_response_entry_meta_is_read_and_other_keys_kept() -> None:
    official = {
        "status": "deprecated",
        "publishedAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-02-01T00:00:00Z",
    }
    document = {
        "servers": [
            {
                "server": server_json(),
                "_meta": {
                    "io.modelcontextprotocol.registry/official": {**official, "isLatest": False},
                    "com.x/y": 1,
                },
            }
        ]
    }
    entry = parse_catalog(encode(document)).entries[0]
    assert (entry.status, entry.published_at, entry.updated_at, entry.is_latest) == (
        "deprecated",
        "2025-01-01T00:00:00Z",
        "2025-02-01T00:00:00Z",
        True,  # recomputed: it is the only version
    )
    assert entry.to_response_entry()["_meta"]["com.x/y"] == 1


def test_deleted_entries_stay_upstream_but_not_in_toolhive() -> None:
    document = {
        "servers": [
            {
                "server": server_json(),
                "_meta": {"io.modelcontextprotocol.registry/official": {"status": "deleted"}},
            }
        ]
    }
    catalog = parse_catalog(encode(document))
    assert catalog.entries[0].status == "deleted"
    assert catalog.toolhive_view()["servers"] == {}
    assert catalog.toolhive_skipped[0].reason == "is deleted"


def test_toolhive_name_collisions_keep_the_first() -> None:
    document = [server_json(name="io.github.acme/weather"), server_json(name="com.other/weather")]
    catalog = parse_catalog(encode(document))
    assert list(catalog.toolhive_view()["servers"]) == ["weather"]
    assert catalog.toolhive_skipped[0].name == "com.other/weather"
    assert "already taken" in catalog.toolhive_skipped[0].reason


def test_docker_style_env_arguments_become_env_vars_like_toolhive_client() -> None:
    server = server_json()
    server["packages"][0]["environmentVariables"] = [{"name": "A", "description": "First variable"}]
    server["packages"][0]["runtimeArguments"] = [
        {"type": "named", "name": "-e", "value": "LOG_LEVEL=info", "description": "How much to log"},
        {
            "type": "named",
            "name": "--env",
            "value": "TOKEN={token}",
            "isRequired": True,
            "variables": {"token": {"isSecret": True, "default": "none"}},
        },
        {"type": "named", "name": "-v", "value": "/data:/data"},
        {"type": "named", "name": "-e", "value": "not an assignment"},
    ]
    form = server_json_to_toolhive(server, "weather")
    assert isinstance(form, ToolHiveForm)
    assert form.data["env_vars"] == [
        {"name": "A", "description": "First variable", "required": False},
        {"name": "LOG_LEVEL", "description": "How much to log", "required": False, "default": "info"},
        {
            "name": "TOKEN",
            "description": "Environment variable TOKEN",
            "required": True,
            "secret": True,
            "default": "none",
        },
    ]


def test_a_deprecation_message_is_read_and_served_again() -> None:
    official = {"status": "deprecated", "statusMessage": "use io.github.acme/fetch2 instead"}
    document = {
        "servers": [
            {"server": server_json(), "_meta": {"io.modelcontextprotocol.registry/official": official}}
        ]
    }
    entry = parse_catalog(encode(document)).entries[0]
    assert entry.status_message == "use io.github.acme/fetch2 instead"
    assert entry.official_meta()["statusMessage"] == "use io.github.acme/fetch2 instead"
    plain = parse_catalog(encode({"servers": [{"server": server_json()}]})).entries[0]
    assert "statusMessage" not in plain.official_meta()
