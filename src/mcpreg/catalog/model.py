"""The normalised catalogue: every server version, ready to serve in either format.

A `Catalog` is built once per sync (or per reload in the API server) and then read many times, so it
precomputes what readers ask for on hot paths - versions by name, the latest version, the upstream
list-response entries - and computes the heavier views (ToolHive document, canonical JSON, hash)
once, on first use. It is immutable: filtering returns a new catalogue.

Its normal form is upstream's: one entry per (server name, version), each holding its server.json and
the registry facts the v0.1 API reports under `_meta["io.modelcontextprotocol.registry/official"]`
(status, publishedAt, updatedAt, isLatest). ToolHive's format is a view of the latest versions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from mcpreg.catalog.convert import (
    DEFAULT_NAMESPACE,
    NotExpressible,
    ToolHiveForm,
    server_json_to_toolhive,
    toolhive_key,
)
from mcpreg.catalog.detect import CatalogFormat
from mcpreg.catalog.filtering import CatalogFilter
from mcpreg.catalog.gcpause import collector_paused
from mcpreg.catalog.hashing import canonical_json, content_hash
from mcpreg.catalog.upstream_models import OFFICIAL_META_KEY
from mcpreg.catalog.versions import VersionCandidate, latest_index

EntryStatus = Literal["active", "deprecated", "deleted"]
UpstreamDocumentShape = Literal["wrapped", "response", "list"]

# Where a canonical document keeps what the v0.1 list shape has no place for (registry facts, groups).
CATALOG_META_KEY = "dev.mcpregistry/catalog"
CANONICAL_FORMAT_VERSION = 1
TOOLHIVE_REGISTRY_VERSION = "1.0.0"
EPOCH = "1970-01-01T00:00:00Z"
UPSTREAM_REGISTRY_SCHEMA_URL = (
    "https://raw.githubusercontent.com/stacklok/toolhive/main/pkg/registry/data/upstream-registry.schema.json"
)


@dataclass(frozen=True, slots=True, eq=False)
class CatalogEntry:
    """One version of one server.

    `server` is the server.json as it is served; like everything in a catalogue it is shared, so treat
    it as read-only. `toolhive` is the ToolHive form the entry was read from (ToolHive sources only);
    for upstream sources the ToolHive form is derived on demand. `response_meta` keeps any other
    `_meta` keys a v0.1 list-response entry carried besides the official block.
    """

    name: str
    version: str
    server: Mapping[str, Any]
    status: EntryStatus = "active"
    # Why the status is what it is (a deprecation's migration advice), as the official registry says it.
    status_message: str | None = None
    published_at: str | None = None
    updated_at: str | None = None
    is_latest: bool = False
    tags: tuple[str, ...] = ()
    toolhive: ToolHiveForm | None = None
    response_meta: Mapping[str, Any] | None = None

    @property
    def short_name(self) -> str:
        """The part of the name after the slash (`fetch` for `io.github.stacklok/fetch`)."""
        return self.name.rsplit("/", 1)[-1]

    def official_meta(self) -> dict[str, Any]:
        """`_meta["io.modelcontextprotocol.registry/official"]` for this version."""
        meta: dict[str, Any] = {"status": self.status, "isLatest": self.is_latest}
        if self.status_message is not None:
            meta["statusMessage"] = self.status_message
        if self.published_at is not None:
            meta["publishedAt"] = self.published_at
        if self.updated_at is not None:
            meta["updatedAt"] = self.updated_at
        return meta

    def to_response_entry(self) -> dict[str, Any]:
        """`{"server": …, "_meta": …}`, one item of a v0.1 `servers` list."""
        meta: dict[str, Any] = dict(self.response_meta) if self.response_meta else {}
        meta[OFFICIAL_META_KEY] = self.official_meta()
        return {"server": self.server, "_meta": meta}


@dataclass(frozen=True, slots=True)
class RegistryInfo:
    """Facts about the catalogue as a whole, kept so that its ToolHive view says what its source said."""

    version: str | None = None
    last_updated: str | None = None
    schema_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CatalogGroup:
    """A named set of servers meant to be deployed together (ToolHive groups)."""

    name: str
    description: str
    entries: tuple[CatalogEntry, ...]


class Catalog:
    """A parsed, validated, normalised catalogue. Build it with `parse_catalog`."""

    def __init__(
        self,
        entries: Sequence[CatalogEntry],
        *,
        source_format: CatalogFormat,
        registry: RegistryInfo | None = None,
        groups: Sequence[CatalogGroup] = (),
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self.source_format: CatalogFormat = source_format
        self.registry: RegistryInfo = registry or RegistryInfo()
        self.groups: tuple[CatalogGroup, ...] = tuple(
            dataclasses.replace(group, entries=_with_latest_flags(group.entries)) for group in groups
        )
        self.namespace = namespace
        self.entries: tuple[CatalogEntry, ...] = _with_latest_flags(entries)
        by_name: dict[str, list[CatalogEntry]] = {}
        for entry in self.entries:
            by_name.setdefault(entry.name, []).append(entry)
        self._versions: dict[str, tuple[CatalogEntry, ...]] = {n: tuple(v) for n, v in by_name.items()}
        self._latest: dict[str, CatalogEntry] = {
            entry.name: entry for entry in self.entries if entry.is_latest
        }
        self._by_version: dict[tuple[str, str], CatalogEntry] = {(e.name, e.version): e for e in self.entries}

    # --- lookups (hot paths: plain dictionary reads) ---------------------------------------------------

    @property
    def server_count(self) -> int:
        """Distinct servers (names), as reported in status.syncStatus.serverCount."""
        return len(self._versions)

    @property
    def entry_count(self) -> int:
        """Server versions."""
        return len(self.entries)

    def names(self) -> list[str]:
        """Server names, in catalogue order."""
        return list(self._versions)

    def versions(self, name: str) -> tuple[CatalogEntry, ...]:
        """Every version of `name`, in publish order (empty when unknown)."""
        return self._versions.get(name, ())

    def latest(self, name: str) -> CatalogEntry | None:
        """The latest version of `name` (None when unknown)."""
        return self._latest.get(name)

    def get(self, name: str, version: str = "latest") -> CatalogEntry | None:
        """One version of a server; `latest` is an alias for the latest version."""
        if version == "latest":
            return self._latest.get(name)
        return self._by_version.get((name, version))

    def latest_entries(self) -> list[CatalogEntry]:
        """The latest version of each server, in catalogue order."""
        return [entry for entry in self.entries if entry.is_latest]

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return (
            f"Catalog(source_format={self.source_format!r}, servers={self.server_count}, "
            f"versions={self.entry_count})"
        )

    # --- views ---------------------------------------------------------------------------------------------

    def upstream_view(self) -> list[dict[str, Any]]:
        """Every version as `{"server": …, "_meta": …}`, in catalogue order (computed once; read-only)."""
        return self._upstream

    @cached_property
    def _upstream(self) -> list[dict[str, Any]]:
        with collector_paused():
            return [entry.to_response_entry() for entry in self.entries]

    def toolhive_view(self) -> dict[str, Any]:
        """The whole catalogue as a ToolHive registry document (computed once; read-only)."""
        return self._toolhive[0]

    @property
    def toolhive_skipped(self) -> tuple[ToolHiveOmission, ...]:
        """Latest versions the ToolHive view had to leave out, with the reason for each."""
        return self._toolhive[1]

    @cached_property
    def _toolhive(self) -> tuple[dict[str, Any], tuple[ToolHiveOmission, ...]]:
        with collector_paused():
            return self._build_toolhive()

    def _build_toolhive(self) -> tuple[dict[str, Any], tuple[ToolHiveOmission, ...]]:
        skipped: list[ToolHiveOmission] = []
        servers, remote_servers = _toolhive_maps(self.latest_entries(), skipped)
        document: dict[str, Any] = {}
        if self.registry.schema_url is not None:
            document["$schema"] = self.registry.schema_url
        document["version"] = self.registry.version or TOOLHIVE_REGISTRY_VERSION
        document["last_updated"] = self.registry.last_updated or self._newest_update()
        document["servers"] = servers
        document["remote_servers"] = remote_servers
        groups = []
        for group in self.groups:
            latest_members = [entry for entry in group.entries if entry.is_latest]
            group_servers, group_remotes = _toolhive_maps(latest_members, skipped)
            rendered: dict[str, Any] = {"name": group.name, "description": group.description}
            if group_servers:
                rendered["servers"] = group_servers
            if group_remotes:
                rendered["remote_servers"] = group_remotes
            groups.append(rendered)
        if groups:
            document["groups"] = groups
        for key, value in self.registry.extra.items():
            document.setdefault(key, value)
        return document, tuple(skipped)

    def _newest_update(self) -> str:
        stamps = [e.updated_at for e in self.entries if e.updated_at is not None]
        return max(stamps) if stamps else EPOCH

    def upstream_document(self, shape: UpstreamDocumentShape = "wrapped") -> Any:
        """The catalogue as an upstream document to write to a file.

        - `wrapped`: `{"$schema", "version", "meta": {"last_updated"}, "data": {"servers": [server.json]}}`,
          ToolHive's upstream registry file (upstream-registry.schema.json), groups included;
        - `response`: a v0.1 list response, `{"servers": [{"server", "_meta"}], "metadata": {"count"}}`;
        - `list`: a bare list of server.json.
        """
        if shape == "response":
            return {"servers": self._upstream, "metadata": {"count": len(self.entries)}}
        if shape == "list":
            return [entry.server for entry in self.entries]
        data: dict[str, Any] = {"servers": [entry.server for entry in self.entries]}
        if self.groups:
            data["groups"] = [
                {
                    "name": group.name,
                    "description": group.description,
                    "servers": [entry.server for entry in group.entries],
                }
                for group in self.groups
            ]
        return {
            "$schema": UPSTREAM_REGISTRY_SCHEMA_URL,
            "version": self.registry.version or TOOLHIVE_REGISTRY_VERSION,
            "meta": {"last_updated": self.registry.last_updated or self._newest_update()},
            "data": data,
        }

    # --- canonical form and hash ---------------------------------------------------------------------------

    def canonical_document(self) -> dict[str, Any]:
        """The catalogue as one JSON value that `parse_catalog` reads back into an equal catalogue.

        It has the v0.1 list-response shape (so it is an upstream document any reader understands),
        plus a `_meta` block with what that shape has no place for: the source format, the registry
        facts, and groups.
        """
        registry: dict[str, Any] = {}
        if self.registry.version is not None:
            registry["version"] = self.registry.version
        if self.registry.last_updated is not None:
            registry["lastUpdated"] = self.registry.last_updated
        if self.registry.schema_url is not None:
            registry["$schema"] = self.registry.schema_url
        if self.registry.extra:
            registry["extra"] = dict(self.registry.extra)
        catalog_meta: dict[str, Any] = {
            "formatVersion": CANONICAL_FORMAT_VERSION,
            "sourceFormat": self.source_format,
            "registry": registry,
        }
        if self.groups:
            catalog_meta["groups"] = [
                {
                    "name": group.name,
                    "description": group.description,
                    "servers": [entry.to_response_entry() for entry in group.entries],
                }
                for group in self.groups
            ]
        return {
            "servers": self._upstream,
            "metadata": {"count": len(self.entries)},
            "_meta": {CATALOG_META_KEY: catalog_meta},
        }

    def canonical_json(self) -> bytes:
        """Canonical JSON bytes of `canonical_document()` (computed once)."""
        return self._canonical

    @cached_property
    def _canonical(self) -> bytes:
        with collector_paused():
            return canonical_json(self.canonical_document())

    @cached_property
    def content_hash(self) -> str:
        """`sha256:<hex>` of the canonical JSON: equal for catalogues with equal content."""
        return content_hash(self._canonical)

    # --- filtering -----------------------------------------------------------------------------------------

    def filtered(self, catalog_filter: CatalogFilter) -> Catalog:
        """A new catalogue with only the entries the filter keeps (`latest` recomputed)."""
        if catalog_filter.is_everything:
            return self
        with collector_paused():
            return self._filtered(catalog_filter)

    def _filtered(self, catalog_filter: CatalogFilter) -> Catalog:
        keeps = catalog_filter.keeps
        groups = [
            CatalogGroup(
                name=group.name,
                description=group.description,
                entries=tuple(e for e in group.entries if keeps(e.name, e.tags)),
            )
            for group in self.groups
        ]
        return Catalog(
            [entry for entry in self.entries if keeps(entry.name, entry.tags)],
            source_format=self.source_format,
            registry=self.registry,
            groups=groups,
            namespace=self.namespace,
        )


def _with_latest_flags(entries: Sequence[CatalogEntry]) -> tuple[CatalogEntry, ...]:
    """Entries with `is_latest` set on exactly one version per name."""
    indices_by_name: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        indices_by_name.setdefault(entry.name, []).append(index)
    latest: set[int] = set()
    for indices in indices_by_name.values():
        if len(indices) == 1:
            latest.add(indices[0])
            continue
        candidates = [
            VersionCandidate(entries[i].version, entries[i].published_at, entries[i].status == "deleted")
            for i in indices
        ]
        chosen = latest_index(candidates)
        if chosen is not None:
            latest.add(indices[chosen])
    return tuple(
        entry
        if entry.is_latest == (index in latest)
        else dataclasses.replace(entry, is_latest=index in latest)
        for index, entry in enumerate(entries)
    )


@dataclass(frozen=True, slots=True)
class ToolHiveOmission:
    """A server left out of the ToolHive view, and why (it stays in the upstream view)."""

    name: str
    version: str
    reason: str


def _toolhive_maps(
    entries: Sequence[CatalogEntry], skipped: list[ToolHiveOmission]
) -> tuple[dict[str, Any], dict[str, Any]]:
    servers: dict[str, Any] = {}
    remote_servers: dict[str, Any] = {}
    for entry in entries:
        form = _toolhive_form(entry)
        if isinstance(form, str):
            reason = form
        elif form.key in servers or form.key in remote_servers:
            reason = f"its ToolHive name {form.key!r} is already taken"
        else:
            (servers if form.kind == "container" else remote_servers)[form.key] = form.data
            continue
        skipped.append(ToolHiveOmission(entry.name, entry.version, reason))
    return servers, remote_servers


def _toolhive_form(entry: CatalogEntry) -> ToolHiveForm | str:
    """The entry as ToolHive's format holds it (the author's own, or converted), or why it has none."""
    if entry.status == "deleted":
        return "is deleted"
    if entry.toolhive is not None:
        return entry.toolhive
    key = toolhive_key(entry.name)
    if key is None:
        return "has no name usable as a ToolHive server name"
    converted = server_json_to_toolhive(entry.server, key, entry.status)
    return converted.reason if isinstance(converted, NotExpressible) else converted
