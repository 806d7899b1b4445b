"""References into other namespaces: found wherever they sit in the spec, by field path."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mcpreg_operator.references import foreign_references
from mcpreg_operator.spec.registry import MCPRegistrySpec

GIT = {"repository": "https://git.example/cat.git", "auth": {"secretRef": {"name": "git-creds"}}}
S3 = {"type": "s3", "s3": {"bucket": "cats", "credentialsSecretRef": {"name": "s3-creds"}}}


def spec(source: dict[str, Any], storage: dict[str, Any] | None = None) -> MCPRegistrySpec:
    return MCPRegistrySpec.model_validate({"source": source, "storage": storage or {"type": "configmap"}})


def with_namespace(reference: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {**reference, "namespace": namespace}


def test_own_namespace_or_none_is_fine() -> None:
    assert foreign_references(spec({"type": "configmap", "configMap": {"name": "src"}}), "team") == []
    own = {"type": "configmap", "configMap": {"name": "src", "namespace": "team"}}
    assert foreign_references(spec(own), "team") == []


@pytest.mark.parametrize(
    ("source", "storage", "path"),
    [
        (
            {"type": "configmap", "configMap": {"name": "src", "namespace": "kube-system"}},
            None,
            "spec.source.configMap.namespace",
        ),
        (
            {"type": "git", "git": {**GIT, "auth": {"secretRef": {"name": "x", "namespace": "kube-system"}}}},
            None,
            "spec.source.git.auth.secretRef.namespace",
        ),
        (
            {"type": "git", "git": GIT},
            {
                "type": "s3",
                "s3": {"bucket": "cats", "credentialsSecretRef": {"name": "c", "namespace": "kube-system"}},
            },
            "spec.storage.s3.credentialsSecretRef.namespace",
        ),
    ],
)
def test_another_namespace_is_named_by_its_field(
    source: dict[str, Any], storage: dict[str, Any] | None, path: str
) -> None:
    [problem] = foreign_references(spec(source, storage), "team")
    assert problem.startswith(f"{path} is 'kube-system': references into other namespaces are refused")
    assert "'team'" in problem


def test_a_namespace_must_be_a_namespace_name() -> None:
    with pytest.raises(ValidationError):
        spec({"type": "configmap", "configMap": {"name": "src", "namespace": "../other"}})
