"""A plain static file server on loopback, for URL sources in the tests.

aiohttp's `web.FileResponse` does what a web server does for a static file: `ETag` and `Last-Modified`
from the file's mtime and size, `304 Not Modified` for a matching `If-None-Match` or
`If-Modified-Since`. Around it: optional TLS (a certificate of `mcpreg_dev.pki`), optional auth (a
bearer token or basic credentials), redirects a test can set, and a log of every request with the
status it got, so a test can prove that an unchanged document cost one request answered 304.
It runs in a thread with its own event loop, like the HTTP fault proxy.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from mcpreg_dev.background import ThreadLoopServer


@dataclass(frozen=True)
class Served:
    """One request and what it got."""

    method: str
    path: str
    status: int
    conditional: bool  # it carried If-None-Match or If-Modified-Since
    authorized: bool  # it carried an Authorization header
    bytes_sent: int  # Content-Length of the answer (0 for a 304)
    query: str = ""  # the query string, as sent


class StaticFileServer(ThreadLoopServer):
    """Serves the files under `root` at `/<relative path>`."""

    what = "the static file server"

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[Path, Path] | None = None,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.host = host
        self.port = port
        self.tls = tls
        self.token = token
        self.basic = basic
        self.redirects: dict[str, str] = {}  # request path -> Location (answered 302)
        self._log: list[Served] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def url(self, relative: str) -> str:
        return f"{self.base_url}/{relative.lstrip('/')}"

    def requests(self, path: str | None = None) -> list[Served]:
        """What was asked so far (of `path` only, when given), oldest first."""
        with self._lock:
            return [r for r in self._log if path is None or r.path == path]

    def _authorized(self, request: web.Request) -> bool:
        if self.token is None and self.basic is None:
            return True
        header = request.headers.get("Authorization", "")
        if self.token is not None and hmac.compare_digest(header, f"Bearer {self.token}"):
            return True
        if self.basic is not None:
            expected = "Basic " + base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            return hmac.compare_digest(header, expected)
        return False

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path in self.redirects:
            raise web.HTTPFound(self.redirects[request.path])
        if not self._authorized(request):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="files"'})
        target = (self.root / request.path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(target)

    async def _record(self, request: web.Request, response: web.StreamResponse) -> None:
        served = Served(
            method=request.method,
            path=request.path,
            status=response.status,
            conditional="If-None-Match" in request.headers or "If-Modified-Since" in request.headers,
            authorized="Authorization" in request.headers,
            bytes_sent=response.content_length or 0,
            query=request.query_string,
        )
        with self._lock:
            self._log.append(served)

    async def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        self._stopping = asyncio.Event()
        context: ssl.SSLContext | None = None
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        # Fired once the status is final: FileResponse decides on 304 while preparing.
        app.on_response_prepare.append(self._record)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port, ssl_context=context)
            await site.start()
            if self.port == 0:
                self.port = int(runner.addresses[0][1])
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            await runner.cleanup()
            return
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()
