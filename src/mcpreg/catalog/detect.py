"""Which catalogue format a decoded JSON document is, decided from its content.

Recognised shapes:
- ToolHive registry: an object whose `servers` (and/or `remote_servers`) is an object keyed by name;
- upstream, bare list: `[server.json, …]` (items may also be `{"server": …, "_meta": …}`);
- upstream, v0.1 list response: `{"servers": [{"server": …, "_meta": …}], "metadata": …}`;
- upstream, wrapped: `{"$schema", "version", "meta", "data": {"servers": [...], "groups": [...]}}`;
- upstream, a single server.json object.

Anything else - including the older snake_case server.json format - is refused with one message that
says what was found and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mcpreg.catalog.errors import CatalogError, CatalogIssue, PathPart, document_issue, format_path, json_kind

CatalogFormat = Literal["toolhive", "upstream"]
FormatChoice = Literal["auto", "toolhive", "upstream"]
UpstreamShape = Literal["list", "response", "wrapped", "single"]

EXPECTED_FORMATS = (
    "a ToolHive registry ({'version', 'last_updated', 'servers': {name: …}}) or upstream server.json "
    "entries (a list, {'servers': [{'server': …}]} or {'version', 'meta', 'data': {'servers': [...]}})"
)

# Field names of the pre-2025-09 server.json drafts, which used snake_case throughout.
_SNAKE_CASE_MARKERS = frozenset(
    {
        "version_detail",
        "registry_name",
        "registry_type",
        "registry_base_url",
        "runtime_hint",
        "runtime_arguments",
        "package_arguments",
        "environment_variables",
        "website_url",
        "file_sha256",
        "transport_type",
        "is_required",
        "is_secret",
        "value_hint",
        "is_repeated",
        "is_latest",
        "published_at",
        "release_date",
    }
)


@dataclass(frozen=True, slots=True)
class DetectedFormat:
    """The format of a document and, for upstream documents, where its server entries are."""

    format: CatalogFormat
    shape: UpstreamShape | None
    items: list[Any]
    items_path: tuple[PathPart, ...]

    @property
    def description(self) -> str:
        if self.format == "toolhive":
            return "ToolHive registry"
        return {
            "list": "upstream server.json list",
            "response": "upstream v0.1 list response",
            "wrapped": "upstream registry (wrapped data.servers)",
            "single": "upstream server.json",
        }[self.shape or "list"]


def detect_format(document: Any, expected: FormatChoice = "auto") -> DetectedFormat:
    """Decide the format of `document`; raise CatalogError with one clear issue when it is neither."""
    detected = _detect(document)
    if expected != "auto" and detected.format != expected:
        wanted = (
            "the ToolHive registry format" if expected == "toolhive" else "the upstream server.json format"
        )
        raise CatalogError(
            [document_issue(f"expected {wanted} (format: {expected}), but this is a {detected.description}")]
        )
    if detected.format == "upstream":
        _refuse_snake_case(detected)
    return detected


def _detect(document: Any) -> DetectedFormat:
    if isinstance(document, list):
        return DetectedFormat("upstream", "list", document, ())
    if not isinstance(document, dict):
        raise CatalogError(
            [
                document_issue(
                    f"found a JSON {json_kind(document)} at the top level; expected {EXPECTED_FORMATS}"
                )
            ]
        )
    servers = document.get("servers")
    data = document.get("data")
    if isinstance(data, dict) and isinstance(data.get("servers"), list):
        return DetectedFormat("upstream", "wrapped", data["servers"], ("data", "servers"))
    if isinstance(servers, list):
        return DetectedFormat("upstream", "response", servers, ("servers",))
    if isinstance(servers, dict) or isinstance(document.get("remote_servers"), dict):
        return DetectedFormat("toolhive", None, [], ())
    if isinstance(document.get("name"), str) and (
        "packages" in document
        or "remotes" in document
        or "version" in document
        or "version_detail" in document
    ):
        return DetectedFormat("upstream", "single", [document], ())
    keys = ", ".join(repr(key) for key in list(document)[:8]) or "no keys"
    if "servers" in document:
        found = f"an object whose 'servers' is a {json_kind(servers)}"
    else:
        found = f"an object with {keys}"
    raise CatalogError(
        [document_issue(f"unrecognised catalogue: found {found}; expected {EXPECTED_FORMATS}")]
    )


def _refuse_snake_case(detected: DetectedFormat) -> None:
    for index, item in enumerate(detected.items):
        if not isinstance(item, Mapping):
            continue
        wrapped = isinstance(item.get("server"), Mapping)
        server = item["server"] if wrapped else item
        found = _snake_case_field(server)
        prefix: list[PathPart] = ["server"] if wrapped else []
        if found is None and wrapped:
            found, prefix = _snake_case_field(item.get("_meta")), ["_meta"]
        if found is not None:
            where: list[PathPart] = [*detected.items_path]
            if detected.shape != "single":
                where.append(index)
            where.extend([*prefix, *found[0]])
            raise CatalogError(
                [
                    CatalogIssue(
                        entry=server.get("name") if isinstance(server.get("name"), str) else None,
                        path=format_path(where),
                        message=(
                            f"this is the older snake_case server.json format ({found[1]!r}); expected "
                            "server.json schema 2025-12-11, which is camelCase ('version', 'packages[]."
                            "registryType', 'environmentVariables', 'websiteUrl', …). Regenerate the file "
                            "with a current mcp-publisher or convert its field names."
                        ),
                    )
                ]
            )


def _snake_case_field(node: Any, depth: int = 0) -> tuple[list[PathPart], str] | None:
    """The first snake_case-era field name in a server (looking into packages, remotes and _meta)."""
    if depth > 3:
        return None
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in _SNAKE_CASE_MARKERS:
                return [], key
            if key in ("packages", "remotes", "io.modelcontextprotocol.registry/official", "transport"):
                found = _snake_case_field(value, depth + 1)
                if found is not None:
                    return [key, *found[0]], found[1]
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found = _snake_case_field(value, depth + 1)
            if found is not None:
                return [index, *found[0]], found[1]
    return None
