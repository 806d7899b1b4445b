"""The catalogue page's routes.

    GET /                          the list (the same as /catalog/)
    GET /catalog/                  the list; ?q= tag= tier= transport= status= filter it without script
    GET /catalog/servers/{name}    one server (?version= for another than the latest)
    GET /catalog/generation        {"generation", "servers"}: what the script polls to follow reloads
    GET /catalog/assets/{file}     the stylesheet and the script

Pages are sent like the JSON endpoints (`manners.send`: ETag, 304, gzip), with `Cache-Control: no-cache`
so a browser always revalidates (a 304 when nothing changed), and a Content-Security-Policy that lets
the page load only this server's own stylesheet and script. The page data of a generation is built
once, in a worker thread, by the first request that needs it.
"""

from __future__ import annotations

import asyncio
import hashlib
from importlib import resources
from urllib.parse import unquote

from aiohttp import web

from mcpreg_api.config import DOCUMENT_CACHE_CONTROL
from mcpreg_api.errors import ApiError
from mcpreg_api.loader import CatalogState
from mcpreg_api.manners import ROUTE_KEY, send
from mcpreg_api.page.facts import server_facts
from mcpreg_api.page.html import PREFIX, card_html, detail_page, error_page, list_page
from mcpreg_api.page.model import PageData, PageQuery, build_page_data
from mcpreg_api.page.snippets import snippets
from mcpreg_api.queries import parse_query
from mcpreg_api.rendering import Rendered, dump_json, make_etag
from mcpreg_api.routes_v01 import current_snapshot
from mcpreg_api.snapshot import Snapshot

HTML = "text/html; charset=utf-8"
PAGE_CACHE_CONTROL = "no-cache"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ASSETS = {"catalog.css": "text/css; charset=utf-8", "catalog.js": "text/javascript; charset=utf-8"}
ROUTE_DETAIL = f"{PREFIX}/servers/{{name}}"
PAGE_ROUTES = frozenset(
    {
        "/",
        PREFIX,
        f"{PREFIX}/",
        f"{PREFIX}/generation",
        f"{PREFIX}/assets/{{file}}",
        f"{PREFIX}/servers/{{tail}}",
    }
)
"""The page's routes (`resource.canonical`): a web page, not part of the API's OpenAPI document."""


def _load_assets() -> tuple[dict[str, Rendered], str]:
    folder = resources.files("mcpreg_api.page").joinpath("assets")
    loaded = {name: folder.joinpath(name).read_bytes() for name in ASSETS}
    version = hashlib.blake2b(b"".join(loaded.values()), digest_size=6).hexdigest()
    return {name: Rendered(body, make_etag("asset", name, version)) for name, body in loaded.items()}, version


