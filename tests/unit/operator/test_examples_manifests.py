"""Every manifest in examples/ is something the operator reads, with what it references alongside
(that the API server admits them is tested against a real one: tests/integration/test_crd_validation.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpreg_operator.spec.registry import MCPRegistry, MCPRegistrySpec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
EXPECTED = {
    "registry-git.yaml",
    "registry-git-credentials.yaml",
    "registry-configmap.yaml",
    "registry-filters.yaml",
    "registry-s3.yaml",
    "registry-url.yaml",
    "registry-api.yaml",
    "registry-multi.yaml",
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _registries(path: Path) -> list[dict[str, Any]]:
    return [d for d in _documents(path) if d.get("kind") == "MCPRegistry"]


def test_expected_examples_exist() -> None:
    assert {p.name for p in EXAMPLES.glob("registry-*.yaml")} >= EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_parses_with_the_model(name: str) -> None:
    [registry] = _registries(EXAMPLES / name)
    parsed = MCPRegistry.model_validate(registry)
    assert parsed.metadata.namespace == "default"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_referenced_objects_ship_with_the_example(name: str) -> None:
    """A Secret or ConfigMap the registry names is in the same file and namespace, with the keys the
    operator reads from it."""
    documents = _documents(EXAMPLES / name)
    [registry] = [d for d in documents if d["kind"] == "MCPRegistry"]
    spec = MCPRegistrySpec.model_validate(registry["spec"])
    others = {(d["kind"], d["metadata"]["name"]): d for d in documents if d["kind"] != "MCPRegistry"}
    for other in others.values():
        assert other["metadata"]["namespace"] == registry["metadata"]["namespace"]

    s3 = spec.storage.s3
    if s3 is not None and s3.credentials_secret_ref is not None:
        secret = others[("Secret", s3.credentials_secret_ref.name)]
        assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for source in spec.named_sources():
        git = source.git
        if git is not None and git.auth is not None:
            secret = others[("Secret", git.auth.secret_ref.name)]
            keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
            assert keys in ({"username", "password"}, {"token"})
        url = source.url
        if url is not None:
            if url.auth is not None:
                secret = others[("Secret", url.auth.secret_ref.name)]
                assert set(secret["stringData"]) in ({"token"}, {"username", "password"}, {"headers"})
            if url.ca_bundle is not None and url.ca_bundle.config_map_ref is not None:
                ca = others[("ConfigMap", url.ca_bundle.config_map_ref.name)]["data"][
                    url.ca_bundle.config_map_ref.key
                ]
                assert "-----BEGIN CERTIFICATE-----" in ca
            if url.verify is not None:
                assert any(
                    key.endswith(".pub")
                    for key in others[("Secret", url.verify.secret_ref.name)]["stringData"]
                )
        source_cm = source.config_map
        if source_cm is not None:
            data = others[("ConfigMap", source_cm.name)]["data"][source_cm.key]
            catalogue = json.loads(data)
            assert {"version", "last_updated", "servers"} <= set(catalogue)
            assert catalogue["servers"]
