"""An HTTP-aware fault proxy in front of the Kubernetes API server, for the fault-injection tests:
what Toxiproxy (`mcpreg_dev.faultproxy`, TCP only) cannot do, such as answering 429 Too Many
Requests with `Retry-After`, or 500, with the Status body the API server itself would send.

It terminates TLS with a serving certificate issued by the control plane's own CA
(`mcpreg_dev.pki.issue_certificate`), so a client's kubeconfig stays valid with only its server
URL changed, and forwards every request to the real API server over TLS: with the client
certificate of the kubeconfig it was made from, or with the client's own `Authorization` header
(bearer tokens pass through). Responses stream, so watches (`?watch=true`) flow as they arrive.

    proxy = HTTPFaultProxy.for_kubeconfig(control_plane.admin_kubeconfig, control_plane.pki, tmp_dir)
    with proxy:                                            # serves on a free loopback port
        kubeconfig = proxy.write_kubeconfig(tmp_dir / "faulty.kubeconfig")
        proxy.fail(429, method="PATCH", path=r"/mcpregistries/[^/]+/status$", times=2, retry_after=1)
        proxy.fail(500, path=r"^/api/v1/namespaces/[^/]+/configmaps", percent=30)
        proxy.reset_connections(method="GET", watch=True, times=1)   # TCP RST instead of an answer
        proxy.drop_connections()                           # cut every open request, watches included
        proxy.exchanges                                    # what was asked, what was answered
        proxy.clear()                                      # no more faults

Rules are checked in the order they were added; the first that matches and fires decides. A rule
fires for the next `times` matching requests (None: without end), each with probability
`percent`/100 (None: always). The proxy runs its own event loop in a background thread, so sync and
async tests (and the operator in another process) can all use it. Upgrade requests (exec, attach,
port-forward) are not supported.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import re
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import yaml
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from aiohttp.client_exceptions import ClientError

from mcpreg_dev.background import ThreadLoopServer
from mcpreg_dev.pki import ControlPlanePKI, issue_certificate

# The reason the API server gives with each status code (k8s.io/apimachinery metav1.StatusReason).
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def status_body(code: int, message: str, *, retry_after: int | None = None) -> dict[str, Any]:
    """A `Status` object as the API server sends it with an error."""
    details: dict[str, Any] = {"causes": [{"message": message}]}
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "InternalError" if code >= 500 else "BadRequest"),
        "details": details,
        "code": code,
    }


def is_watch(path: str, query: dict[str, str]) -> bool:
    return query.get("watch", "").lower() in ("true", "1") or "/watch/" in path


class RuleMatch(TypedDict, total=False):
    """Which requests a rule is for, and how often it fires (the `FaultRule` fields of the same names)."""

    method: str | None
    path: str | None
    watch: bool | None
    times: int | None
    percent: float | None


@dataclass
class FaultRule:
    """One fault: an error `status` (or a connection reset when `status` is None) for requests whose
    method is `method` (any if None) and whose path (query excluded) matches the regular expression
    `path` (any if None); `watch` limits it to watches (True) or to other requests (False)."""

    status: int | None
    method: str | None = None
    path: str | None = None
    watch: bool | None = None
    times: int | None = 1
    percent: float | None = None
    retry_after: int | None = None
    message: str | None = None
    fired: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error code (400..599), not {self.status}")
        if self.percent is not None and not 0 <= self.percent <= 100:
            raise ValueError(f"percent must be within 0..100, not {self.percent}")
        self.method = self.method.upper() if self.method else None
        self._pattern = re.compile(self.path) if self.path else None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, method: str, path: str, watch: bool) -> bool:
        return (
            not self.exhausted
            and (self.method is None or self.method == method)
            and (self.watch is None or self.watch == watch)
            and (self._pattern is None or self._pattern.search(path) is not None)
        )


@dataclass(frozen=True)
class Exchange:
    """One request through the proxy: `fault` is "status" or "reset" when a rule answered it,
    `status` what the client got (None: the connection was reset or cut)."""

    method: str
    path: str
    watch: bool
    status: int | None
    fault: str | None
    at: float


def _abort_with_reset(transport: asyncio.Transport | None) -> None:
    """Close a client's connection with a TCP RST (SO_LINGER 0), not an orderly shutdown."""
    if transport is None or transport.is_closing():
        return
    # A TLS transport whose connection is already being torn down has no protocol behind it any more.
    with contextlib.suppress(AttributeError, OSError, RuntimeError):
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


