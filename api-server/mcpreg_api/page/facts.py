"""What the catalogue page shows of one server version, read from its served body.

The body is the v0.1 answer (`{"server": …, "_meta": …}`) the operator validated, but its free text is
whatever the catalogue's authors wrote: nothing read here is trusted to be markup-safe (the HTML layer
escapes every value) and a field of an unexpected type is treated as absent, never as an error.
ToolHive's publisher extension (tier, tags, tools, permissions, provenance) is read where present.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mcpreg.catalog.convert import stacklok_extensions, toolhive_key
from mcpreg_api.snapshot import EntryView


@dataclass(frozen=True, slots=True)
class Variable:
    """An environment variable (of a package) or a header (of a remote) the user may have to set."""

    name: str
    description: str
    required: bool
    secret: bool
    default: str | None


@dataclass(frozen=True, slots=True)
class Package:
    registry_type: str  # oci, npm, pypi, …
    identifier: str
    version: str | None
    transport: str
    variables: tuple[Variable, ...]


@dataclass(frozen=True, slots=True)
class Remote:
    transport: str  # streamable-http or sse
    url: str
    headers: tuple[Variable, ...]


@dataclass(frozen=True, slots=True)
class ServerFacts:
    name: str
    version: str
    status: str  # active, deprecated or deleted (the registry's status)
    title: str
    description: str
    key: str  # the short name a client knows it by (`thv run KEY`)
    tier: str  # empty when the catalogue says none
    tags: tuple[str, ...]
    tools: tuple[str, ...]
    transports: tuple[str, ...]
    packages: tuple[Package, ...]
    remotes: tuple[Remote, ...]
    permissions: Mapping[str, Any]
    provenance: Mapping[str, Any]
    repository: str | None  # an http(s) URL, or None
    website: str | None
    published: str | None  # RFC 3339, as served
    stars: int | None

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(v for package in self.packages for v in package.variables) + tuple(
            h for remote in self.remotes for h in remote.headers
        )

    def haystack(self) -> str:
        """What search looks in: title, name, description and tags, case-folded (the script does the
        same with the card's text)."""
        return "\n".join((self.title, self.name, self.description, *self.tags)).casefold()


def server_facts(entry: EntryView) -> ServerFacts:
    document = json.loads(entry.body)
    server = _mapping(document.get("server"))
    official = _mapping(_mapping(document.get("_meta")).get("io.modelcontextprotocol.registry/official"))
    packages = tuple(_package(p) for p in _list(server.get("packages")) if isinstance(p, Mapping))
    remotes = tuple(_remote(r) for r in _list(server.get("remotes")) if isinstance(r, Mapping))
    identifier = packages[0].identifier if packages else (remotes[0].url if remotes else None)
    extension = _mapping(stacklok_extensions(server, identifier))
    metadata = _mapping(extension.get("metadata"))
    transports = tuple(dict.fromkeys([p.transport for p in packages] + [r.transport for r in remotes]))
    stars = metadata.get("stars")
    return ServerFacts(
        name=entry.name,
        version=entry.version,
        status=entry.status,
        title=_text(server.get("title")) or toolhive_key(entry.name) or entry.name,
        description=_text(server.get("description")),
        key=toolhive_key(entry.name) or entry.name,
        tier=_text(extension.get("tier")),
        tags=_texts(extension.get("tags")),
        tools=_texts(extension.get("tools")),
        transports=tuple(t for t in transports if t),
        packages=packages,
        remotes=remotes,
        permissions=_mapping(extension.get("permissions")),
        provenance=_mapping(extension.get("provenance")),
        repository=web_url(_mapping(server.get("repository")).get("url")),
        website=web_url(server.get("websiteUrl")),
        published=_text(official.get("publishedAt")) or None,
        stars=stars if type(stars) is int else None,
    )


def web_url(value: Any) -> str | None:
    """`value` when it is an absolute http(s) URL, the only kind the page links to (never `javascript:`)."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def _package(package: Mapping[str, Any]) -> Package:
    return Package(
        registry_type=_text(package.get("registryType")),
        identifier=_text(package.get("identifier")),
        version=_text(package.get("version")) or None,
        transport=_text(_mapping(package.get("transport")).get("type")) or "stdio",
        variables=_variables(package.get("environmentVariables")),
    )


def _remote(remote: Mapping[str, Any]) -> Remote:
    return Remote(
        transport=_text(remote.get("type")),
        url=_text(remote.get("url")),
        headers=_variables(remote.get("headers")),
    )


def _variables(value: Any) -> tuple[Variable, ...]:
    found = []
    for item in _list(value):
        if not isinstance(item, Mapping) or not _text(item.get("name")):
            continue
        default = item.get("default")
        found.append(
            Variable(
                name=_text(item.get("name")),
                description=_text(item.get("description")),
                required=item.get("isRequired") is True,
                secret=item.get("isSecret") is True,
                default=default if isinstance(default, str) else None,
            )
        )
    return tuple(found)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in (_text(v) for v in _list(value)) if t))
