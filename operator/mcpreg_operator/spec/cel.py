"""A small helper language for CEL rules (``x-kubernetes-validations``) attached to the models.

Rules are written next to the fields they check, as ``json_schema_extra=cel(CelRule(...))``; the CRD
generator (``mcpreg_dev.crd``) copies them into the schema, and the API server evaluates them at
admission. Nothing in the operator evaluates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict


@dataclass(frozen=True)
class CelRule:
    """One ``x-kubernetes-validations`` entry.

    ``reason`` is one of the API server's ``FieldValue*`` reasons; ``field_path`` (relative to the
    schema node carrying the rule) makes ``kubectl`` point at the offending field rather than its
    parent.
    """

    rule: str
    message: str
    reason: str | None = None
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.field_path is not None:
            out["fieldPath"] = self.field_path
        return out


def cel_string(value: str) -> str:
    """Quote ``value`` as a CEL single-quoted string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cel_matches(expr: str, regex: str) -> str:
    """A CEL ``matches`` call that succeeds only when the whole of ``expr`` matches ``regex``.

    RE2's ``$`` only matches at the very end of the text, so ``^...$`` anchors like ``re.fullmatch``.
    """
    return f"{expr}.matches({cel_string('^' + regex + '$')})"


def cel(*rules: CelRule) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules; the CRD generator copies them into the schema."""
    return {"x-kubernetes-validations": [r.to_schema() for r in rules]}


def required_when(field: str, *, key: str, value: str, message: str) -> CelRule:
    """A rule that ``field`` is set whenever ``key`` is ``value`` (a mode that needs its settings).

    ``!has(self.<key>)`` first: the API server also checks the rule against the bare default (``{}``),
    before nested defaults fill ``key`` in.
    """
    return CelRule(
        rule=f"!has(self.{key}) || self.{key} != {cel_string(value)} || has(self.{field})",
        message=message,
        reason="FieldValueRequired",
        field_path=f".{field}",
    )


def exactly_one_of(first: str, second: str, *, message: str) -> CelRule:
    """A rule that exactly one of two optional fields is set (two forms of the same setting)."""
    return CelRule(
        rule=f"has(self.{first}) != has(self.{second})", message=message, reason="FieldValueInvalid"
    )


def cel_rules(*rules: CelRule) -> ConfigDict:
    """A model's ``model_config`` carrying CEL rules on the object itself (its fields' rules go in
    ``Field(json_schema_extra=cel(...))``)."""
    return ConfigDict(json_schema_extra=cel(*rules))
