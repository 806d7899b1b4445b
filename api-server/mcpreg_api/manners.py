"""HTTP manners: conditional requests, compression, caching headers, errors as JSON, metrics, limits.

`send` answers with a precomputed body: `304 Not Modified` when If-None-Match names its ETag, gzip when
the client accepts it and the body is worth compressing, and `ETag`, `Cache-Control` and
`Vary: Accept-Encoding` always. `manners_middleware` turns every failure into a JSON problem body
(4xx for anything a client sent, 503 while no data is loaded, 500 only for a bug - logged with its
traceback) and records each request in the metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from mcpreg_api.errors import PROBLEM_CONTENT_TYPE, ApiError
from mcpreg_api.metrics import ApiMetrics
from mcpreg_api.rendering import Rendered

log = logging.getLogger("mcpreg_api")

JSON_CONTENT_TYPE = "application/json"
GZIP_SUFFIX = "-gzip"

ROUTE_KEY = web.RequestKey("mcpreg_route", str)
"""A handler may set this to name its route template for metrics when the router's differs."""


# Bodies above this are written in chunks, each once the socket has taken the previous one: asyncio
# copies whatever a socket does not take at once into the connection's buffer, so sixty-four clients
# fetching a 12 MB catalogue in one write each would pin 768 MB of copies.
STREAM_ABOVE = 256 * 1024
STREAM_CHUNK = 128 * 1024


async def send(
    request: web.Request,
    rendered: Rendered,
    *,
    cache_control: str,
    content_type: str = JSON_CONTENT_TYPE,
    extra_headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Answer with `rendered`, honouring If-None-Match and Accept-Encoding; `extra_headers` go on every
    answer, 304 included (the page's Content-Security-Policy)."""
    use_gzip = rendered.compressible and accepts_gzip(request.headers.get("Accept-Encoding", ""))
    etag = rendered.etag[:-1] + GZIP_SUFFIX + '"' if use_gzip else rendered.etag
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    headers.update(extra_headers or {})
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and etag_matches(if_none_match, rendered.etag):
        return web.Response(status=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
        body = rendered.gzipped()
    else:
        body = rendered.body
    headers["Content-Type"] = content_type
    if len(body) <= STREAM_ABOVE or request.method == "HEAD":
        return web.Response(body=body, headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    view = memoryview(body)
    for start in range(0, len(body), STREAM_CHUNK):
        await response.write(view[start : start + STREAM_CHUNK])
    await response.write_eof()
    return response


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2), treating our gzip variant as the same representation."""
    wanted = etag.strip('"')
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        tag = tag.strip('"')
        if tag.endswith(GZIP_SUFFIX):
            tag = tag[: -len(GZIP_SUFFIX)]
        if tag == wanted:
            return True
    return False


def accepts_gzip(accept_encoding: str) -> bool:
    """True when Accept-Encoding lists gzip (or *) with a non-zero q-value."""
    if not accept_encoding:
        return False
    star: bool | None = None
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding == "*":
            star = quality > 0
        else:
            return quality > 0
    return bool(star)


def json_response(
    body: bytes, *, status: int = 200, cache_control: str, content_type: str = JSON_CONTENT_TYPE
) -> web.Response:
    return web.Response(
        body=body, status=status, headers={"Content-Type": content_type, "Cache-Control": cache_control}
    )


def problem_response(error: ApiError) -> web.Response:
    headers = {"Content-Type": PROBLEM_CONTENT_TYPE, "Cache-Control": "no-store", **error.headers}
    return web.Response(status=error.status, body=error.body(), headers=headers)


def _route_of(request: web.Request) -> str:
    named = request.get(ROUTE_KEY)
    if named is not None:
        return str(named)
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def manners_middleware(metrics: ApiMetrics) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 499  # stays so only when the client went away mid-request
        metrics.in_flight.inc()
        try:
            response = await _answer(request, handler)
            status = response.status
            return response
        finally:
            metrics.in_flight.dec()
            metrics.observe_request(_route_of(request), request.method, status, time.perf_counter() - started)

    return middleware


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return problem_response(error)
    except web.HTTPException as exc:
        return _problem_from_http_exception(exc)
    except ConnectionError:
        raise  # the client went away mid-response: nothing to answer, nothing to log
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return problem_response(ApiError(500, "internal error; the server log has the details"))


def _problem_from_http_exception(exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:
        return exc  # redirects and the like pass through unchanged
    if exc.status == 404:
        detail = "no such endpoint; see /openapi.yaml"
    elif exc.status == 405:
        detail = "method not allowed; this API is read-only (GET, HEAD and OPTIONS)"
    else:
        detail = exc.reason
    error = ApiError(exc.status, detail)
    allow = exc.headers.get("Allow")
    if allow:
        error.headers["Allow"] = allow
    return problem_response(error)