class CataloguePageRoutes:
    def __init__(self, state: CatalogState) -> None:
        self.state = state
        self.assets, self.asset_version = _load_assets()
        self._data: tuple[str, asyncio.Future[PageData]] | None = None

    def register(self, app: web.Application) -> None:
        app.router.add_get("/", self.list)
        app.router.add_get(PREFIX, self.to_prefix)
        app.router.add_get(f"{PREFIX}/", self.list)
        app.router.add_get(f"{PREFIX}/generation", self.generation)
        app.router.add_get(f"{PREFIX}/assets/{{file}}", self.asset)
        app.router.add_get(f"{PREFIX}/servers/{{tail:.+}}", self.detail)

    async def to_prefix(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=308, headers={"Location": f"{PREFIX}/", "Cache-Control": PAGE_CACHE_CONTROL}
        )

    async def list(self, request: web.Request) -> web.StreamResponse:
        if (not_ready := self._not_ready()) is not None:
            return not_ready
        snapshot = current_snapshot(self.state)
        try:
            query = parse_query(PageQuery, request.query)
        except ApiError as error:
            return await self._error_page(request, snapshot, error.status, "Bad filter", error.detail)
        data = await self._page_data(snapshot)
        key = ("page-list", self.asset_version, *query.cache_key(), query.q, query.tier)
        rendered = snapshot.cache.get_or_render(
            key,
            lambda: Rendered(
                list_page(data, query, assets=self.asset_version).encode(), snapshot.etag(*map(str, key))
            ),
        )
        return await self._send_page(request, rendered)

    async def detail(self, request: web.Request) -> web.StreamResponse:
        request[ROUTE_KEY] = ROUTE_DETAIL
        if (not_ready := self._not_ready()) is not None:
            return not_ready
        snapshot = current_snapshot(self.state)
        tail = request.rel_url.raw_path[len(f"{PREFIX}/servers/") :]
        name = unquote(tail, errors="replace")
        version = request.query.get("version", "")
        data = await self._page_data(snapshot)
        index = snapshot.names.get(name)
        card = data.by_name.get(name)
        if index is None or card is None:
            return await self._error_page(
                request, snapshot, 404, "No such server", f"No server is named {name!r}."
            )
        entry = index.by_version.get(version) if version else index.latest
        if entry is None:
            detail = f"{name!r} has no version {version!r}."
            return await self._error_page(request, snapshot, 404, "No such version", detail)
        registry = _origin(request)
        key = ("page-detail", self.asset_version, name, entry.version, registry)

        def render() -> Rendered:
            facts = card.facts if entry.version == card.facts.version else server_facts(entry)
            page = detail_page(
                data, facts, index.versions, snippets(facts, registry), assets=self.asset_version
            )
            return Rendered(page.encode(), snapshot.etag(*key))

        return await self._send_page(request, snapshot.cache.get_or_render(key, render))

    async def generation(self, request: web.Request) -> web.StreamResponse:
        snapshot = current_snapshot(self.state)
        body = dump_json({"generation": snapshot.content_hash, "servers": snapshot.server_count})
        rendered = Rendered(body, snapshot.etag("page-generation"))
        return await send(request, rendered, cache_control=PAGE_CACHE_CONTROL, extra_headers=SECURITY_HEADERS)

    async def asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["file"]
        rendered = self.assets.get(name)
        if rendered is None:
            raise ApiError(404, f"no asset {name!r}")
        return await send(
            request,
            rendered,
            cache_control=DOCUMENT_CACHE_CONTROL,
            content_type=ASSETS[name],
            extra_headers=SECURITY_HEADERS,
        )

    # --- helpers -------------------------------------------------------------------------------------

    def _not_ready(self) -> web.Response | None:
        """The 503 page while no catalogue is loaded (an HTML page, not the JSON problem)."""
        if self.state.snapshot is not None:
            return None
        detail = "No catalogue is loaded yet" + (
            f" ({self.state.last_error})." if self.state.last_error else "."
        )
        body = error_page(503, "Not ready", detail, generation="", servers=0, assets=self.asset_version)
        return _html_response(503, body, {"Retry-After": "1"})

    async def _page_data(self, snapshot: Snapshot) -> PageData:
        """The page data of `snapshot`, built once (in a thread) by the first request that needs it."""
        if self._data is None or self._data[0] != snapshot.content_hash:
            future = asyncio.get_running_loop().run_in_executor(None, build_page_data, snapshot, card_html)
            self._data = (snapshot.content_hash, asyncio.ensure_future(future))
        return await asyncio.shield(self._data[1])

    async def _send_page(self, request: web.Request, rendered: Rendered) -> web.StreamResponse:
        return await send(
            request,
            rendered,
            cache_control=PAGE_CACHE_CONTROL,
            content_type=HTML,
            extra_headers=SECURITY_HEADERS,
        )

    async def _error_page(
        self, request: web.Request, snapshot: Snapshot, status: int, title: str, detail: str
    ) -> web.Response:
        body = error_page(
            status,
            title,
            detail,
            generation=snapshot.content_hash,
            servers=snapshot.server_count,
            assets=self.asset_version,
        )
        return _html_response(status, body)


def _html_response(status: int, body: str, headers: dict[str, str] | None = None) -> web.Response:
    headers = {"Content-Type": HTML, "Cache-Control": "no-store", **SECURITY_HEADERS, **(headers or {})}
    return web.Response(status=status, body=body.encode(), headers=headers)


def _origin(request: web.Request) -> str:
    """This registry's URL as the browser reached it (for `thv config set-registry`)."""
    try:
        return str(request.url.origin())
    except ValueError:
        return "http://REGISTRY-HOST"