@dataclass(frozen=True)
class ProxyTLS:
    """The proxy's TLS files: it serves `serving_cert` and `serving_key`, and trusts `ca_cert` for the
    upstream, presenting `upstream_client_cert` (certificate, key) to it when set."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    upstream_client_cert: tuple[Path, Path] | None = None

    def serving_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.serving_cert), str(self.serving_key))
        return context

    def upstream_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        if self.upstream_client_cert is not None:
            context.load_cert_chain(*map(str, self.upstream_client_cert))
        return context


class HTTPFaultProxy(ThreadLoopServer):
    """A TLS-terminating reverse proxy to `upstream` (`https://127.0.0.1:6443`) with fault rules."""

    what = "the HTTP fault proxy"

    def __init__(
        self,
        upstream: str,
        *,
        tls: ProxyTLS,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        source_kubeconfig: Path | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.tls = tls
        self.host = host
        self.port = port
        self.source_kubeconfig = source_kubeconfig
        self._random = random.Random(seed)
        self._rules: list[FaultRule] = []
        self._exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._open: set[asyncio.Transport] = set()
        self._session: ClientSession | None = None

    @classmethod
    def for_kubeconfig(
        cls,
        kubeconfig: Path,
        pki: ControlPlanePKI,
        work_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> HTTPFaultProxy:
        """A proxy in front of the API server `kubeconfig` names, forwarding with its client certificate
        (if it has one; a token is forwarded as the client sends it), serving a certificate of `pki`'s CA."""
        config = yaml.safe_load(kubeconfig.read_text())
        context_name = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        work_dir.mkdir(parents=True, exist_ok=True)
        client_cert: tuple[Path, Path] | None = None
        if "client-certificate-data" in user and "client-key-data" in user:
            cert_path, key_path = work_dir / "upstream-client.crt", work_dir / "upstream-client.key"
            cert_path.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key_path.touch(mode=0o600)
            key_path.write_bytes(base64.b64decode(user["client-key-data"]))
            client_cert = (cert_path, key_path)
        elif "client-certificate" in user and "client-key" in user:
            client_cert = (Path(user["client-certificate"]), Path(user["client-key"]))
        serving_cert, serving_key = issue_certificate(
            pki,
            work_dir,
            "httpfault-serving",
            common_name="mcpreg-httpfault",
            alt_names=("localhost", host, "127.0.0.1"),
        )
        return cls(
            str(cluster["server"]),
            tls=ProxyTLS(pki.ca_cert, serving_cert, serving_key, client_cert),
            host=host,
            port=port,
            seed=seed,
            source_kubeconfig=kubeconfig,
        )

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def write_kubeconfig(self, dest: Path, source: Path | None = None) -> Path:
        """A copy of `source` (default: the kubeconfig the proxy was made from) whose clusters all
        point at the proxy; CA and credentials stay as they are."""
        origin = source or self.source_kubeconfig
        if origin is None:
            raise ValueError("no kubeconfig to copy: pass `source`")
        config = yaml.safe_load(origin.read_text())
        for cluster in config.get("clusters", []):
            cluster["cluster"]["server"] = self.url
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.touch(mode=0o600)
        dest.write_text(yaml.safe_dump(config, sort_keys=False))
        return dest

    # Rules ----------------------------------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        retry_after: int | None = None,
        message: str | None = None,
        **match: Unpack[RuleMatch],
    ) -> FaultRule:
        """Answer matching requests with `status` and a Status body (429: with `Retry-After`,
        `retry_after` defaulting to 1 second)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        return self._add(FaultRule(status, retry_after=retry_after, message=message, **match))

    def reset_connections(self, **match: Unpack[RuleMatch]) -> FaultRule:
        """Reset the client's connection (TCP RST) instead of answering matching requests."""
        return self._add(FaultRule(None, **match))

    def _add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """No more faults (the exchanges recorded so far stay)."""
        with self._lock:
            self._rules.clear()

    def drop_connections(self) -> int:
        """Reset every connection with a request in flight (watches included); how many there were."""
        loop = self._loop
        if loop is None:
            return 0
        with self._lock:
            transports = list(self._open)
        for transport in transports:
            loop.call_soon_threadsafe(_abort_with_reset, transport)
        return len(transports)

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def _decide(self, method: str, path: str, watch: bool) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path, watch):
                    continue
                if rule.percent is not None and self._random.uniform(0, 100) >= rule.percent:
                    continue
                rule.fired += 1
                return rule
        return None

    def _record(self, request: web.Request, watch: bool, status: int | None, fault: str | None) -> None:
        with self._lock:
            self._exchanges.append(
                Exchange(request.method, request.path_qs, watch, status, fault, time.monotonic())
            )

    # Serving --------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        watch = is_watch(request.path, dict(request.query))
        transport = request.transport
        if transport is not None:
            with self._lock:
                self._open.add(transport)
        try:
            rule = self._decide(request.method, request.path, watch)
            if rule is not None and rule.status is None:
                self._record(request, watch, None, "reset")
                _abort_with_reset(transport)
                return web.Response(status=500)  # never sent: the connection is gone
            if rule is not None and rule.status is not None:
                message = rule.message or f"injected fault ({rule.status} from the fault proxy)"
                headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
                self._record(request, watch, rule.status, "status")
                return web.json_response(
                    status_body(rule.status, message, retry_after=rule.retry_after),
                    status=rule.status,
                    headers=headers,
                )
            return await self._forward(request, watch)
        finally:
            if transport is not None:
                with self._lock:
                    self._open.discard(transport)

    async def _forward(self, request: web.Request, watch: bool) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        try:
            upstream = await self._session.request(
                request.method,
                f"{self.upstream}{request.rel_url}",
                headers=headers,
                data=body or None,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            )
        except (ClientError, OSError) as exc:
            self._record(request, watch, 503, None)
            return web.json_response(
                status_body(503, f"fault proxy: upstream {self.upstream} unreachable: {exc}"), status=503
            )
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    response.headers.add(key, value)
            if upstream.content_length is not None and not watch:
                response.content_length = upstream.content_length
            self._record(request, watch, upstream.status, None)
            await response.prepare(request)
            with contextlib.suppress(ClientError, ConnectionError):
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
            return response

    async def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        self._stopping = asyncio.Event()
        server_context = self.tls.serving_context()
        self._session = ClientSession(
            connector=TCPConnector(ssl=self.tls.upstream_context(), limit=0),
            timeout=ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False,
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port, ssl_context=server_context)
            await site.start()
            if self.port == 0:  # the port bound, when any free one was asked for
                self.port = int(runner.addresses[0][1])
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            await runner.cleanup()
            await self._session.close()
            return
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            self.drop_connections()
            await runner.cleanup()
            await self._session.close()
