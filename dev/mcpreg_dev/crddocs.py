"""Files derived from the MCPRegistry CRD: the configuration reference and the Helm chart's CRD copy.

    python -m mcpreg_dev.crddocs            # rewrite docs/configuration.md and the chart's crds/ copy
    python -m mcpreg_dev.crddocs --check    # exit 1 when either is stale (CI and the test suite run this)

The CRD itself (`crds/mcpregistries.mcpregistry.dev.yaml`) is generated from the pydantic models by
`python -m mcpreg_dev.crd`; `make generate` runs both. The reference is rendered from the CRD's
OpenAPI schema alone (types, defaults, enums, bounds, patterns, CEL rule messages, descriptions), so
what it says is what the API server enforces.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = REPO_ROOT / "crds" / "mcpregistries.mcpregistry.dev.yaml"
CHART_CRD_FILE = REPO_ROOT / "charts" / "mcp-registry-operator" / "crds" / CRD_FILE.name
DOCS_FILE = REPO_ROOT / "docs" / "configuration.md"

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Section:
    """One object of the schema: a heading, its description and a table of its fields."""

    path: str  # spec.source.git, status.conditions[]
    schema: Schema


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (one line, pipes escaped)."""
    return " ".join(text.split()).replace("|", "\\|")


def _prose(text: Any) -> str:
    """A description as Markdown text: one line, with what Markdown would swallow escaped
    (`<name>` reads as an HTML tag, `*` may start emphasis)."""
    line = " ".join(str(text).split())
    return line.replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")


def _code(value: Any) -> str:
    """A value as inline code: strings as they are (the empty one as ""), others in YAML flow style."""
    if isinstance(value, str):
        text = value or '""'
    else:
        text = yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()
    # A backtick inside the value needs a longer fence. Pipes are escaped by `_cell` in tables.
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def anchor(path: str) -> str:
    """GitHub's anchor for a heading whose text is `path` in backticks."""
    return "".join(ch for ch in path.lower() if ch.isalnum() or ch in "-_")


def _is_object(schema: Schema) -> bool:
    return schema.get("type") == "object" and "properties" in schema


def _type(schema: Schema, child_path: str) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "integer or string"
    kind = schema.get("type", "any")
    if _is_object(schema):
        return f"[object](#{anchor(child_path)})"
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        value = schema["additionalProperties"]
        return f"map of string to {_type(value, child_path + '.*')}"
    if kind == "array":
        items = schema.get("items") or {}
        if _is_object(items):
            return f"array of [object](#{anchor(child_path + '[]')})"
        return f"array of {_type(items, child_path + '[]')}"
    if kind == "integer" and schema.get("format"):
        return f"integer ({schema['format']})"
    if kind == "string" and schema.get("format") == "date-time":
        return "string (RFC 3339 time)"
    return str(kind)


def _range(schema: Schema, low: str, high: str, unit: str) -> str | None:
    lo, hi = schema.get(low), schema.get(high)
    if lo is None and hi is None:
        return None
    if lo is not None and hi is not None:
        return f"{lo} to {hi} {unit}" if lo != hi else f"exactly {lo} {unit}"
    return f"at least {lo} {unit}" if lo is not None else f"at most {hi} {unit}"


def _constraints(schema: Schema) -> list[str]:
    """What the API server enforces on a value, in words (an object's own rules go in its section)."""
    notes: list[str] = []
    if "enum" in schema:
        notes.append("One of " + ", ".join(_code(v) for v in schema["enum"]) + ".")
    for low, high, unit in (
        ("minLength", "maxLength", "characters"),
        ("minItems", "maxItems", "items"),
        ("minProperties", "maxProperties", "entries"),
    ):
        text = _range(schema, low, high, unit)
        if text:
            notes.append(text[0].upper() + text[1:] + ".")
    numeric = _range(schema, "minimum", "maximum", "")
    if numeric:
        notes.append(("Value " + numeric).strip() + ".")
    if "pattern" in schema:
        notes.append(f"Pattern {_code(schema['pattern'])}.")
    items = schema.get("items")
    if isinstance(items, Mapping) and not _is_object(items):
        item_notes = _constraints(items)
        if item_notes:
            notes.append("Each item: " + " ".join(n[0].lower() + n[1:] for n in item_notes))
    if not _is_object(schema):
        for rule in schema.get("x-kubernetes-validations") or []:
            notes.append(f"Rule: {_prose(rule['message']).rstrip('.')}.")
    return notes


