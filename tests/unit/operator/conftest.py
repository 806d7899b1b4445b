"""An in-process stand-in for what the API server does with an MCPRegistry at admission.

It applies the CRD's structural defaults, validates the OpenAPI schema (patterns evaluated with RE2,
the engine the API server uses) and evaluates every ``x-kubernetes-validations`` rule with cel-python.
It lets unit tests check that the CEL rules and the pydantic validators refuse the same things. It
is not a replacement for the real API server (the integration tests apply the CRD to one): cel-python
lacks the Kubernetes CEL libraries and the type checker, which is why the rules stick to standard CEL.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_PATH = REPO_ROOT / "crds" / "mcpregistries.mcpregistry.dev.yaml"

Schema = dict[str, Any]


def _re2_validator_class() -> Any:
    import re2  # type: ignore[import-untyped]  # google-re2, installed with cel-python (pinned)

    def pattern(validator: Any, pattern: str, instance: Any, schema: Schema) -> Iterator[Any]:
        # jsonschema's default uses Python's re, whose '$' also matches before a trailing newline;
        # the API server uses Go's RE2, where it does not.
        if isinstance(instance, str) and re2.search(pattern, instance) is None:
            yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")

    def is_integer(checker: Any, instance: Any) -> bool:
        # go-openapi (swag.IsFloat64AJSONInteger) takes a whole float for an integer only within
        # +-(2**53 - 1); jsonschema would take any whole float.
        if isinstance(instance, bool):
            return False
        if isinstance(instance, float):
            return instance.is_integer() and abs(instance) <= 2**53 - 1
        return isinstance(instance, int)

    type_checker = jsonschema.Draft7Validator.TYPE_CHECKER.redefine("integer", is_integer)
    return jsonschema.validators.extend(
        jsonschema.Draft7Validator, {"pattern": pattern}, type_checker=type_checker
    )


def iter_schemas(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every node of a structural schema with its path (``.spec.source``, ``.x[]``, ``.y{}``)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from iter_schemas(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from iter_schemas(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from iter_schemas(schema["additionalProperties"], f"{path}{{}}")


class Admission:
    """Defaulting, schema validation and CEL rules of one CRD version."""

    def __init__(self, crd: Schema) -> None:
        self.crd = crd
        self.schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        import celpy  # a pinned test dependency

        self._celpy = celpy
        self._validator = _re2_validator_class()(self.schema)
        self._env = self._celpy.Environment()
        self._programs: dict[str, Any] = {}

    def program(self, rule: str) -> Any:
        if rule not in self._programs:
            self._programs[rule] = self._env.program(self._env.compile(rule))
        return self._programs[rule]

    def nodes(self) -> Iterator[tuple[str, Schema]]:
        """(path, schema node) for every node of the CRD's schema."""
        return iter_schemas(self.schema)

    def rules(self) -> Iterator[tuple[str, Schema, Schema]]:
        """(path, schema node, rule) for every CEL rule in the CRD."""
        for path, node in iter_schemas(self.schema):
            for rule in node.get("x-kubernetes-validations", []):
                yield path, node, rule

    @staticmethod
    def apply_defaults(schema: Schema, value: Any) -> None:
        """Structural defaulting as the API server does it: top-down, into defaulted objects too."""
        if isinstance(value, dict) and "properties" in schema:
            for name, sub in schema["properties"].items():
                if name not in value and "default" in sub:
                    value[name] = copy.deepcopy(sub["default"])
                if name in value:
                    Admission.apply_defaults(sub, value[name])
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for item in value:
                Admission.apply_defaults(schema["items"], item)
        elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
            for item in value.values():
                Admission.apply_defaults(schema["additionalProperties"], item)

    def defaulted(self, obj: Schema) -> Schema:
        obj = copy.deepcopy(obj)
        self.apply_defaults(self.schema, obj)
        return obj

    def evaluate(self, rule: str, value: Any) -> bool | str:
        """True/False, or the text of an evaluation error (which the API server also refuses)."""
        celpy = self._celpy
        try:
            result = self.program(rule).evaluate({"self": celpy.json_to_cel(value)})
        except celpy.CELEvalError as exc:
            return f"evaluation error: {exc.args[0] if exc.args else exc}"
        if isinstance(result, celpy.celtypes.BoolType):
            return bool(result)
        return f"evaluation error: {result!r}"

    def cel_errors(self, schema: Schema, value: Any, path: str = "") -> list[str]:
        errors: list[str] = []
        for rule in schema.get("x-kubernetes-validations", []):
            outcome = self.evaluate(rule["rule"], value)
            if outcome is not True:
                detail = "" if outcome is False else f" ({outcome})"
                errors.append(f"{path or '<root>'}: {rule['message']}{detail}")
        if isinstance(value, dict) and "properties" in schema:
            for name, sub in schema["properties"].items():
                if name in value:
                    errors += self.cel_errors(sub, value[name], f"{path}.{name}")
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                errors += self.cel_errors(schema["items"], item, f"{path}[{i}]")
        elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
            for key, item in value.items():
                errors += self.cel_errors(schema["additionalProperties"], item, f"{path}.{key}")
        return errors

    def unknown_fields(self, schema: Schema, value: Any, path: str = "") -> list[str]:
        """Fields the schema does not know: kubectl's default strict field validation refuses them
        (with a lenient client the API server would silently prune them instead)."""
        errors: list[str] = []
        if isinstance(value, dict) and "properties" in schema:
            for name, item in value.items():
                if name not in schema["properties"]:
                    errors.append(f"{path}.{name}: unknown field")
                else:
                    errors += self.unknown_fields(schema["properties"][name], item, f"{path}.{name}")
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                errors += self.unknown_fields(schema["items"], item, f"{path}[{i}]")
        return errors

    def errors(self, obj: Schema, *, defaults: bool = True) -> list[str]:
        """Why the API server would refuse ``obj`` (empty: it would accept it)."""
        if defaults:
            obj = self.defaulted(obj)
        errors = [
            f".{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in self._validator.iter_errors(obj)
        ]
        return errors + self.unknown_fields(self.schema, obj) + self.cel_errors(self.schema, obj)


@pytest.fixture(scope="session")
def admission() -> Admission:
    return Admission(yaml.safe_load(CRD_PATH.read_text(encoding="utf-8")))
