"""HTTP for URL sources: one GET (conditional when validators are known) with the operator's rules.

What is refused, and why:
- http:// unless the operator allows it (`MCPREG_ALLOW_INSECURE_HTTP_SOURCES`, chart value
  `operator.allowInsecureHttpSources`): a document fetched in clear text can be changed on the way.
- link-local addresses (169.254.0.0/16, fe80::/10, and AWS's fd00:ec2::254): the cloud metadata
  services live there, and would hand the operator's cloud credentials to whoever can write a
  MCPRegistry. Checked for literal addresses and, through the resolver, for every name resolved,
  redirects included, so a name that resolves there (or later rebinds there) is refused too.
- redirects other than the spec's `redirects` policy allows, any redirect from https:// to http://,
  and more than five in a row. Credentials never follow a redirect to another origin.
Bodies are read in chunks and reading stops past the byte limit; the whole exchange has one deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from mcpreg.catalog.limits import describe_bytes
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.spec.source_url import RedirectPolicy

INSECURE_HTTP_ENV = "MCPREG_ALLOW_INSECURE_HTTP_SOURCES"
CHART_VALUE = "operator.allowInsecureHttpSources"
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_REFUSED_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


@dataclass(frozen=True)
class UrlPolicy:
    """The operator-wide rules for URL sources."""

    allow_http: bool = False

    @classmethod
    def parse(cls, value: str) -> UrlPolicy:
        text = value.strip().lower()
        if text in ("", "false", "0", "no"):
            return cls(allow_http=False)
        if text in ("true", "1", "yes"):
            return cls(allow_http=True)
        raise ValueError(f"{INSECURE_HTTP_ENV}: {value!r} is neither true nor false")

    @classmethod
    def from_environment(cls) -> UrlPolicy:
        return cls.parse(os.environ.get(INSECURE_HTTP_ENV, ""))


def display(url: URL) -> str:
    """A URL for messages: no query (a redirect may carry a presigned token there), no userinfo."""
    shown = url.with_user(None).with_query(None).with_fragment(None)
    return str(shown) + ("?…" if url.query_string else "")


def refused_address(host: str) -> bool:
    """Whether `host`, an IP address, is one the operator never connects to."""
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _REFUSED_NETWORKS)


class RefusedAddressError(OSError):
    """A name resolved to a refused address (raised inside aiohttp's connector)."""


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to a link-local address (before connecting)."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if refused_address(str(result["host"])):
                raise RefusedAddressError(f"{host} resolves to the link-local address {result['host']}")
        return results

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class Validators:
    """What the last 200 answer said about the document, for the next conditional GET."""

    etag: str | None
    last_modified: str | None
    revision: str

    def headers(self) -> dict[str, str]:
        out = {}
        if self.etag:
            out["If-None-Match"] = self.etag
        if self.last_modified:
            out["If-Modified-Since"] = self.last_modified
        return out


@dataclass(frozen=True)
class Answer:
    """One final answer: 304 (body None) or 200 with the whole body."""

    status: int
    body: bytes | None
    etag: str | None
    last_modified: str | None
    url: URL


@dataclass(frozen=True)
class Request:
    url: URL
    what: str  # "the catalogue" / "the signature", for messages
    max_bytes: int
    timeout_s: float
    redirects: RedirectPolicy
    credentials: dict[str, str]  # headers sent only to url's origin
    credentials_origin: str  # where they came from ("Secret ns/name"), for 401/403 messages
    conditional: dict[str, str]
    limit_field: str = "source.url.maxBytes"  # where max_bytes comes from, for messages
    field_prefix: str = "source.url"  # the spec object whose settings apply, for messages


def check_url(url: URL, policy: UrlPolicy, *, field: str) -> None:
    """Refuse what the operator never fetches, whatever the CRD admitted."""
    if url.scheme not in ("https", "http") or not url.host:
        raise SourceError(SourceErrorKind.INVALID_REFERENCE, f"{field} {display(url)} is not an https:// URL")
    if url.user is not None or url.password is not None:
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE,
            f"{field} must not contain credentials; put them in a Secret referenced by auth.secretRef",
        )
    if url.scheme == "http" and not policy.allow_http:
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE,
            f"{field} {display(url)}: http:// is refused by this operator (a document in clear text can be "
            f"changed on the way); use https://, or have the operator allow it ({CHART_VALUE})",
        )
    if refused_address(url.host):
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE,
            f"{field} {display(url)}: link-local addresses (169.254.0.0/16, fe80::/10) are refused: "
            "cloud metadata services answer there",
        )


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host or "", url.port)


def _next_url(current: URL, location: str | None, request: Request, policy: UrlPolicy, hops: int) -> URL:
    where = f"{request.what} at {display(request.url)}"
    if location is None:
        raise SourceError(SourceErrorKind.UNREACHABLE, f"{where}: a redirect without a Location header")
    target = current.join(URL(location))
    refuse = f"{where}: redirect to {display(target)} refused: "
    if request.redirects is RedirectPolicy.REFUSE:
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE, refuse + f"{request.field_prefix}.redirects is Refuse"
        )
    if hops >= MAX_REDIRECTS:
        raise SourceError(SourceErrorKind.INVALID_REFERENCE, refuse + f"more than {MAX_REDIRECTS} redirects")
    if current.scheme == "https" and target.scheme != "https":
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE, refuse + "https:// never redirects to another scheme"
        )
    if request.redirects is RedirectPolicy.SAME_HOST and target.host != request.url.host:
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE,
            refuse + f"another host ({request.field_prefix}.redirects: AnyHost allows it)",
        )
    check_url(target, policy, field="redirect target")
    return target


