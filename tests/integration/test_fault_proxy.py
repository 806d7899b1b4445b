"""The real fault proxy (Toxiproxy built from Go modules, `mcpreg_dev.faultproxy`): each toxic acts
as documented, measured from a client's side, in front of a plain HTTP server started here and in
front of the session's real git daemon read by the operator's own `GitClient`."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.faults import FaultProxyFactory
from fixtures.kube import Kube
from mcpreg_dev.binaries import TOXIPROXY
from mcpreg_dev.faultproxy import FaultProxyError, Proxy, Stream, ToxiproxyServer
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer
from mcpreg_dev.httpfault import HTTPFaultProxy
from mcpreg_dev.kubeconfig import write_cert_kubeconfig
from mcpreg_dev.pki import ControlPlanePKI, generate_pki, issue_certificate
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.git import GitClient, GitFetchLimits, GitRef

pytestmark = pytest.mark.integration


class _Handler(BaseHTTPRequestHandler):
    """`GET /N`: N bytes of data; keep-alive unless the client asks for `Connection: close`."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        size = int(self.path.strip("/") or "5")
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b"x" * 65536
        while size > 0:
            self.wfile.write(chunk[: min(size, len(chunk))])
            size -= len(chunk)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the proxy resets and cuts connections on purpose


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy(fault_proxy: FaultProxyFactory, upstream: str) -> Proxy:
    return fault_proxy(upstream)


