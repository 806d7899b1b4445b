"""MCP Registry API v0.1 (and the same under /v0): list, get, versions.

    GET /v0.1/servers                            ?cursor limit search version updated_since include_deleted
    GET /v0.1/servers/{name}                     the latest version
    GET /v0.1/servers/{name}/versions            every version, newest first
    GET /v0.1/servers/{name}/versions/{version}  one version; `latest` is an alias

Names and versions arrive percent-encoded (`io.github.acme%2Fweather`, `1.0.0%2Bbuild`). The path is
split on literal slashes before decoding, so an encoded slash always belongs to the name. A client that
sends the name's slash unencoded is still understood: of the readings the path allows, the first whose
name exists wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from aiohttp import web

from mcpreg_api.config import HttpConfig
from mcpreg_api.errors import ApiError, not_found
from mcpreg_api.loader import CatalogState
from mcpreg_api.manners import ROUTE_KEY, send
from mcpreg_api.pagination import SortKey, decode_cursor, paginate
from mcpreg_api.provenance import served_entry
from mcpreg_api.queries import DetailQuery, ListServersQuery, parse_query
from mcpreg_api.rendering import Rendered, render_list
from mcpreg_api.snapshot import EntryView, NameIndex, Snapshot

API_PREFIXES = ("/v0.1", "/v0")

# Route templates (metrics labels); PREFIX is replaced by /v0.1 or /v0.
ROUTE_SERVER = "PREFIX/servers/{name}"
ROUTE_VERSIONS = "PREFIX/servers/{name}/versions"
ROUTE_VERSION = "PREFIX/servers/{name}/versions/{version}"


def current_snapshot(state: CatalogState) -> Snapshot:
    """The snapshot to answer from; 503 (with Retry-After) until the first catalogue is loaded."""
    snapshot = state.snapshot
    if snapshot is None:
        detail = "no catalogue loaded yet"
        if state.last_error:
            detail += f" ({state.last_error})"
        raise ApiError(503, detail, headers={"Retry-After": "1"})
    return snapshot


@dataclass(frozen=True, slots=True)
class Target:
    """What a /servers/... path asks for."""

    kind: Literal["server", "versions", "version"]
    name: str
    version: str | None = None


def parse_target(tail: str) -> list[Target]:
    """Readings of the path after `/servers/` (still percent-encoded), most likely first."""
    parts = [unquote(part, errors="replace") for part in tail.split("/")]
    readings: list[Target] = []
    count = len(parts)
    if count == 1:
        readings.append(Target("server", parts[0]))
    elif count == 3 and parts[1] == "versions":
        readings.append(Target("version", parts[0], parts[2]))
    # `{name}/versions`, and readings with an unencoded slash inside the name.
    if count >= 2 and parts[-1] == "versions":
        readings.append(Target("versions", "/".join(parts[:-1])))
    if count >= 3 and parts[-2] == "versions":
        readings.append(Target("version", "/".join(parts[:-2]), parts[-1]))
    if count >= 2:
        readings.append(Target("server", "/".join(parts)))
    return [r for r in readings if r.name and (r.version is None or r.version)]


class RegistryRoutes:
    def __init__(self, state: CatalogState, config: HttpConfig) -> None:
        self.state = state
        self.cache_control = config.data_cache_control

    def register(self, app: web.Application) -> None:
        for prefix in API_PREFIXES:
            app.router.add_get(f"{prefix}/servers", self.list_servers)
            app.router.add_get(f"{prefix}/servers/{{tail:.+}}", self.server_detail)

    # --- GET /servers --------------------------------------------------------------------------------

    async def list_servers(self, request: web.Request) -> web.StreamResponse:
        snapshot = current_snapshot(self.state)
        # Fast path: the same query string as an earlier request of this generation gets the same page.
        raw_key = ("list-raw", request.rel_url.raw_query_string)
        rendered = snapshot.cache.get(raw_key)
        if rendered is None:
            rendered = self._render_list(snapshot, request)
            snapshot.cache.put(raw_key, rendered)
        return await send(request, rendered, cache_control=self.cache_control)

    def _render_list(self, snapshot: Snapshot, request: web.Request) -> Rendered:
        query = parse_query(ListServersQuery, request.query)
        after = decode_cursor(query.cursor) if query.cursor else None
        search = query.search.casefold() if query.search else None
        since = query.updated_since_utc
        key = (
            "list",
            query.latest_only,
            query.with_deleted,
            query.exact_version,
            search,
            since.isoformat() if since else None,
            after,
            query.limit,
        )
        return snapshot.cache.get_or_render(
            key, lambda: _render_page(snapshot, query, search, after, repr(key))
        )

    # --- GET /servers/{name}[/versions[/{version}]] ---------------------------------------------------

    async def server_detail(self, request: web.Request) -> web.StreamResponse:
        snapshot = current_snapshot(self.state)
        query = parse_query(DetailQuery, request.query)
        prefix = "/v0.1" if request.path.startswith("/v0.1/") else "/v0"
        tail = request.rel_url.path_safe[len(prefix) + len("/servers/") :]
        readings = parse_target(tail)
        if not readings:
            request[ROUTE_KEY] = ROUTE_SERVER.replace("PREFIX", prefix)
            raise not_found("no such server")
        target = next((r for r in readings if r.name in snapshot.names), readings[0])
        index = snapshot.names.get(target.name)
        route = {"server": ROUTE_SERVER, "versions": ROUTE_VERSIONS, "version": ROUTE_VERSION}[target.kind]
        request[ROUTE_KEY] = route.replace("PREFIX", prefix)
        if index is None:
            raise not_found(f"server {target.name!r} not found")
        if target.kind == "versions":
            rendered = _versions(snapshot, index, target.name, query.include_deleted)
        else:
            entry = _one_version(index, target.version or "latest", query.include_deleted)
            if entry is None:
                raise not_found(f"server {target.name!r} has no version {target.version or 'latest'!r}")
            rendered = Rendered(
                served_entry(snapshot, entry), snapshot.etag("entry", entry.name, entry.version)
            )
        return await send(request, rendered, cache_control=self.cache_control)


def _render_page(
    snapshot: Snapshot,
    query: ListServersQuery,
    search: str | None,
    after: SortKey | None,
    key: str,
) -> Rendered:
    view = snapshot.view(latest_only=query.latest_only, with_deleted=query.with_deleted)
    keep = _filter(query.exact_version, search, query)
    page = paginate(view.entries, view.keys, after=after, limit=query.limit, keep=keep)
    bodies = (served_entry(snapshot, e) for e in page.items)
    return render_list(bodies, len(page.items), page.next_cursor, snapshot.etag(key))


def _filter(
    version: str | None, search: str | None, query: ListServersQuery
) -> Callable[[EntryView], bool] | None:
    since = query.updated_since_utc
    checks: list[Callable[[EntryView], bool]] = []
    if version is not None:
        checks.append(lambda e: e.version == version)
    if search is not None:
        checks.append(lambda e: search in e.haystack)
    if since is not None:
        checks.append(lambda e: e.updated_at is not None and e.updated_at > since)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda e: all(check(e) for check in checks)


def _one_version(index: NameIndex, version: str, include_deleted: bool) -> EntryView | None:
    entry = index.latest if version == "latest" else index.by_version.get(version)
    if entry is None or (entry.deleted and not include_deleted):
        return None
    return entry


def _versions(snapshot: Snapshot, index: NameIndex, name: str, include_deleted: bool) -> Rendered:
    def render() -> Rendered:
        versions = [v for v in index.versions if include_deleted or not v.deleted]
        if not versions:
            raise not_found(f"server {name!r} has no versions that are not deleted")
        return render_list(
            (served_entry(snapshot, v) for v in versions),
            len(versions),
            None,
            snapshot.etag("versions", name, str(include_deleted)),
        )

    return snapshot.cache.get_or_render(("versions", name, include_deleted), render)