def _describe(schema: Schema) -> str:
    parts = [_prose(schema.get("description", ""))]
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping) and additional.get("description"):
        parts.append(f"Values: {_prose(additional['description'])}")
        parts.extend(_constraints(additional))
    items = schema.get("items")
    if isinstance(items, Mapping) and not _is_object(items) and items.get("description"):
        parts.append(f"Items: {_prose(items['description'])}")
    parts.extend(_constraints(schema))
    if "default" in schema:
        parts.append(f"Default: {_code(schema['default'])}.")
    return _cell(" ".join(p for p in parts if p))


def sections(path: str, schema: Schema) -> Iterator[Section]:
    """Every object in the schema, depth first, parents before children."""
    yield Section(path, schema)
    for name, child in (schema.get("properties") or {}).items():
        child_path = f"{path}.{name}"
        if _is_object(child):
            yield from sections(child_path, child)
        elif child.get("type") == "array" and _is_object(child.get("items") or {}):
            yield from sections(child_path + "[]", child["items"])


def field_paths(path: str, schema: Schema) -> Iterator[str]:
    """Every field's full path (for checking that the reference names them all)."""
    for name, child in (schema.get("properties") or {}).items():
        child_path = f"{path}.{name}"
        yield child_path
        if _is_object(child):
            yield from field_paths(child_path, child)
        elif child.get("type") == "array" and _is_object(child.get("items") or {}):
            yield from field_paths(child_path + "[]", child["items"])


def _render_section(section: Section) -> list[str]:
    schema = section.schema
    lines = [f"### `{section.path}`", ""]
    if schema.get("description"):
        lines += [_prose(schema["description"]), ""]
    rules = schema.get("x-kubernetes-validations") or []
    if rules:
        lines.append("Rules checked at admission:")
        lines += [f"- {_prose(r['message'])}" for r in rules]
        lines.append("")
    required = set(schema.get("required") or [])
    lines += ["| Field | Type | Description |", "| --- | --- | --- |"]
    for name, child in (schema.get("properties") or {}).items():
        child_path = f"{section.path}.{name}"
        label = f"`{name}`" + (" (required)" if name in required else "")
        lines.append(f"| {label} | {_type(child, child_path)} | {_describe(child)} |")
    lines.append("")
    return lines


def render(crd: Mapping[str, Any]) -> str:
    """The configuration reference for the CRD's (single) served storage version."""
    spec = crd["spec"]
    [version] = [v for v in spec["versions"] if v.get("storage")]
    root = version["schema"]["openAPIV3Schema"]
    names = spec["names"]
    group_version = f"{spec['group']}/{version['name']}"
    out = [
        f"# Configuration reference: {names['kind']} ({group_version})",
        "",
        "<!-- Generated by `python -m mcpreg_dev.crddocs` from crds/"
        f"{crd['metadata']['name']}.yaml; do not edit by hand (`make generate`). -->",
        "",
        _prose(root.get("description", "")),
        "",
        f"- API version: `{group_version}`, kind `{names['kind']}`, {spec['scope'].lower()}",
        f"- Plural `{names['plural']}`; short names: "
        + ", ".join(f"`{n}`" for n in names.get("shortNames") or []),
        "- Every field below is also described by `kubectl explain "
        f"{names['plural']}.spec` (and deeper paths). Invalid values are refused when applied, with the "
        "messages quoted here.",
        "",
    ]
    root_rules = root.get("x-kubernetes-validations") or []
    if root_rules:
        out.append("Rules on the whole object:")
        out += [f"- {_prose(r['message'])}" for r in root_rules]
        out.append("")
    columns = version.get("additionalPrinterColumns") or []
    if columns:
        out += [
            "`kubectl get mcpreg` shows (`-o wide` adds those with priority 1):",
            "",
            "| Column | From | Description |",
            "| --- | --- | --- |",
        ]
        for column in columns:
            wide = " (wide)" if column.get("priority") else ""
            description = _cell(_prose(column.get("description", "")))
            out.append(f"| {column['name']}{wide} | `{column['jsonPath']}` | {description} |")
        out.append("")
    properties = root.get("properties") or {}
    for top, title in (("spec", "Spec: what you write"), ("status", "Status: what the operator reports")):
        if top not in properties:
            continue
        out += [f"## {title}", ""]
        for section in sections(top, properties[top]):
            out += _render_section(section)
    return "\n".join(out).rstrip() + "\n"


def load_crd(path: Path = CRD_FILE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def expected_files() -> dict[Path, str]:
    """Each derived file and the text it must hold."""
    crd_text = CRD_FILE.read_text(encoding="utf-8")
    return {DOCS_FILE: render(yaml.safe_load(crd_text)), CHART_CRD_FILE: crd_text}


def stale_files() -> list[Path]:
    stale = []
    for path, text in expected_files().items():
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            stale.append(path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mcpreg_dev.crddocs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a derived file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(REPO_ROOT)} (run `make generate`)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
