"""The committed CRD is exactly what the pydantic models generate, and it is a good structural CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, Field

from mcpreg_dev import crd
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import CONDITION_REASON_PATTERN

REPO_ROOT = Path(__file__).resolve().parents[3]
COMMITTED = REPO_ROOT / "crds" / "mcpregistries.mcpregistry.dev.yaml"

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def committed() -> Schema:
    loaded: Schema = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def root(committed: Schema) -> Schema:
    schema: Schema = committed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crd_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == crd.render_crd(), (
        "crds/ is stale: run `python -m mcpreg_dev.crd` and commit the result"
    )


def test_cli_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "crds" / "crd.yaml"
    assert crd.main(["--check", "--output", str(target)]) == 1  # missing
    assert crd.main(["--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == crd.render_crd()
    assert crd.main(["--check", "--output", str(target)]) == 0
    target.write_text(target.read_text(encoding="utf-8").replace("maxLength: 40", "maxLength: 41"))
    assert crd.main(["--check", "--output", str(target)]) == 1
    assert "stale" in capsys.readouterr().err
    assert crd.main(["--stdout"]) == 0
    assert capsys.readouterr().out == crd.render_crd()


def test_default_output_is_the_committed_file() -> None:
    assert crd.DEFAULT_OUTPUT == COMMITTED


def test_names_scope_and_version(committed: Schema) -> None:
    assert committed["apiVersion"] == "apiextensions.k8s.io/v1"
    assert committed["kind"] == "CustomResourceDefinition"
    assert committed["metadata"]["name"] == "mcpregistries.mcpregistry.dev"
    spec = committed["spec"]
    assert spec["group"] == "mcpregistry.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "MCPRegistry",
        "listKind": "MCPRegistryList",
        "plural": "mcpregistries",
        "singular": "mcpregistry",
        "shortNames": ["mcpreg"],
        "categories": ["mcp"],
    }
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_printer_columns(committed: Schema, root: Schema) -> None:
    columns = committed["spec"]["versions"][0]["additionalPrinterColumns"]
    default_columns = [(c["name"], c["type"], c["jsonPath"]) for c in columns if not c.get("priority")]
    assert default_columns == [
        ("Phase", "string", ".status.phase"),
        ("Servers", "integer", ".status.syncStatus.serverCount"),
        ("Skipped", "integer", ".status.syncStatus.skippedCount"),
        ("Last Sync", "date", ".status.syncStatus.lastSyncTime"),
        ("Endpoint", "string", ".status.apiStatus.endpoint"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]
    # Every column (but Age) points at a field that exists in the schema with a matching type.
    for column in columns:
        if column["jsonPath"].startswith(".metadata"):
            continue
        node = root
        for part in column["jsonPath"].lstrip(".").split("."):
            node = node["properties"][part]
        expected = {"date": ("string", "date-time"), "integer": ("integer", None), "string": ("string", None)}
        assert (node["type"], node.get("format")) == expected[column["type"]], column


def test_schema_is_structural(root: Schema) -> None:
    assert crd.structural_problems(root) == []
    text = COMMITTED.read_text(encoding="utf-8")
    for forbidden in ("$ref", "$defs", "allOf", "oneOf", "title:", "nullable", "additionalProperties: false"):
        assert forbidden not in text


def test_every_node_has_type_and_description(root: Schema) -> None:
    assert root["properties"]["metadata"] == {"type": "object"}  # the API server allows nothing else
    for path, node in crd.schema_nodes(root):
        if path == ".metadata":
            continue
        assert node.get("description"), f"{path or '<root>'} has no description (kubectl explain)"
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert node.get("type") in {"object", "array", "string", "integer", "boolean"}, path
        if node.get("type") == "object" and path not in ("", ".metadata"):
            # Either a closed object (properties) or a map (additionalProperties): never free-form.
            assert "properties" in node or "additionalProperties" in node, path


def test_spec_strings_and_lists_are_bounded(root: Schema) -> None:
    # CEL cost estimation multiplies by the worst-case size of what a rule can reach; unbounded
    # strings and lists in spec would make the API server refuse the CRD or need a high budget.
    for path, node in crd.schema_nodes(root["properties"]["spec"], ".spec"):
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, path
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path


def test_enums_and_defaults(root: Schema) -> None:
    spec = root["properties"]["spec"]["properties"]
    source = spec["source"]["properties"]
    assert source["type"]["enum"] == ["git", "configmap", "url", "api"]
    assert source["format"] == {
        **source["format"],
        "enum": ["auto", "toolhive", "upstream"],
        "default": "auto",
    }
    storage = spec["storage"]
    assert storage["default"] == {}
    assert storage["properties"]["type"]["enum"] == ["configmap", "s3"]
    assert storage["properties"]["type"]["default"] == "configmap"
    s3 = storage["properties"]["s3"]["properties"]
    assert s3["serverSideEncryption"]["enum"] == ["", "AES256", "aws:kms"]
    assert s3["forcePathStyle"]["default"] is False
    api = spec["api"]
    assert api["default"] == {}
    assert api["properties"]["enabled"]["default"] is True
    assert api["properties"]["replicas"]["default"] == 1
    assert api["properties"]["replicas"]["minimum"] == 0
    status = root["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == ["Pending", "Syncing", "Ready", "Failed", "Terminating"]
    assert status["syncStatus"]["properties"]["phase"]["enum"] == ["Syncing", "Complete", "Failed"]
    assert status["apiStatus"]["properties"]["phase"]["enum"] == [
        "NotStarted",
        "Deploying",
        "Ready",
        "Unhealthy",
    ]


def test_status_has_no_defaults(root: Schema) -> None:
    # The API server would fill status defaults on every write and mask what the operator set.
    for path, node in crd.schema_nodes(root["properties"]["status"], ".status"):
        assert "default" not in node, path


def test_conditions_are_metav1_conditions(root: Schema) -> None:
    conditions = root["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert item["required"] == ["type", "status", "lastTransitionTime", "reason", "message"]
    props = item["properties"]
    assert props["status"]["enum"] == ["True", "False", "Unknown"]
    assert props["lastTransitionTime"]["format"] == "date-time"
    assert props["reason"]["pattern"] == CONDITION_REASON_PATTERN
    assert props["observedGeneration"]["format"] == "int64"


def test_every_cel_field_path_resolves(root: Schema) -> None:
    # The API server refuses a CRD whose fieldPath names a field the schema does not have.
    for path, node in crd.schema_nodes(root):
        for rule in node.get("x-kubernetes-validations", []):
            if "fieldPath" in rule:
                target = node
                for part in rule["fieldPath"].lstrip(".").split("."):
                    assert part in target.get("properties", {}), (path, rule)
                    target = target["properties"][part]
            assert rule.get("reason") in {
                None,
                "FieldValueInvalid",
                "FieldValueForbidden",
                "FieldValueRequired",
            }


def test_expected_cel_rules_are_present(root: Schema) -> None:
    messages = [
        rule["message"]
        for _, node in crd.schema_nodes(root)
        for rule in node.get("x-kubernetes-validations", [])
    ]
    for fragment in (
        "source.git is required when source.type is git",
        "source.configMap must not be set when source.type is git",
        "source.configMap is required when source.type is configmap",
        "source.git must not be set when source.type is configmap",
        "at most one of branch, tag and commit may be set",
        "commit must be a hexadecimal commit SHA",
        "interval must be a Go duration",
        "interval must be at least 30s",
        "path must not contain '..' segments",
        "path must be relative to the repository root",
        "repository must be an https://, http:// or git:// URL",
        "repository must not contain credentials",
        "storage.s3 is required when storage.type is s3",
        "kmsKeyId may only be set when serverSideEncryption is aws:kms",
        "metadata.name must be a DNS-1035 label",
    ):
        assert any(fragment in m for m in messages), fragment


def test_schema_defaults_match_pydantic_defaults(root: Schema) -> None:
    """What the API server fills in is what the operator assumes when a field is absent."""
    import copy

    def apply_defaults(schema: Schema, value: Any) -> None:
        if isinstance(value, dict):
            for name, sub in schema.get("properties", {}).items():
                if name not in value and "default" in sub:
                    value[name] = copy.deepcopy(sub["default"])
                if name in value:
                    apply_defaults(sub, value[name])

    minimal: Schema = {
        "source": {"type": "git", "git": {"repository": "https://example.com/r.git"}},
        "storage": {"type": "s3", "s3": {"bucket": "bucket"}},
    }
    defaulted = copy.deepcopy(minimal)
    apply_defaults(root["properties"]["spec"], defaulted)
    from_pydantic = MCPRegistrySpec.model_validate(minimal).model_dump(mode="json", exclude_none=True)
    # pydantic fills empty lists/maps the schema leaves absent; compare what the schema does fill.
    from_pydantic["api"]["resources"] = {}
    assert defaulted == from_pydantic


# --- the converter itself ------------------------------------------------------------------------


class _Inner(BaseModel):
    """Inner doc."""

    x: int = Field(default=1, description="x")


class _Outer(BaseModel):
    inner: _Inner | None = Field(default=None, description="field doc wins")
    listed: list[_Inner] = Field(default_factory=list, description="l", max_length=3)


def test_converter_inlines_refs_and_collapses_optional() -> None:
    schema = crd.model_schema(_Outer)
    assert schema["properties"]["inner"] == {
        "description": "field doc wins",
        "type": "object",
        "properties": {"x": {"description": "x", "type": "integer", "default": 1}},
    }
    assert schema["properties"]["listed"]["items"]["description"] == "Inner doc."
    assert "title" not in str(schema)


def test_converter_refuses_what_it_cannot_express() -> None:
    class Union(BaseModel):
        value: int | str = Field(description="no int-or-string marker")

    with pytest.raises(crd.SchemaConversionError, match="anyOf"):
        crd.model_schema(Union)

    class Tuple(BaseModel):
        pair: tuple[int, int] = Field(description="prefixItems")

    with pytest.raises(crd.SchemaConversionError, match="prefixItems"):
        crd.model_schema(Tuple)


def test_converter_keeps_rules_from_type_and_field() -> None:
    schema = crd.to_structural(
        {
            "$defs": {"T": {"type": "string", "x-kubernetes-validations": [{"rule": "a", "message": "a"}]}},
            "$ref": "#/$defs/T",
            "description": "d",
            "maxLength": 3,
            "x-kubernetes-validations": [{"rule": "b", "message": "b"}],
        }
    )
    assert [r["rule"] for r in schema["x-kubernetes-validations"]] == ["a", "b"]
    assert schema["maxLength"] == 3
