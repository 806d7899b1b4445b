"""A forwarding HTTP server on loopback: every GET passed on to an upstream (such as the official
registry peer), behind the static file server's optional auth and its log of every request.

The official registry serves its list to anyone; put this in front of it to have a registry that
refuses requests without the right bearer token, and to count the requests a mirror makes (each with
its query string), without changing the registry itself:

    with ForwardingServer(peer.base_url, token="t0ken") as gate:
        gate.base_url                      # what source.api.url names
        gate.requests("/v0.1/servers")     # Served(method, path, status, ..., query)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from mcpreg_dev.fileserver import StaticFileServer

# Headers a client's request may carry on to the upstream, and an answer's back to the client.
_REQUEST_HEADERS = ("Accept", "If-None-Match", "If-Modified-Since")
_ANSWER_HEADERS = ("Content-Type", "ETag", "Last-Modified", "Cache-Control")


class ForwardingServer(StaticFileServer):
    """Forwards GETs to `upstream` (scheme://host:port) once the request passes the auth check."""

    def __init__(self, upstream: str, **options: Any) -> None:
        # No files are served: the root only satisfies the file server's constructor.
        super().__init__(Path("/nonexistent-root"), **options)
        self.upstream = upstream.rstrip("/")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="registry"'})
        headers = {name: request.headers[name] for name in _REQUEST_HEADERS if name in request.headers}
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.upstream + request.raw_path, headers=headers, allow_redirects=False) as upstream,
        ):
            body = await upstream.read()
            answer = {name: upstream.headers[name] for name in _ANSWER_HEADERS if name in upstream.headers}
            return web.Response(status=upstream.status, body=body, headers=answer)