def _status_error(request: Request, url: URL, status: int, reason: str | None) -> SourceError:
    where = f"{request.what} at {display(url)}: HTTP {status} {reason or ''}".rstrip()
    if status in (401, 403):
        sent = (
            f"the credentials of {request.credentials_origin} were refused"
            if request.credentials and _origin(url) == _origin(request.url)
            else f"no credentials were sent (set {request.field_prefix}.auth.secretRef)"
        )
        return SourceError(SourceErrorKind.AUTHENTICATION, f"{where}: {sent}")
    if status in (404, 410):
        return SourceError(SourceErrorKind.NOT_FOUND, f"{where}: no document there")
    return SourceError(SourceErrorKind.UNREACHABLE, where)


def _too_large(request: Request, url: URL) -> SourceError:
    return SourceError(
        SourceErrorKind.TOO_LARGE,
        f"{request.what} at {display(url)} is larger than the limit of {describe_bytes(request.max_bytes)} "
        f"({request.limit_field})",
    )


async def _read_body(response: aiohttp.ClientResponse, request: Request, url: URL) -> bytes:
    # A Content-Length over the limit is refused before reading (unless encoded: it counts other bytes).
    length = response.content_length
    if length is not None and "Content-Encoding" not in response.headers and length > request.max_bytes:
        raise _too_large(request, url)
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > request.max_bytes:
            raise _too_large(request, url)
    return bytes(body)


async def _exchange(session: aiohttp.ClientSession, request: Request, policy: UrlPolicy) -> Answer:
    url = request.url
    for hops in range(MAX_REDIRECTS + 1):
        headers = dict(request.conditional)
        if _origin(url) == _origin(request.url):
            headers.update(request.credentials)
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            if response.status in _REDIRECTS:
                url = _next_url(url, response.headers.get("Location"), request, policy, hops)
                continue
            if response.status == 304:
                if not request.conditional:
                    raise SourceError(
                        SourceErrorKind.UNREACHABLE,
                        f"{request.what} at {display(url)}: HTTP 304 to a request that was not conditional",
                    )
                return Answer(
                    304, None, response.headers.get("ETag"), response.headers.get("Last-Modified"), url
                )
            if response.status != 200:
                raise _status_error(request, url, response.status, response.reason)
            body = await _read_body(response, request, url)
            return Answer(200, body, response.headers.get("ETag"), response.headers.get("Last-Modified"), url)
    raise AssertionError("unreachable: _next_url refuses the redirect past the limit")


def _find(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "os_error", None)
    return None


async def get(session: aiohttp.ClientSession, request: Request, policy: UrlPolicy) -> Answer:
    """The final answer to `request`; SourceError naming the URL (and the HTTP status) otherwise."""
    where = f"{request.what} at {display(request.url)}"
    try:
        async with asyncio.timeout(request.timeout_s):
            return await _exchange(session, request, policy)
    except SourceError:
        raise
    except TimeoutError:
        raise SourceError(
            SourceErrorKind.UNREACHABLE,
            f"{where}: no complete answer within {request.timeout_s:g}s ({request.field_prefix}.timeout)",
        ) from None
    except aiohttp.ClientConnectorCertificateError as exc:
        detail = getattr(exc.certificate_error, "verify_message", None) or str(exc.certificate_error)
        raise SourceError(
            SourceErrorKind.UNREACHABLE,
            f"{where}: TLS verification failed, the server's certificate is not trusted ({detail}); "
            f"if a private CA issued it, name that CA in {request.field_prefix}.caBundle",
        ) from None
    except aiohttp.ClientSSLError as exc:
        raise SourceError(SourceErrorKind.UNREACHABLE, f"{where}: TLS handshake failed ({exc})") from None
    except aiohttp.ClientConnectorError as exc:
        refused = _find(exc, RefusedAddressError)
        if refused is not None:
            raise SourceError(
                SourceErrorKind.INVALID_REFERENCE,
                f"{where}: refused: {refused} (cloud metadata services answer at link-local addresses)",
            ) from None
        raise SourceError(
            SourceErrorKind.UNREACHABLE,
            f"{where}: cannot connect to {exc.host}:{exc.port} ({exc.strerror or exc})",
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise SourceError(SourceErrorKind.UNREACHABLE, f"{where}: {type(exc).__name__}: {exc}") from None


def client_session(ssl_context: ssl.SSLContext) -> aiohttp.ClientSession:
    """A session for one pass: the guarded resolver, the given trust, no cookies kept between requests."""
    connector = aiohttp.TCPConnector(ssl=ssl_context, resolver=GuardedResolver(), limit=4)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        # HTTPS_PROXY / NO_PROXY of the operator's environment apply, as they do to git.
        trust_env=True,
        headers={"User-Agent": "mcp-registry-operator"},
    )


def ssl_context(ca_pem: str | None) -> ssl.SSLContext:
    """Trust exactly `ca_pem` when given, the system's CAs otherwise. Reads files: call it in a thread."""
    if ca_pem is None:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca_pem)
    return context
