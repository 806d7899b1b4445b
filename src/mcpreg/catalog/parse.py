"""Bytes in, a normalised `Catalog` (or every problem found) out.

The steps, each guarding the next: decode within limits (jsondoc) → detect the format (detect) →
check entry counts → validate with the pydantic models, collecting every problem with its entry and
path → build entries (converting ToolHive servers to server.json on the way) → `Catalog`.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

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
    issues_from_validation_error,
)
from mcpreg.catalog.gcpause import collector_paused
from mcpreg.catalog.jsondoc import decode_json_document
from mcpreg.catalog.limits import DEFAULT_LIMITS, CatalogLimits, describe_bytes
from mcpreg.catalog.model import (
    CATALOG_META_KEY,
    Catalog,
    CatalogEntry,
    CatalogGroup,
    EntryStatus,
    RegistryInfo,
)
from mcpreg.catalog.toolhive_models import ToolHiveRegistry
from mcpreg.catalog.upstream_models import (
    OFFICIAL_META_KEY,
    OfficialMeta,
    ServerDetail,
    ServerResponseMeta,
    WrappedGroup,
    WrappedRegistry,
)

_SERVER_LIST = TypeAdapter(list[ServerDetail])
# Canonical JSON sorts keys, so a catalogue's canonical form always begins with its `_meta` block.
CANONICAL_PREFIX = b'{"_meta":{"' + CATALOG_META_KEY.encode() + b'":'


def parse_catalog(
    data: bytes | str,
    *,
    format: FormatChoice = "auto",
    limits: CatalogLimits = DEFAULT_LIMITS,
    namespace: str = DEFAULT_NAMESPACE,
) -> Catalog:
    """Parse and validate a catalogue document; raise CatalogError listing every problem.

    `format` is `auto` (detect from content), `toolhive` or `upstream`. `namespace` is the reverse-DNS
    prefix given to ToolHive servers in the upstream view (`io.github.stacklok/<name>` by default,
    which is where ToolHive's client looks a short name up first).

    A catalogue's own canonical form (`Catalog.canonical_json()`, recognised by its first bytes) is
    read with `limits.for_canonical_form()`, so that whatever was accepted can always be read back.
    """
    if isinstance(data, str):
        # Text already decoded by the caller (a ConfigMap's `data` value, say). Lone surrogates pass
        # through, so that the decoder reports them like any other invalid UTF-8.
        data = data.encode("utf-8", errors="surrogatepass")
    if bytes(data[: len(CANONICAL_PREFIX)]) == CANONICAL_PREFIX:
        limits = limits.for_canonical_form()
    with collector_paused():
        document = decode_json_document(data, limits)
        return catalog_from_document(document, format=format, limits=limits, namespace=namespace)


def validate_catalog(
    data: bytes | str,
    *,
    format: FormatChoice = "auto",
    limits: CatalogLimits = DEFAULT_LIMITS,
    namespace: str = DEFAULT_NAMESPACE,
) -> list[CatalogIssue]:
    """Every problem in a catalogue document (an empty list when it is valid). Never raises for bad input."""
    try:
        parse_catalog(data, format=format, limits=limits, namespace=namespace)
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


def catalog_from_document(
    document: Any,
    *,
    format: FormatChoice = "auto",
    limits: CatalogLimits = DEFAULT_LIMITS,
    namespace: str = DEFAULT_NAMESPACE,
) -> Catalog:
    """Like `parse_catalog`, for a document already decoded by `decode_json_document`."""
    detected = detect_format(document, format)
    if detected.format == "toolhive":
        return _parse_toolhive(document, limits, namespace)
    return _parse_upstream(document, detected, limits, namespace)


def _refuse_too_many(count: int, limits: CatalogLimits) -> None:
    if count > limits.max_entries:
        raise CatalogError(
            [document_issue(f"has {count} server entries, more than the limit of {limits.max_entries}")]
        )


# --- ToolHive ---------------------------------------------------------------------------------------------


def _toolhive_entry_of(loc: Sequence[PathPart]) -> tuple[Sequence[PathPart], str | None]:
    # servers.<name>.… and groups[i].servers.<name>.… belong to the server <name>.
    if len(loc) >= 2 and loc[0] in ("servers", "remote_servers"):
        return loc, str(loc[1])
    if len(loc) >= 4 and loc[0] == "groups" and loc[2] in ("servers", "remote_servers"):
        return loc, str(loc[3])
    return loc, None


def _count_toolhive_entries(document: Mapping[str, Any]) -> int:
    count = 0
    for key in ("servers", "remote_servers"):
        if isinstance(document.get(key), dict):
            count += len(document[key])
    groups = document.get("groups")
    if isinstance(groups, list):
        for group in groups:
            if isinstance(group, dict):
                count += _count_toolhive_entries(group)
    return count


def _parse_toolhive(document: dict[str, Any], limits: CatalogLimits, namespace: str) -> Catalog:
    _refuse_too_many(_count_toolhive_entries(document), limits)
    issues: list[CatalogIssue] = []
    registry: ToolHiveRegistry | None = None
    try:
        registry = ToolHiveRegistry.model_validate(document)
    except ValidationError as exc:
        issues.extend(issues_from_validation_error(exc, locate=_toolhive_entry_of))
    issues.extend(_toolhive_cross_checks(document, namespace))
    if issues or registry is None:
        raise CatalogError(issues or [document_issue("is not a valid ToolHive registry")])

    last_updated: str = document["last_updated"]
    entries = _toolhive_entries(document, last_updated, namespace)
    groups = [
        CatalogGroup(
            name=group["name"],
            description=group["description"],
            entries=tuple(_toolhive_entries(group, last_updated, namespace)),
        )
        for group in document.get("groups") or ()
    ]
    known = {"$schema", "version", "last_updated", "servers", "remote_servers", "groups"}
    info = RegistryInfo(
        version=document["version"],
        last_updated=last_updated,
        schema_url=document.get("$schema"),
        extra={key: value for key, value in document.items() if key not in known},
    )
    return Catalog(entries, source_format="toolhive", registry=info, groups=groups, namespace=namespace)


def _toolhive_cross_checks(document: Mapping[str, Any], namespace: str) -> list[CatalogIssue]:
    """Rules that span fields: unique names across maps, names that fit upstream, HTTP remote URLs."""
    issues: list[CatalogIssue] = []
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
                    issues.append(
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
                issues.append(
                    CatalogIssue(
                        name,
                        format_path([*prefix, "remote_servers", name]),
                        f"name {name!r} is also used in servers; each server name must be unique",
                    )
                )
        for map_name, servers_map in (("servers", servers), ("remote_servers", remotes)):
            for name in servers_map:
                if len(name) > name_room:
                    issues.append(
                        CatalogIssue(
                            name,
                            format_path([*prefix, map_name, name]),
                            f"name is {len(name)} characters long; at most {name_room} fit in an upstream "
                            f"server name under {namespace!r}",
                        )
                    )
        for name, remote in remotes.items():
            url = remote.get("url") if isinstance(remote, Mapping) else None
            if isinstance(url, str) and not url.startswith(("http://", "https://")):
                issues.append(
                    CatalogIssue(
                        name,
                        format_path([*prefix, "remote_servers", name, "url"]),
                        f"must be an http:// or https:// URL for a {remote.get('transport')} server "
                        f"(got {url!r})",
                    )
                )
    return issues


def _toolhive_entries(scope: Mapping[str, Any], registry_updated: str, namespace: str) -> list[CatalogEntry]:
    forms: list[ToolHiveForm] = []
    kinds: tuple[tuple[str, ServerKind], ...] = (("servers", "container"), ("remote_servers", "remote"))
    for map_name, kind in kinds:
        for key, data in (scope.get(map_name) or {}).items():
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


def _parse_upstream(
    document: Any, detected: DetectedFormat, limits: CatalogLimits, namespace: str
) -> Catalog:
    issues: list[CatalogIssue] = []
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

    entries = _upstream_entries(detected.items, detected.items_path, detected.shape == "single", info, issues)
    groups = [
        CatalogGroup(name, description, tuple(_upstream_entries(servers, path, False, info, issues)))
        for path, name, description, servers in group_sources
    ]
    if issues:
        raise CatalogError(issues)
    return Catalog(
        entries,
        source_format="toolhive" if source_format == "toolhive" else "upstream",
        registry=info,
        groups=groups,
        namespace=namespace,
    )


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
    issues: list[CatalogIssue],
) -> list[CatalogEntry]:
    """Validate upstream items (bare server.json or {server, _meta}) and build their entries."""
    servers: list[Any] = []
    response_metas: list[Any] = []
    paths: list[tuple[PathPart, ...]] = []
    for index, item in enumerate(items):
        base = items_path if single else (*items_path, index)
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
        position = loc[0]
        if not isinstance(position, int):  # pragma: no cover - list locations start with an index
            return [*items_path, *loc], None
        bad_positions.add(position)
        return [*paths[position], *loc[1:]], name_at(position)

    try:
        _SERVER_LIST.validate_python(servers)
    except ValidationError as exc:
        issues.extend(issues_from_validation_error(exc, locate=locate))

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
                issues.extend(issues_from_validation_error(exc, base, name))
        previous = seen.get((name, version))
        if previous is not None:
            issues.append(
                CatalogIssue(
                    name,
                    format_path([*path, "version"]),
                    f"duplicate version {version!r} of this server (already at {format_path(previous)})",
                )
            )
            continue
        seen[(name, version)] = path
        entries.append(_upstream_entry(server, official, response_meta, info))
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
        published_at=published_at,
        updated_at=updated_at,
        tags=tuple(extensions.get("tags") or ()),
        response_meta=other_meta,
    )
