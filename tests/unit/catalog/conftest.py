"""Fixtures for the catalogue model's tests: the shared real data and its JSON Schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from catalog_testdata import SHARED_DATA, Validate, load_schema
from referencing import Registry, Resource


def _validator(schema: dict[str, Any], registry: Registry | None = None) -> Validate:
    cls = jsonschema.validators.validator_for(schema)
    kwargs: dict[str, Any] = {"format_checker": cls.FORMAT_CHECKER}
    if registry is not None:
        kwargs["registry"] = registry
    validator = cls(schema, **kwargs)

    def problems(instance: Any) -> list[str]:
        return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(instance)]

    return problems


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "schemas").is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set MCPREG_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def server_schema_problems(shared_data: Path) -> Validate:
    """Problems of a server.json against the real server.schema.json (2025-12-11)."""
    return _validator(load_schema("server.schema.json"))


@pytest.fixture(scope="session")
def toolhive_schema_problems(shared_data: Path) -> Validate:
    """Problems of a ToolHive registry document against toolhive-legacy-registry.schema.json."""
    return _validator(load_schema("toolhive-legacy-registry.schema.json"))


@pytest.fixture(scope="session")
def publisher_schema_problems(shared_data: Path) -> Validate:
    """Problems of `_meta[publisher-provided]` against publisher-provided.schema.json."""
    return _validator(load_schema("publisher-provided.schema.json"))


@pytest.fixture(scope="session")
def upstream_registry_schema_problems(shared_data: Path) -> Validate:
    """Problems of a wrapped upstream registry file against upstream-registry.schema.json."""
    server = load_schema("server.schema.json")
    registry: Registry = Registry().with_resources(
        [
            (server["$id"], Resource.from_contents(server)),
            # The skills schema is not among the shared files; skills are not produced anyway.
            (
                "https://raw.githubusercontent.com/stacklok/toolhive/main/pkg/registry/data/skill.schema.json",
                Resource.from_contents({"$schema": "http://json-schema.org/draft-07/schema#"}),
            ),
        ]
    )
    return _validator(load_schema("upstream-registry.schema.json"), registry)
