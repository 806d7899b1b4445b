"""The app factory: routes, middleware, and the background task that keeps the catalogue current."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from mcpreg.storage.interfaces import CatalogReader
from mcpreg_api.auth.middleware import Authenticator, ProtectedResource, auth_middleware
from mcpreg_api.builder import SnapshotBuilder, build_off_loop
from mcpreg_api.config import HttpConfig
from mcpreg_api.cors import CorsPolicy, answer_options
from mcpreg_api.extensions import ExtensionRoutes, RegistryIdentity
from mcpreg_api.loader import CatalogLoader, CatalogState
from mcpreg_api.manners import manners_middleware
from mcpreg_api.metrics import ApiMetrics
from mcpreg_api.openapi import OpenApiRoutes, rendered_documents
from mcpreg_api.ops import OpsRoutes
from mcpreg_api.page.routes import CataloguePageRoutes
from mcpreg_api.routes_v01 import RegistryRoutes
from mcpreg_api.signed import SignedDocumentRoutes
from mcpreg_api.toolhive import ToolHiveRedirect, ToolHiveRoutes

STATE = web.AppKey("mcpreg_state", CatalogState)
LOADER = web.AppKey("mcpreg_loader", CatalogLoader)
METRICS = web.AppKey("mcpreg_metrics", ApiMetrics)
CONFIG = web.AppKey("mcpreg_config", HttpConfig)


def create_app(
    reader: CatalogReader,
    *,
    config: HttpConfig | None = None,
    build: SnapshotBuilder = build_off_loop,
    toolhive_redirect: ToolHiveRedirect | None = None,
    identity: RegistryIdentity | None = None,
    authenticator: Callable[[ApiMetrics], Authenticator] | None = None,
    realm: str = "",
    protected_resource: ProtectedResource | None = None,
) -> web.Application:
    """The registry API serving what `reader` yields.

    `toolhive_redirect` (optional) makes `GET /api/v1/registry` answer 302 to the URL it returns
    (a presigned S3 download of the same generation) instead of sending the document. `identity`
    (which registry this is, where its catalogue comes from) is what the info extension reports.
    `authenticator` (optional; built with the app's metrics) decides who may read; without it anyone
    may. `realm` is what its 401 challenges name; `protected_resource` (auth mode oidc) is served as
    RFC 9728 metadata and named in them.

    The app listens at once; `/readiness` turns 200 when the first catalogue has loaded. Data
    endpoints answer 503 until then.
    """
    config = config or HttpConfig()
    state = CatalogState()
    metrics = ApiMetrics()
    loader = CatalogLoader(reader, state, metrics, build)
    cors = CorsPolicy(config.cors)
    middlewares = [manners_middleware(metrics)]
    if authenticator is not None:
        # Inside manners: refusals are counted in the metrics and rendered as JSON problems like the rest.
        middlewares.append(auth_middleware(authenticator(metrics), realm, protected_resource))
    app = web.Application(
        middlewares=middlewares,
        client_max_size=64 * 1024,  # a read-only API has no use for request bodies
    )
    app[STATE] = state
    app[LOADER] = loader
    app[METRICS] = metrics
    app[CONFIG] = config
    RegistryRoutes(state, config).register(app)
    ToolHiveRoutes(state, config, toolhive_redirect).register(app)
    ExtensionRoutes(state, config, identity or RegistryIdentity()).register(app)
    SignedDocumentRoutes(state, config).register(app)
    OpsRoutes(state, metrics).register(app)
    OpenApiRoutes().register(app)
    CataloguePageRoutes(state).register(app)
    if protected_resource is not None:
        protected_resource.register(app)
    answer_options(app, cors)  # after every route: each answers OPTIONS (CORS preflights)
    rendered_documents()  # fail at start-up, not on the first request, if the document cannot be built
    app.cleanup_ctx.append(_follow_catalog)
    app.on_response_prepare.append(_close_when_draining)

    async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
        cors.decorate(request, response)

    app.on_response_prepare.append(add_cors_headers)
    return app


async def _close_when_draining(request: web.Request, response: web.StreamResponse) -> None:
    # Keep-alive clients must reconnect (to another replica) rather than reuse a connection to a
    # server that is about to close.
    if request.app[STATE].draining:
        # The hook runs after aiohttp prepared the headers: say it, and close after this response.
        response.headers["Connection"] = "close"
        response.force_close()


async def _follow_catalog(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[LOADER].run(), name="mcpreg-catalog-loader")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
