"""Shared constants and helpers for the catalogue tests (imported by the test modules beside it)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
# The shared data lives beside the repository; MCPREG_SHARED_DATA points elsewhere when it does not.
SHARED_DATA = Path(os.environ.get("MCPREG_SHARED_DATA", REPO.parent / "shared" / "data"))

TOOLHIVE_FILES = sorted((SHARED_DATA / "toolhive").glob("*.json"))
UPSTREAM_FILES = sorted((SHARED_DATA / "upstream").glob("*.json"))
REAL_FILES = TOOLHIVE_FILES + UPSTREAM_FILES

Validate = Callable[[Any], list[str]]


def load_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SHARED_DATA / "schemas" / name).read_text())
    return schema


def load_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def minimal_toolhive(**servers: dict[str, Any]) -> dict[str, Any]:
    """A ToolHive registry document holding `servers` (container servers by name)."""
    return {"version": "1.0.0", "last_updated": "2026-01-01T00:00:00Z", "servers": dict(servers)}


def container(**overrides: Any) -> dict[str, Any]:
    """A valid ToolHive container server; keyword arguments replace or add fields."""
    server: dict[str, Any] = {
        "description": "Fetches web pages for the model",
        "tier": "Community",
        "status": "Active",
        "transport": "stdio",
        "tools": ["fetch"],
        "image": "ghcr.io/example/fetch:1.2.3",
    }
    server.update(overrides)
    return server


def remote(**overrides: Any) -> dict[str, Any]:
    """A valid ToolHive remote server; keyword arguments replace or add fields."""
    server: dict[str, Any] = {
        "description": "A hosted weather service",
        "tier": "Official",
        "status": "Active",
        "transport": "streamable-http",
        "tools": ["forecast"],
        "url": "https://weather.example.com/mcp",
    }
    server.update(overrides)
    return server


def server_json(
    name: str = "io.github.acme/weather", version: str = "1.0.0", **overrides: Any
) -> dict[str, Any]:
    """A valid upstream server.json with one OCI package and ToolHive's extension block."""
    image = overrides.pop("image", "ghcr.io/acme/weather:1.0.0")
    server: dict[str, Any] = {
        "name": name,
        "description": "Weather forecasts",
        "version": version,
        "packages": [{"registryType": "oci", "identifier": image, "transport": {"type": "stdio"}}],
        "_meta": {
            "io.modelcontextprotocol.registry/publisher-provided": {
                "io.github.stacklok": {
                    image: {
                        "status": "Active",
                        "tier": "Community",
                        "tools": ["forecast"],
                        "tags": ["weather"],
                    }
                }
            }
        },
    }
    server.update(overrides)
    return server


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()
