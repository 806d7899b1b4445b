"""`GET /api/v1/registry`: the whole catalogue in ToolHive's registry format.

The document (latest version of each server, as `servers` and `remote_servers` maps, plus groups) is
rendered once per catalogue generation, gzip included, so this endpoint only ever sends bytes.
"""

from __future__ import annotations

from aiohttp import web

from mcpreg_api.config import ServerConfig
from mcpreg_api.loader import CatalogState
from mcpreg_api.manners import send
from mcpreg_api.routes_v01 import current_snapshot

TOOLHIVE_PATH = "/api/v1/registry"


class ToolHiveRoutes:
    def __init__(self, state: CatalogState, config: ServerConfig) -> None:
        self.state = state
        self.cache_control = config.data_cache_control

    def register(self, app: web.Application) -> None:
        app.router.add_get(TOOLHIVE_PATH, self.registry)

    async def registry(self, request: web.Request) -> web.StreamResponse:
        snapshot = current_snapshot(self.state)
        return send(request, snapshot.toolhive, cache_control=self.cache_control)
