"""CORS: browsers (MCP clients in an IDE, a registry web page elsewhere) may read the API cross-origin.

Every answer to a request carrying an allowed `Origin` says so (`Access-Control-Allow-Origin`, and the
headers a page may read: `ETag`, `Retry-After`), errors and 304s included, so a page can tell a 404 from
a blocked request. A preflight (`OPTIONS` with `Access-Control-Request-Method`) to any route is answered
204 with the methods and request headers allowed; an `OPTIONS` without it gets 204 and `Allow`. A
preflight from an origin not allowed gets 403 naming it. Paths that exist for no method stay 404.

With `*` (the default) the answer is the constant `*`, the same for every caller, so shared caches
need no `Vary: Origin`. With a list, the caller's origin is echoed when listed (and `Vary: Origin`
is sent on every answer, since it depends on it); with `allowCredentials` the echo comes with
`Access-Control-Allow-Credentials: true`.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from mcpreg.apiconfig import CorsConfig
from mcpreg_api.errors import ApiError
from mcpreg_api.manners import ROUTE_KEY, problem_response
from mcpreg_api.provenance import HEADER_GENERATION, HEADER_KEY_ID, HEADER_SIGNATURE

ALLOWED_METHODS = "GET, OPTIONS"  # HEAD is a CORS-safelisted method: it needs no listing
ALLOWED_HEADERS = "Authorization, Content-Type, If-None-Match"
# Browsers let a page read only these: the provenance headers too, so a page can check a signature.
EXPOSED_HEADERS = ", ".join(("ETag", "Retry-After", HEADER_GENERATION, HEADER_KEY_ID, HEADER_SIGNATURE))
ALLOW = "GET, HEAD, OPTIONS"
PREFLIGHT_ROUTE = "preflight"  # the metrics route label of OPTIONS answers


class CorsPolicy:
    """`CorsConfig` as the answers it leads to."""

    def __init__(self, config: CorsConfig) -> None:
        self.any_origin = config.any_origin
        self.origins = frozenset(config.allowed_origins)
        self.credentials = config.allow_credentials
        self.max_age = str(config.max_age_seconds)
        self.enabled = bool(self.origins)
        # Every answer to an allowed origin carries these (and its Allow-Origin).
        self._allowed: dict[str, str] = {hdrs.ACCESS_CONTROL_EXPOSE_HEADERS: EXPOSED_HEADERS}
        if self.credentials:
            self._allowed[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"

    def allow_origin(self, origin: str | None) -> str | None:
        """The `Access-Control-Allow-Origin` value for a request from `origin`; None: not allowed."""
        if not self.enabled or origin is None:
            return None
        if self.any_origin:
            return "*"
        return origin if origin in self.origins else None

    def decorate(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        """Add the CORS headers for `request` to `response` (any response: data, error, 304)."""
        if not self.enabled:
            return
        headers = response.headers
        if not self.any_origin:  # the answer depends on Origin: shared caches must keep them apart
            vary = headers.get(hdrs.VARY)
            if vary is None:
                headers[hdrs.VARY] = hdrs.ORIGIN
            elif hdrs.ORIGIN.lower() not in vary.lower():
                headers[hdrs.VARY] = f"{vary}, {hdrs.ORIGIN}"
        allowed = self.allow_origin(request.headers.get(hdrs.ORIGIN))
        if allowed is not None:
            headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed
            headers.update(self._allowed)

    def preflight(self, request: web.Request) -> web.StreamResponse:
        """The answer to an `OPTIONS` request for a route that exists."""
        request[ROUTE_KEY] = PREFLIGHT_ROUTE
        origin = request.headers.get(hdrs.ORIGIN)
        asked = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_METHOD)
        if origin is None or asked is None:  # a plain OPTIONS: what may be done here
            return web.Response(status=204, headers={hdrs.ALLOW: ALLOW})
        if self.allow_origin(origin) is None:
            detail = f"origin {origin!r} may not read this API (it is not in spec.api.cors.allowedOrigins)"
            return problem_response(ApiError(403, detail))
        headers = {
            hdrs.ALLOW: ALLOW,
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: ALLOWED_METHODS,
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ALLOWED_HEADERS,
            hdrs.ACCESS_CONTROL_MAX_AGE: self.max_age,
        }
        return web.Response(status=204, headers=headers)


def answer_options(app: web.Application, policy: CorsPolicy) -> None:
    """Route `OPTIONS` on every resource registered so far to the preflight answer (the routes are GET
    only: aiohttp would say 405). Call it once every route is added."""

    async def options(request: web.Request) -> web.StreamResponse:
        return policy.preflight(request)

    for resource in list(app.router.resources()):
        if isinstance(resource, web.Resource):  # every resource of ours (not static files)
            resource.add_route(hdrs.METH_OPTIONS, options)
