"""Bytes in, a normalised `Catalog` (or every problem found) out.

The steps, each guarding the next: decode within limits (jsondoc) → detect the format (detect) →
check entry counts → validate with the pydantic models, collecting every problem with its entry and
path → build entries (converting ToolHive servers to server.json on the way) → `Catalog`.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from mcpreg.catalog.convert import (
    DEFAULT_NAMESPACE,
    UPSTREAM_NAME_MAX,
    ServerKind,
    ToolHiveForm,
    stacklok_extensions,
    toolhive_to_server_json,
)
from mcpreg.catalog.detect import DetectedFormat, FormatChoice, detect_format
from mcpreg.catalog.errors import (
    CatalogError,
    CatalogIssue,
    PathPart,
    document_issue,
    format_path,
    issues_from_error_details,
    issues_from_validation_error,
)
from mcpreg.catalog.findings import EntryKey, Findings
from mcpreg.catalog.gcpause import collector_paused
from mcpreg.catalog.jsondoc import decode_catalog_document
from mcpreg.catalog.legacy import normalise_timestamp, repair_toolhive_entry
from mcpreg.catalog.limits import DEFAULT_LIMITS, CatalogLimits, describe_bytes
from mcpreg.catalog.model import (
    CATALOG_META_KEY,
    Catalog,
    CatalogEntry,
    CatalogGroup,
    EntryStatus,
    RegistryInfo,
)
from mcpreg.catalog.toolhive_models import ContainerServer, RemoteServer, ToolHiveRegistry
from mcpreg.catalog.upstream_models import (
    OFFICIAL_META_KEY,
    OfficialMeta,
    ServerDetail,
    ServerResponseMeta,
    WrappedGroup,
    WrappedRegistry,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.12

_SERVER_LIST = TypeAdapter(list[ServerDetail])
# Canonical JSON sorts keys, so a catalogue's canonical form always begins with its `_meta` block.
CANONICAL_PREFIX = b'{"_meta":{"' + CATALOG_META_KEY.encode() + b'":'


class ReadOptions(TypedDict, total=False):
    """How to read a catalogue document: the keywords every reading function takes.

    `format` is `auto` (detect from content, the default), `toolhive` or `upstream`. `limits` bound
    size, depth and entry counts (`DEFAULT_LIMITS`). `namespace` is the reverse-DNS prefix given to
    ToolHive servers in the upstream view (`io.github.stacklok/<name>` by default, which is where
    ToolHive's client looks a short name up first).
    """

    format: FormatChoice
    limits: CatalogLimits
    namespace: str


def parse_catalog(data: bytes | str, **options: Unpack[ReadOptions]) -> Catalog:
    """Parse and validate a catalogue document (see `ReadOptions`); raise CatalogError listing every
    problem.

    A catalogue's own canonical form (`Catalog.canonical_json()`, recognised by its first bytes) is
    read with `limits.for_canonical_form()`, so that whatever was accepted can always be read back.
    """
    return read_document(data, **options).strict()


def validate_catalog(data: bytes | str, **options: Unpack[ReadOptions]) -> list[CatalogIssue]:
    """Every problem in a catalogue document (an empty list when it is valid). Never raises for bad input."""
    try:
        parse_catalog(data, **options)
    except CatalogError as exc:
        return list(exc.issues)
    return []


def read_catalog_file(path: str | os.PathLike[str], limits: CatalogLimits = DEFAULT_LIMITS) -> bytes:
    """Read a catalogue file without ever holding more than the size limit in memory.

    Raises OSError when the file cannot be read and CatalogError when it is too large.
    """
    with builtins.open(path, "rb") as handle:
        data = handle.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise CatalogError(
            [document_issue(f"the file is larger than the limit of {describe_bytes(limits.max_bytes)}")]
        )
    return data


def catalog_from_document(document: Any, **options: Unpack[ReadOptions]) -> Catalog:
    """Like `parse_catalog`, for a document already decoded by `decode_json_document`."""
    return outcome_of_document(document, **options).strict()


@dataclass(slots=True)
class DocumentOutcome:
    """Everything reading one document found: the servable catalogue and what was wrong or normalised.

    `catalog` is None when the document itself is broken (`findings.document_errors()` says why);
    otherwise it holds the entries without errors, and `skipped` names the others (key, name) in
    document order.
    """

    catalog: Catalog | None
    findings: Findings
    skipped: list[tuple[EntryKey, str | None]]
    total_entries: int

    def strict(self) -> Catalog:
        """The catalogue when nothing has an error; raise CatalogError with every error otherwise."""
        if self.findings.has_errors or self.catalog is None:
            raise CatalogError(self.findings.all_errors() or [document_issue("is not a valid catalogue")])
        return self.catalog


def read_document(data: bytes | str, **options: Unpack[ReadOptions]) -> DocumentOutcome:
    """Decode and read a document, keeping entry errors apart from document errors.

    Raises CatalogError only for what stops reading altogether (size, encoding, JSON, limits, shape).
    """
    if isinstance(data, str):
        # Text already decoded by the caller (a ConfigMap's `data` value, say). Lone surrogates pass
        # through, so that the decoder reports them like any other invalid UTF-8.
        data = data.encode("utf-8", errors="surrogatepass")
    limits = options.get("limits", DEFAULT_LIMITS)
    if bytes(data[: len(CANONICAL_PREFIX)]) == CANONICAL_PREFIX:
        limits = options["limits"] = limits.for_canonical_form()
    with collector_paused():
        document, repeated = decode_catalog_document(data, limits)
        return outcome_of_document(document, repeated_servers=repeated, **options)


def outcome_of_document(
    document: Any,
    *,
    repeated_servers: Sequence[tuple[EntryKey, CatalogIssue]] = (),
    **options: Unpack[ReadOptions],
) -> DocumentOutcome:
    """`read_document` for a document already decoded by `decode_json_document`.

    `repeated_servers` are server names the decoder found written twice in a ToolHive map of servers
    (`decode_catalog_document`): errors of those entries.
    """
    limits = options.get("limits", DEFAULT_LIMITS)
    namespace = options.get("namespace", DEFAULT_NAMESPACE)
    detected = detect_format(document, options.get("format", "auto"))
    if detected.format != "toolhive" and repeated_servers:
        raise CatalogError([issue for _, issue in repeated_servers])
    findings = Findings()
    for key, issue in repeated_servers:
        findings.entry_error(key, issue)
    if detected.format == "toolhive":
        return _read_toolhive(document, limits, namespace, findings)
    return _read_upstream(document, detected, limits, namespace)


def _refuse_too_many(count: int, limits: CatalogLimits) -> None:
    if count > limits.max_entries:
        raise CatalogError(
            [document_issue(f"has {count} server entries, more than the limit of {limits.max_entries}")]
        )


# --- ToolHive ---------------------------------------------------------------------------------------------


_ENTRY_MAPS = ("servers", "remote_servers")
_ENTRY_MODELS: dict[str, type[BaseModel]] = {"servers": ContainerServer, "remote_servers": RemoteServer}


def _toolhive_entry_key(loc: Sequence[PathPart]) -> EntryKey | None:
    # servers.<name>.… and groups[i].servers.<name>.… belong to the server <name>.
    if len(loc) >= 2 and loc[0] in _ENTRY_MAPS:
        return (loc[0], loc[1])
    if len(loc) >= 4 and loc[0] == "groups" and loc[2] in _ENTRY_MAPS:
        return (loc[0], loc[1], loc[2], loc[3])
    return None


def _count_toolhive_entries(document: Mapping[str, Any]) -> int:
    count = 0
    for key in _ENTRY_MAPS:
        if isinstance(document.get(key), dict):
            count += len(document[key])
    groups = document.get("groups")
    if isinstance(groups, list):
        for group in groups:
            if isinstance(group, dict):
                count += _count_toolhive_entries(group)
    return count


def _toolhive_entry_keys(document: Mapping[str, Any]) -> Iterator[EntryKey]:
    """Every entry's key, in document order (mappings keep the order they were written in)."""
    for field_name, value in document.items():
        if field_name in _ENTRY_MAPS and isinstance(value, dict):
            for name in value:
                yield (field_name, name)
        elif field_name == "groups" and isinstance(value, list):
            for index, group in enumerate(value):
                if isinstance(group, dict):
                    for map_name, servers in group.items():
                        if map_name in _ENTRY_MAPS and isinstance(servers, dict):
                            for name in servers:
                                yield ("groups", index, map_name, name)


def _read_toolhive(
    document: dict[str, Any], limits: CatalogLimits, namespace: str, findings: Findings
) -> DocumentOutcome:
    total = _count_toolhive_entries(document)
    _refuse_too_many(total, limits)
    document = _normalise_registry_timestamp(document, findings)
    try:
        ToolHiveRegistry.model_validate(document)
    except ValidationError as exc:
        document = _repair_toolhive(document, exc, findings)
    _toolhive_cross_checks(document, namespace, findings)
    skipped: list[tuple[EntryKey, str | None]] = [
        (key, str(key[-1])) for key in _toolhive_entry_keys(document) if findings.is_bad(key)
    ]
    if findings.document_errors():
        return DocumentOutcome(None, findings, skipped, total)

    last_updated: str = document["last_updated"]
    entries = _toolhive_entries(document, (), last_updated, namespace, findings)
    groups = [
        CatalogGroup(
            name=group["name"],
            description=group["description"],
            entries=tuple(_toolhive_entries(group, ("groups", index), last_updated, namespace, findings)),
        )
        for index, group in enumerate(document.get("groups") or ())
    ]
    known = {"$schema", "version", "last_updated", "servers", "remote_servers", "groups"}
    info = RegistryInfo(
        version=document["version"],
        last_updated=last_updated,
        schema_url=document.get("$schema"),
        extra={key: value for key, value in document.items() if key not in known},
    )
    catalog = Catalog(entries, source_format="toolhive", registry=info, groups=groups, namespace=namespace)
    return DocumentOutcome(catalog, findings, skipped, total)


def _normalise_registry_timestamp(document: dict[str, Any], findings: Findings) -> dict[str, Any]:
    stamp = document.get("last_updated")
    if not isinstance(stamp, str):
        return document
    normalised = normalise_timestamp(stamp)
    if normalised is None:
        return document
    findings.warn(
        CatalogIssue(
            None,
            "last_updated",
            f"timestamp {stamp!r} has no time zone; normalised to {normalised!r} (UTC)",
            severity="warning",
        )
    )
    return {**document, "last_updated": normalised}


def _repair_toolhive(document: dict[str, Any], exc: ValidationError, findings: Findings) -> dict[str, Any]:
    """Sort validation errors by entry; repair legacy shapes; record what stays wrong.

    Returns the document with repaired entries replaced (a copy when anything changed; the caller's
    document is never modified).
    """
    by_entry: dict[EntryKey, list[ErrorDetails]] = {}
    for detail in exc.errors(include_url=False):
        key = _toolhive_entry_key(detail["loc"])
        if key is None:
            for issue in issues_from_error_details([detail], locate=_toolhive_issue_location):
                findings.document_error(issue)
        else:
            by_entry.setdefault(key, []).append(detail)
    repaired: dict[EntryKey, dict[str, Any]] = {}
    for key, details in by_entry.items():
        if findings.is_bad(key):
            continue  # a name written twice: which definition was meant is unknown, so neither is read
        name = str(key[-1])
        entry_data = _entry_at(document, key)
        relative = [_relative_to(detail, len(key)) for detail in details]
        outcome = None
        if entry_data is not None and not any(d["loc"] and d["loc"][-1] == "[key]" for d in relative):
            outcome = repair_toolhive_entry(
                entry_data, _ENTRY_MODELS[str(key[-2])], relative, key=key, name=name
            )
        if outcome is not None and outcome.data is not None:
            repaired[key] = outcome.data
            findings.warnings.extend(outcome.warnings)
            continue
        errors = (
            outcome.errors
            if outcome is not None
            else issues_from_error_details(details, locate=_toolhive_issue_location)
        )
        for issue in errors:
            findings.entry_error(key, issue)
    return _with_entries_replaced(document, repaired) if repaired else document


def _relative_to(detail: ErrorDetails, depth: int) -> ErrorDetails:
    relative = detail.copy()
    relative["loc"] = detail["loc"][depth:]
    return relative


def _toolhive_issue_location(loc: Sequence[PathPart]) -> tuple[Sequence[PathPart], str | None]:
    key = _toolhive_entry_key(loc)
    return loc, None if key is None else str(key[-1])


def _entry_at(document: Mapping[str, Any], key: EntryKey) -> Any:
    node: Any = document
    for part in key:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _with_entries_replaced(document: dict[str, Any], replacements: Mapping[EntryKey, Any]) -> dict[str, Any]:
    """A copy of `document` with the entries at the given keys replaced, copying only what changes."""
    out = dict(document)
    copied_maps: dict[tuple[PathPart, ...], dict[str, Any]] = {}
    groups: list[Any] | None = None
    for key, data in replacements.items():
        *scope_path, map_name, name = (str(part) if isinstance(part, str) else part for part in key)
        assert isinstance(map_name, str)
        scope_key = (*scope_path, map_name)
        servers = copied_maps.get(scope_key)
        if servers is None:
            if scope_path:
                if groups is None:
                    groups = list(out["groups"])
                    out["groups"] = groups
                index = scope_path[1]
                assert isinstance(index, int)
                group = dict(groups[index])
                groups[index] = group
                servers = dict(group[map_name])
                group[map_name] = servers
            else:
                servers = dict(out[map_name])
                out[map_name] = servers
            copied_maps[scope_key] = servers
        servers[str(name)] = data
    return out


def _toolhive_cross_checks(document: Mapping[str, Any], namespace: str, findings: Findings) -> None:
    """Rules that span fields: unique names across maps, names that fit upstream, HTTP remote URLs."""
    name_room = UPSTREAM_NAME_MAX - len(namespace) - 1
    scopes: list[tuple[tuple[PathPart, ...], Mapping[str, Any]]] = [((), document)]
    groups = document.get("groups")
    if isinstance(groups, list):
        scopes.extend((("groups", i), g) for i, g in enumerate(groups) if isinstance(g, Mapping))
        seen_groups: set[str] = set()
        for index, group in enumerate(groups):
            name = group.get("name") if isinstance(group, Mapping) else None
            if isinstance(name, str):
                if name in seen_groups:
                    findings.document_error(
                        CatalogIssue(
                            None, format_path(["groups", index, "name"]), f"duplicate group name {name!r}"
                        )
                    )
                seen_groups.add(name)
    for prefix, scope in scopes:
        servers = _mapping_or_empty(scope.get("servers"))
        remotes = _mapping_or_empty(scope.get("remote_servers"))
        for name in remotes:
            if name in servers:
                findings.entry_error(
                    (*prefix, "remote_servers", name),
                    CatalogIssue(
                        name,
                        format_path([*prefix, "remote_servers", name]),
                        f"name {name!r} is also used in servers; each server name must be unique",
                    ),
                )
        for map_name, servers_map in (("servers", servers), ("remote_servers", remotes)):
            for name in servers_map:
                if len(name) > name_room:
                    findings.entry_error(
                        (*prefix, map_name, name),
                        CatalogIssue(
                            name,
                            format_path([*prefix, map_name, name]),
                            f"name is {len(name)} characters long; at most {name_room} fit in an upstream "
                            f"server name under {namespace!r}",
                        ),
                    )
        for name, remote in remotes.items():
            url = remote.get("url") if isinstance(remote, Mapping) else None
            if isinstance(url, str) and not url.startswith(("http://", "https://")):
                findings.entry_error(
                    (*prefix, "remote_servers", name),
                    CatalogIssue(
                        name,
                        format_path([*prefix, "remote_servers", name, "url"]),
                        f"must be an http:// or https:// URL for a {remote.get('transport')} server "
                        f"(got {url!r})",
                    ),
                )


def _toolhive_entries(
    scope: Mapping[str, Any],
    prefix: tuple[PathPart, ...],
    registry_updated: str,
    namespace: str,
    findings: Findings,
) -> list[CatalogEntry]:
    forms: list[ToolHiveForm] = []
    kinds: tuple[tuple[str, ServerKind], ...] = (("servers", "container"), ("remote_servers", "remote"))
    for map_name, kind in kinds:
        for key, data in (scope.get(map_name) or {}).items():
            if not findings.is_bad((*prefix, map_name, key)):
                forms.append(ToolHiveForm(kind=kind, key=key, data=data))
    # Sorted by name: a ToolHive catalogue is a mapping, so its key order must not change the hash.
    forms.sort(key=lambda form: form.key)
    entries = []
    for form in forms:
        server = toolhive_to_server_json(form, namespace)
        metadata = form.data.get("metadata") or {}
        stamp = metadata.get("last_updated", registry_updated)
        status: EntryStatus = "deprecated" if form.data["status"] == "Deprecated" else "active"
        entries.append(
            CatalogEntry(
                name=server["name"],
                version=server["version"],
                server=server,
                status=status,
                published_at=stamp,
                updated_at=stamp,
                is_latest=True,
                tags=tuple(form.data.get("tags") or ()),
                toolhive=form,
            )
        )
    return entries


# --- upstream ---------------------------------------------------------------------------------------------


def _read_upstream(
    document: Any, detected: DetectedFormat, limits: CatalogLimits, namespace: str
) -> DocumentOutcome:
    findings = Findings()
    issues: list[CatalogIssue] = []  # registry-level problems
    info = RegistryInfo()
    source_format = "upstream"
    group_sources: list[tuple[tuple[PathPart, ...], str, str, list[Any]]] = []

    if detected.shape == "wrapped":
        try:
            wrapped = WrappedRegistry.model_validate(document)
            info = RegistryInfo(version=wrapped.version, last_updated=wrapped.meta.last_updated)
        except ValidationError as exc:
            issues.extend(issues_from_validation_error(exc))
        raw_groups = document["data"].get("groups")
        if raw_groups is not None:
            group_sources, group_issues = _group_sources(raw_groups, ("data", "groups"))
            issues.extend(group_issues)
    elif detected.shape == "response":
        catalog_meta = (document.get("_meta") or {}).get(CATALOG_META_KEY)
        if isinstance(catalog_meta, dict):
            # A canonical document written by Catalog.canonical_document(): restore what it recorded.
            info, source_format, group_sources, meta_issues = _read_catalog_meta(catalog_meta)
            issues.extend(meta_issues)

    total = len(detected.items) + sum(len(servers) for *_, servers in group_sources)
    _refuse_too_many(total, limits)
    for issue in issues:
        findings.document_error(issue)

    skipped: list[tuple[EntryKey, str | None]] = []
    single = detected.shape == "single"
    entries = _upstream_entries(detected.items, detected.items_path, single, info, findings, skipped)
    groups = [
        CatalogGroup(
            name, description, tuple(_upstream_entries(servers, path, False, info, findings, skipped))
        )
        for path, name, description, servers in group_sources
    ]
    if findings.document_errors():
        return DocumentOutcome(None, findings, skipped, total)
    catalog = Catalog(
        entries,
        source_format="toolhive" if source_format == "toolhive" else "upstream",
        registry=info,
        groups=groups,
        namespace=namespace,
    )
    return DocumentOutcome(catalog, findings, skipped, total)


def _group_sources(
    raw_groups: Any, path: tuple[PathPart, ...]
) -> tuple[list[tuple[tuple[PathPart, ...], str, str, list[Any]]], list[CatalogIssue]]:
    try:
        groups = TypeAdapter(list[WrappedGroup]).validate_python(raw_groups)
    except ValidationError as exc:
        return [], issues_from_validation_error(exc, path)
    return [((*path, i, "servers"), g.name, g.description, g.servers) for i, g in enumerate(groups)], []


def _read_catalog_meta(
    meta: Mapping[str, Any],
) -> tuple[RegistryInfo, str, list[tuple[tuple[PathPart, ...], str, str, list[Any]]], list[CatalogIssue]]:
    registry = _mapping_or_empty(meta.get("registry"))
    extra = registry.get("extra")
    info = RegistryInfo(
        version=_str_or_none(registry.get("version")),
        last_updated=_str_or_none(registry.get("lastUpdated")),
        schema_url=_str_or_none(registry.get("$schema")),
        extra=extra if isinstance(extra, Mapping) else {},
    )
    source_format = "toolhive" if meta.get("sourceFormat") == "toolhive" else "upstream"
    groups: list[tuple[tuple[PathPart, ...], str, str, list[Any]]] = []
    issues: list[CatalogIssue] = []
    if meta.get("groups") is not None:
        groups, issues = _group_sources(meta["groups"], ("_meta", CATALOG_META_KEY, "groups"))
    return info, source_format, groups, issues


def _mapping_or_empty(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _upstream_entries(
    items: Sequence[Any],
    items_path: tuple[PathPart, ...],
    single: bool,
    info: RegistryInfo,
    findings: Findings,
    skipped: list[tuple[EntryKey, str | None]],
) -> list[CatalogEntry]:
    """Validate upstream items (bare server.json or {server, _meta}) and build their entries.

    An item with an error is recorded against its own path and left out (appended to `skipped`);
    the only item of a single server.json document is the document, so its errors are the document's.
    """
    servers: list[Any] = []
    response_metas: list[Any] = []
    paths: list[tuple[PathPart, ...]] = []
    keys: list[EntryKey | None] = []
    for index, item in enumerate(items):
        base = items_path if single else (*items_path, index)
        keys.append(None if single else base)
        if isinstance(item, dict) and "server" in item:
            servers.append(item["server"])
            response_metas.append(item.get("_meta"))
            paths.append((*base, "server"))
        else:
            servers.append(item)
            response_metas.append(None)
            paths.append(base)

    def name_at(position: int) -> str | None:
        server = servers[position]
        name = server.get("name") if isinstance(server, dict) else None
        return name if isinstance(name, str) else None

    bad_positions: set[int] = set()

    def locate(loc: Sequence[PathPart]) -> tuple[Sequence[PathPart], str | None]:
        # A list's error locations start with the item's index.
        position = loc[0]
        assert isinstance(position, int)
        return [*paths[position], *loc[1:]], name_at(position)

    def record(position: int, issue: CatalogIssue) -> None:
        bad_positions.add(position)
        findings.error(keys[position], issue)

    try:
        _SERVER_LIST.validate_python(servers)
    except ValidationError as exc:
        for detail in exc.errors(include_url=False):
            position = detail["loc"][0]
            assert isinstance(position, int)
            for issue in issues_from_error_details([detail], locate=locate):
                record(position, issue)

    entries: list[CatalogEntry] = []
    seen: dict[tuple[str, str], tuple[PathPart, ...]] = {}
    for position, server in enumerate(servers):
        if position in bad_positions or not isinstance(server, dict):
            continue
        path = paths[position]
        name: str = server["name"]
        version: str = server["version"]
        official: OfficialMeta | None = None
        response_meta = response_metas[position]
        if response_meta is not None:
            base = (*path[:-1], "_meta") if path and path[-1] == "server" else (*path, "_meta")
            try:
                official = ServerResponseMeta.model_validate(response_meta).official
            except ValidationError as exc:
                for issue in issues_from_validation_error(exc, base, name):
                    record(position, issue)
                continue
        previous = seen.get((name, version))
        if previous is not None:
            record(
                position,
                CatalogIssue(
                    name,
                    format_path([*path, "version"]),
                    f"duplicate version {version!r} of this server (already at {format_path(previous)})",
                ),
            )
            continue
        seen[(name, version)] = path
        entries.append(_upstream_entry(server, official, response_meta, info))
    for position, key in enumerate(keys):
        if key is not None and position in bad_positions:
            skipped.append((key, name_at(position)))
    return entries


def _upstream_entry(
    server: dict[str, Any], official: OfficialMeta | None, response_meta: Any, info: RegistryInfo
) -> CatalogEntry:
    """An entry for a validated server.json, with the registry facts the v0.1 API reports.

    Status and times come from the list response's official block when there is one, else from
    ToolHive's extension (`status`, `metadata.last_updated`), else from the catalogue's own timestamp.
    """
    identifier = None
    remotes = server.get("remotes") or []
    packages = server.get("packages") or []
    if remotes:
        identifier = remotes[0]["url"]
    else:
        oci = [p["identifier"] for p in packages if p.get("registryType") == "oci"]
        identifier = oci[0] if oci else None
    extensions = stacklok_extensions(server, identifier) or {}
    metadata = extensions.get("metadata") or {}
    stamp = metadata.get("last_updated", info.last_updated)

    status: EntryStatus = "active"
    if official is not None and official.status is not None:
        status = official.status
    elif str(extensions.get("status", "")).lower() == "deprecated":
        status = "deprecated"
    published_at = official.publishedAt if official is not None and official.publishedAt else stamp
    updated_at = official.updatedAt if official is not None and official.updatedAt else published_at

    other_meta = None
    if isinstance(response_meta, Mapping):
        other_meta = {k: v for k, v in response_meta.items() if k != OFFICIAL_META_KEY} or None
    return CatalogEntry(
        name=server["name"],
        version=server["version"],
        server=server,
        status=status,
        status_message=official.statusMessage if official is not None else None,
        published_at=published_at,
        updated_at=updated_at,
        tags=tuple(extensions.get("tags") or ()),
        response_meta=other_meta,
    )
