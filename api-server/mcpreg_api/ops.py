"""Operational endpoints: `/health` (liveness), `/readiness`, `/version`, `/metrics`.

`/health` answers 200 as long as the process serves HTTP. `/readiness` answers 200 only once a
catalogue is loaded (503 before, naming the last load problem if there was one), so a Service sends
no traffic to a replica with nothing to serve. None of them is cached.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mcpreg_api import __version__
from mcpreg_api.config import NO_STORE
from mcpreg_api.loader import CatalogState
from mcpreg_api.manners import json_response
from mcpreg_api.metrics import METRICS_CONTENT_TYPE, ApiMetrics
from mcpreg_api.rendering import dump_json

API_VERSIONS = ["v0.1", "v0"]
_HEALTH_BODY = dump_json({"status": "ok"})


class OpsRoutes:
    def __init__(self, state: CatalogState, metrics: ApiMetrics) -> None:
        self.state = state
        self.metrics = metrics

    def register(self, app: web.Application) -> None:
        app.router.add_get("/health", self.health)
        app.router.add_get("/readiness", self.readiness)
        app.router.add_get("/version", self.version)
        app.router.add_get("/metrics", self.prometheus)

    async def health(self, request: web.Request) -> web.StreamResponse:
        return json_response(_HEALTH_BODY, cache_control=NO_STORE)

    async def readiness(self, request: web.Request) -> web.StreamResponse:
        snapshot = self.state.snapshot
        body: dict[str, Any]
        if self.state.draining:
            body = {"status": "not ready", "detail": "shutting down"}
            return json_response(dump_json(body), status=503, cache_control=NO_STORE)
        if snapshot is None:
            body = {"status": "not ready", "detail": self.state.last_error or "no catalogue loaded yet"}
            return json_response(dump_json(body), status=503, cache_control=NO_STORE)
        body = {"status": "ready", "catalog": snapshot.info()}
        if self.state.last_error:
            body["detail"] = f"serving the last good catalogue; {self.state.last_error}"
        return json_response(dump_json(body), cache_control=NO_STORE)

    async def version(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = {"version": __version__, "api_versions": API_VERSIONS}
        snapshot = self.state.snapshot
        if snapshot is not None:
            body["catalog"] = snapshot.info()
        return json_response(dump_json(body), cache_control=NO_STORE)

    async def prometheus(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=self.metrics.render(),
            headers={"Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": NO_STORE},
        )