def get(proxy: Proxy, size: int = 5, *, timeout: float = 5.0) -> tuple[bytes, float]:
    """One GET through the proxy: (body, seconds); the client's exception if it fails."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
    try:
        connection.request("GET", f"/{size}")
        body = connection.getresponse().read()
        return body, time.monotonic() - started
    finally:
        connection.close()


def test_proxy_passes_traffic_and_reports_its_state(toxiproxy: ToxiproxyServer, proxy: Proxy) -> None:
    assert toxiproxy.api.version() == TOXIPROXY.version
    assert get(proxy, 100_000)[0] == b"x" * 100_000
    state = proxy.state()
    assert state.enabled and state.listen == proxy.listen and state.toxics == ()
    assert proxy.name in toxiproxy.api.proxies()
    with pytest.raises(FaultProxyError, match="HTTP 409: proxy already exists"):
        toxiproxy.api.create_proxy(proxy.name, state.upstream)
    with pytest.raises(ValueError, match="unknown toxic type"):
        proxy.add_toxic("packet_loss")


def test_latency_delays_each_response_until_removed(proxy: Proxy) -> None:
    assert get(proxy)[1] < 0.2
    toxic = proxy.latency(400, stream=Stream.DOWNSTREAM)
    assert [t.name for t in proxy.toxics()] == [toxic.name] and toxic.attributes["latency"] == 400
    body, elapsed = get(proxy)
    assert body == b"xxxxx" and 0.4 <= elapsed < 1.5
    proxy.remove_toxic(toxic.name)
    assert get(proxy)[1] < 0.2


def test_limit_data_cuts_a_download_mid_way(proxy: Proxy) -> None:
    proxy.limit_data(64 * 1024)
    with pytest.raises(http.client.IncompleteRead) as cut:
        get(proxy, 1024 * 1024)
    assert 0 < len(cut.value.partial) < 64 * 1024
    assert cut.value.expected is not None and cut.value.expected > 900 * 1024


def test_limit_data_upstream_cuts_what_the_client_sends(proxy: Proxy) -> None:
    proxy.limit_data(1024, stream=Stream.UPSTREAM)
    with (
        socket.create_connection((proxy.host, proxy.port), timeout=5) as sock,
        pytest.raises((BrokenPipeError, ConnectionResetError)),
    ):
        for _ in range(1000):  # sends until the proxy has closed the connection
            sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n" + b"y" * 8192)
            time.sleep(0.001)


@pytest.mark.parametrize("stream", [Stream.DOWNSTREAM, Stream.UPSTREAM])
def test_reset_peer_resets_the_connection(proxy: Proxy, stream: Stream) -> None:
    proxy.reset_peer(0, stream=stream)
    with pytest.raises(ConnectionResetError):
        get(proxy)


def test_timeout_swallows_data_then_closes(proxy: Proxy) -> None:
    toxic = proxy.timeout(0)  # never closes: the client's own timeout must fire
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        get(proxy, timeout=0.5)
    assert time.monotonic() - started >= 0.5
    proxy.remove_toxic(toxic.name)
    proxy.timeout(300)  # closes after 0.3 s, having passed nothing
    started = time.monotonic()
    with pytest.raises(http.client.RemoteDisconnected):
        get(proxy)
    assert 0.3 <= time.monotonic() - started < 2


def test_bandwidth_limits_throughput(proxy: Proxy) -> None:
    proxy.bandwidth(256)  # KB/s
    body, elapsed = get(proxy, 256_000)
    assert len(body) == 256_000 and 0.8 <= elapsed < 3


def test_slow_close_delays_the_close(proxy: Proxy) -> None:
    def until_closed() -> tuple[int, float]:
        started = time.monotonic()
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
            sock.sendall(b"GET /10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            received = 0
            while chunk := sock.recv(65536):
                received += len(chunk)
        return received, time.monotonic() - started

    assert until_closed()[1] < 0.2
    proxy.slow_close(500)
    received, elapsed = until_closed()
    assert received > 10 and 0.5 <= elapsed < 2


def test_slicer_passes_everything_in_small_delayed_pieces(proxy: Proxy) -> None:
    proxy.slicer(100, 10, 2000)  # ~100 pieces of 100±10 bytes, 2 ms apart
    body, elapsed = get(proxy, 10_000)
    assert body == b"x" * 10_000 and elapsed >= 0.15


def test_disabled_proxy_refuses_and_cuts_then_comes_back_on_the_same_port(proxy: Proxy) -> None:
    connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=5)
    connection.request("GET", "/5")
    assert connection.getresponse().read() == b"xxxxx"
    with proxy.down():
        assert not proxy.state().enabled
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((proxy.host, proxy.port), timeout=2).close()
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):  # the open one is cut
            connection.request("GET", "/5")
            connection.getresponse().read()
    connection.close()
    assert proxy.state().enabled and get(proxy)[0] == b"xxxxx"


# --------------------------------------------------------------------------------------------------
# In front of a real service: the session's git daemon, read by the operator's GitClient


@pytest.fixture
def git_proxy(fault_proxy: FaultProxyFactory, git_daemon: GitDaemonServer) -> Proxy:
    return fault_proxy(f"{git_daemon.host}:{git_daemon.port}")


def _via(proxy: Proxy, git_daemon: GitDaemonServer, repo: BareRepo) -> str:
    return git_daemon.url(repo).replace(git_daemon.base_url, f"git://{proxy.listen}", 1)


def test_git_fetch_cut_mid_transfer_is_a_source_error(
    git_proxy: Proxy, git_daemon: GitDaemonServer, bare_repo: BareRepo
) -> None:
    commit = bare_repo.commit({"registry.json": os.urandom(512 * 1024)})  # incompressible
    url = _via(git_proxy, git_daemon, bare_repo)
    assert GitClient().read_file(url, GitRef(branch="main"), "registry.json")[0] == commit
    git_proxy.limit_data(32 * 1024)
    with pytest.raises(SourceError) as raised:
        GitClient().read_file(url, GitRef(branch="main"), "registry.json")
    assert raised.value.kind is SourceErrorKind.UNREACHABLE and url in raised.value.message


def test_git_connection_reset_and_refused_are_unreachable(
    git_proxy: Proxy, git_daemon: GitDaemonServer, bare_repo: BareRepo
) -> None:
    bare_repo.commit({"registry.json": b"{}"})
    url = _via(git_proxy, git_daemon, bare_repo)
    git_proxy.reset_peer(0)
    with pytest.raises(SourceError) as raised:
        GitClient().resolve(url, GitRef(branch="main"))
    assert raised.value.kind is SourceErrorKind.UNREACHABLE
    assert "reset" in raised.value.message.lower() or "hung up" in raised.value.message
    git_proxy.clear_toxics()
    with git_proxy.down(), pytest.raises(SourceError) as raised:
        GitClient().resolve(url, GitRef(branch="main"))
    assert raised.value.kind is SourceErrorKind.UNREACHABLE and "cannot reach" in raised.value.message


def test_git_slower_than_its_timeout_is_a_source_error(
    git_proxy: Proxy, git_daemon: GitDaemonServer, bare_repo: BareRepo
) -> None:
    bare_repo.commit({"registry.json": b"{}"})
    url = _via(git_proxy, git_daemon, bare_repo)
    git_proxy.latency(3000)
    started = time.monotonic()
    with pytest.raises(SourceError) as raised:
        GitClient(GitFetchLimits(timeout_s=1)).resolve(url, GitRef(branch="main"))
    assert time.monotonic() - started < 2.5
    assert raised.value.kind is SourceErrorKind.UNREACHABLE
    assert f"timed out after 1s talking to {url}" in raised.value.message


# --------------------------------------------------------------------------------------------------
# The HTTP-aware fault proxy (mcpreg_dev.httpfault): in front of a TLS server that checks client
# certificates like the API server, then in front of the real API server


class _APIHandler(BaseHTTPRequestHandler):
    """A small TLS API: `?watch=true` streams three events 0.3 s apart; anything else echoes what it
    received (method, path, the Authorization header, the client certificate's common name)."""

    protocol_version = "HTTP/1.1"

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        peer = self.connection.getpeercert()
        subject = dict(item for rdn in peer["subject"] for item in rdn) if peer else {}
        answer = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "client": subject.get("commonName"),
                "body": body.decode(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:
        if "watch=true" not in self.path:
            self._echo()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for number in range(3):
            line = json.dumps({"type": "ADDED", "object": {"n": number}}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
            time.sleep(0.3)
        self.wfile.write(b"0\r\n\r\n")

    do_PATCH = do_POST = do_DELETE = _echo

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class _TLSAPI:
    pki: ControlPlanePKI
    url: str
    kubeconfig: Path


@pytest.fixture(scope="module")
def tls_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_TLSAPI]:
    directory = tmp_path_factory.mktemp("tls-api")
    pki = generate_pki(directory / "pki")
    cert, key = issue_certificate(
        pki, directory, "upstream", common_name="upstream", alt_names=("127.0.0.1",)
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    context.load_cert_chain(str(cert), str(key))
    context.verify_mode = ssl.CERT_REQUIRED  # like the API server with --client-ca-file
    server = _QuietServer(("127.0.0.1", 0), _APIHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    kubeconfig = write_cert_kubeconfig(
        directory / "admin.kubeconfig",
        server=url,
        ca_cert=pki.ca_cert,
        client_cert=pki.admin_cert,
        client_key=pki.admin_key,
    )
    try:
        yield _TLSAPI(pki, url, kubeconfig)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_fault(tls_api: _TLSAPI, tmp_path: Path) -> Iterator[HTTPFaultProxy]:
    with HTTPFaultProxy.for_kubeconfig(
        tls_api.kubeconfig, tls_api.pki, tmp_path / "httpfault", seed=7
    ) as proxy:
        yield proxy


def call(
    proxy: HTTPFaultProxy,
    ca_cert: Path,
    method: str = "GET",
    path: str = "/api/v1/namespaces",
    **headers: str,
) -> tuple[int, dict[str, str], bytes]:
    """One request to the proxy over TLS, trusting only the control plane's CA."""
    context = ssl.create_default_context(cafile=str(ca_cert))
    connection = http.client.HTTPSConnection(proxy.host, proxy.port, context=context, timeout=5)
    try:
        connection.request(method, path, body=b"{}" if method != "GET" else None, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_http_proxy_forwards_over_tls_with_the_kubeconfig_identity(
    http_fault: HTTPFaultProxy, tls_api: _TLSAPI, tmp_path: Path
) -> None:
    status, _, body = call(http_fault, tls_api.pki.ca_cert, Authorization="Bearer t0ken")
    echoed = json.loads(body)
    assert status == 200 and echoed["path"] == "/api/v1/namespaces"
    assert echoed["client"] == "mcpreg-admin"  # the kubeconfig's client certificate, presented upstream
    assert echoed["authorization"] == "Bearer t0ken"  # tokens pass through
    written = yaml.safe_load(http_fault.write_kubeconfig(tmp_path / "k").read_text())
    assert written["clusters"][0]["cluster"]["server"] == http_fault.url


def test_http_proxy_answers_the_next_requests_with_429_then_lets_them_through(
    http_fault: HTTPFaultProxy, tls_api: _TLSAPI
) -> None:
    rule = http_fault.fail(429, method="PATCH", path=r"/status$", times=2, retry_after=3)
    assert call(http_fault, tls_api.pki.ca_cert, "GET")[0] == 200  # another method
    assert call(http_fault, tls_api.pki.ca_cert, "PATCH", "/apis/x/v1/things/a")[0] == 200  # another path
    for _ in range(2):
        status, headers, body = call(http_fault, tls_api.pki.ca_cert, "PATCH", "/apis/x/v1/things/a/status")
        assert status == 429 and headers["Retry-After"] == "3"
        assert json.loads(body) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "injected fault (429 from the fault proxy)",
            "reason": "TooManyRequests",
            "details": {
                "causes": [{"message": "injected fault (429 from the fault proxy)"}],
                "retryAfterSeconds": 3,
            },
            "code": 429,
        }
    assert rule.exhausted
    assert call(http_fault, tls_api.pki.ca_cert, "PATCH", "/apis/x/v1/things/a/status")[0] == 200
    faults = [(e.method, e.status, e.fault) for e in http_fault.exchanges]
    assert faults == [("GET", 200, None), ("PATCH", 200, None)] + [("PATCH", 429, "status")] * 2 + [
        ("PATCH", 200, None)
    ]


def test_http_proxy_fails_a_share_of_requests_with_500(http_fault: HTTPFaultProxy, tls_api: _TLSAPI) -> None:
    http_fault.fail(500, path=r"^/api/v1/", percent=50, times=None)
    statuses = [call(http_fault, tls_api.pki.ca_cert)[0] for _ in range(40)]
    assert set(statuses) == {200, 500} and 8 <= statuses.count(500) <= 32
    _, _, body = next(r for r in (call(http_fault, tls_api.pki.ca_cert) for _ in range(40)) if r[0] == 500)
    assert json.loads(body)["reason"] == "InternalError"
    http_fault.clear()
    assert all(call(http_fault, tls_api.pki.ca_cert)[0] == 200 for _ in range(5))


def test_http_proxy_streams_watches_and_can_cut_them(http_fault: HTTPFaultProxy, tls_api: _TLSAPI) -> None:
    def watch() -> tuple[list[float], BaseException | None]:
        """When each event arrived, and how the stream ended (None: the server ended it)."""
        context = ssl.create_default_context(cafile=str(tls_api.pki.ca_cert))
        connection = http.client.HTTPSConnection(http_fault.host, http_fault.port, context=context, timeout=5)
        started = time.monotonic()
        arrivals: list[float] = []
        try:
            connection.request("GET", "/api/v1/namespaces?watch=true")
            response = connection.getresponse()
            while line := response.readline():
                assert json.loads(line)["type"] == "ADDED"
                arrivals.append(time.monotonic() - started)
            response.read()  # the end of the chunked body, or the error of a cut one
        except (ConnectionError, http.client.HTTPException, ssl.SSLError) as exc:
            return arrivals, exc
        finally:
            connection.close()
        return arrivals, None

    arrivals, ended = watch()
    assert ended is None and len(arrivals) == 3
    assert arrivals[0] < 0.25 and arrivals[2] >= 0.55  # as they come, not all at the end
    cutter = threading.Timer(0.45, http_fault.drop_connections)
    cutter.start()
    arrivals, ended = watch()
    cutter.join()
    # Cut after two of the three events (http.client may take the cut for the end of the stream).
    assert len(arrivals) == 2, (arrivals, ended)
    http_fault.reset_connections(watch=True, times=1)
    arrivals, ended = watch()
    assert arrivals == [] and ended is not None
    assert [e.fault for e in http_fault.exchanges][-1] == "reset"
    assert len(watch()[0]) == 3  # the rule is spent


def test_http_proxy_in_front_of_the_real_api_server(kube: Kube, tmp_path: Path) -> None:
    control_plane = kube.control_plane
    assert control_plane.pki is not None
    work = tmp_path / "httpfault"
    with HTTPFaultProxy.for_kubeconfig(control_plane.admin_kubeconfig, control_plane.pki, work) as proxy:
        kubeconfig = proxy.write_kubeconfig(tmp_path / "faulty.kubeconfig")
        assert "namespace/default" in kube.kubectl("get", "ns", "-o", "name", kubeconfig=kubeconfig).stdout

        # client-go honours 429 with Retry-After: kubectl waits, asks again, and succeeds.
        proxy.fail(429, method="GET", path=r"^/api/v1/namespaces$", times=2, retry_after=1)
        started = time.monotonic()
        listed = kube.kubectl("get", "ns", "-o", "name", kubeconfig=kubeconfig)
        assert "namespace/default" in listed.stdout and time.monotonic() - started >= 2
        lists = [e.status for e in proxy.exchanges if e.path.split("?")[0] == "/api/v1/namespaces"]
        assert lists[-3:] == [429, 429, 200]

        # A 500 without Retry-After is final, and its Status message reaches the person.
        proxy.fail(
            500, method="GET", path=r"^/api/v1/namespaces/default$", times=None, message="etcd on fire"
        )
        failed = kube.kubectl("get", "ns", "default", kubeconfig=kubeconfig, check=False)
        assert failed.returncode != 0
        assert "Error from server (InternalError): etcd on fire" in failed.stderr, failed.stderr
        proxy.clear()

        # A watch streams through (the API server ends it after timeoutSeconds).
        watched = kube.kubectl(
            "get", "--raw", "/api/v1/namespaces?watch=true&timeoutSeconds=1", kubeconfig=kubeconfig
        )
        events = [json.loads(line) for line in watched.stdout.splitlines() if line.strip()]
        assert "default" in {e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"}
        assert proxy.exchanges[-1].watch and proxy.exchanges[-1].status == 200
