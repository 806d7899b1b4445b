"""`GET /api/v1/registry`: the whole catalogue in ToolHive's registry format.

The document (latest version of each server, as `servers` and `remote_servers` maps, plus groups) is
rendered once per catalogue generation, gzip included, so this endpoint only ever sends bytes. When
the operator signs the catalogue, these bytes are what it signed; the headers say which generation and
key, and carry the signature (see `signed`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from mcpreg.signing import TOOLHIVE_DOCUMENT
from mcpreg_api.config import HttpConfig
from mcpreg_api.loader import CatalogState
from mcpreg_api.manners import send
from mcpreg_api.paths import TOOLHIVE_PATH
from mcpreg_api.provenance import generation_headers
from mcpreg_api.routes_v01 import current_snapshot

ToolHiveRedirect = Callable[[str], Awaitable[str | None]]
"""content hash → a URL the client may download that generation's document from (a presigned S3
GET), or None to send the bytes. See `S3CatalogReader.presigned_toolhive_url`."""

log = logging.getLogger("mcpreg_api.toolhive")


class ToolHiveRoutes:
    def __init__(
        self, state: CatalogState, config: HttpConfig, redirect: ToolHiveRedirect | None = None
    ) -> None:
        self.state = state
        self.cache_control = config.data_cache_control
        self.redirect = redirect

    def register(self, app: web.Application) -> None:
        app.router.add_get(TOOLHIVE_PATH, self.registry)

    async def registry(self, request: web.Request) -> web.StreamResponse:
        snapshot = current_snapshot(self.state)
        provenance = generation_headers(snapshot, TOOLHIVE_DOCUMENT)
        if self.redirect is not None:
            # Large catalogues: let the client download the document from object storage directly.
            # Any failure to sign falls back to sending the bytes, which always works.
            try:
                url = await self.redirect(snapshot.content_hash)
            except Exception as exc:
                log.warning("cannot presign the ToolHive document, sending it instead: %s", exc)
                url = None
            if url is not None:
                return web.Response(
                    status=302, headers={"Location": url, "Cache-Control": "no-store", **provenance}
                )
        return await send(
            request, snapshot.toolhive, cache_control=self.cache_control, extra_headers=provenance
        )
