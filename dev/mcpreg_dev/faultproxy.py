"""A real TCP fault proxy for the fault-injection tests: Toxiproxy's server, built from Go modules
(`tools/toxiproxy`, cached like the control-plane binaries; `MCPREG_TOXIPROXY` names a ready binary),
driven through its HTTP API with the standard library only.

Put a proxy between a client and a service, then make the connection misbehave:

    with ToxiproxyServer() as toxiproxy:                      # API on a free loopback port
        proxy = toxiproxy.api.create_proxy("git", upstream="127.0.0.1:9418")
        url = f"git://{proxy.listen}/repo.git"                # point the client here
        proxy.latency(2000)                                   # every chunk 2 s late
        proxy.limit_data(64 * 1024)                           # cut after 64 KiB
        proxy.reset_peer()                                    # TCP RST when data arrives
        proxy.timeout(0)                                      # swallow everything, never close
        proxy.bandwidth(16)                                   # 16 KB/s
        proxy.slow_close(500)                                 # the close comes 0.5 s late
        proxy.slicer(64, 16, 1000)                            # 64±16-byte pieces, 1 ms apart
        proxy.remove_toxic("latency_downstream")              # or proxy.clear_toxics()
        with proxy.down():                                    # refused while inside
            ...

Toxics act on one direction of the connection: `Stream.DOWNSTREAM` (service → client, the default)
or `Stream.UPSTREAM` (client → service); `toxicity` is the share of connections (0..1) they apply to.
Toxiproxy works at the TCP level: it cannot answer with an HTTP status (see `mcpreg_dev.httpfault`
for 429/500 from the Kubernetes API server), but it works for any protocol, TLS included.

`python -m mcpreg_dev.faultproxy` builds (or finds) the binary and prints its path;
`python -m mcpreg_dev.faultproxy serve --port N` runs the server in the foreground.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from mcpreg_dev.background import Background
from mcpreg_dev.binaries import ensure_toxiproxy, print_or_exec, serve_cli
from mcpreg_dev.controlplane import free_port
from mcpreg_dev.processes import ChildServer

TOXIC_TYPES = frozenset(
    {"latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"}
)


class FaultProxyError(RuntimeError):
    """Toxiproxy refused a request or did not start; the message carries its own words."""


class Stream(StrEnum):
    """Which direction of a proxied connection a toxic acts on."""

    DOWNSTREAM = "downstream"  # from the service to the client
    UPSTREAM = "upstream"  # from the client to the service


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: Stream
    toxicity: float
    attributes: Mapping[str, int]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Toxic:
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            stream=Stream(data.get("stream", "downstream")),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )


@dataclass(frozen=True)
class ProxyState:
    """A proxy as Toxiproxy reports it; `listen` is the bound address (`host:port`)."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyState:
        return cls(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data["enabled"]),
            toxics=tuple(Toxic.from_json(t) for t in data.get("toxics") or []),
        )


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class ToxiproxyAPI:
    """Toxiproxy's HTTP API at `base_url` (`http://127.0.0.1:8474`)."""

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One API call; the decoded JSON answer (None for an empty one)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the local API's
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "User-Agent": "mcpreg-faultproxy"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("error", detail)
            raise FaultProxyError(f"toxiproxy: {method} {path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FaultProxyError(
                f"toxiproxy at {self.base_url} unreachable ({method} {path}): {reason}"
            ) from None
        return json.loads(raw) if raw.strip() else None

    def version(self) -> str:
        answer = self.request("GET", "/version")
        return str(answer["version"] if isinstance(answer, dict) else answer)

    def create_proxy(
        self, name: str, upstream: str, *, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> Proxy:
        """A new proxy from `listen` (port 0: a free one, which it keeps when disabled and enabled
        again) to `upstream` (`host:port`)."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        state = ProxyState.from_json(self.request("POST", "/proxies", body))
        return Proxy(self, state.name, state.listen)

    def proxy(self, name: str) -> Proxy:
        """The existing proxy `name`."""
        return Proxy(self, name, self.state(name).listen)

    def state(self, name: str) -> ProxyState:
        return ProxyState.from_json(self.request("GET", f"/proxies/{name}"))

    def proxies(self) -> dict[str, ProxyState]:
        answer = self.request("GET", "/proxies") or {}
        return {name: ProxyState.from_json(data) for name, data in answer.items()}

    def reset(self) -> None:
        """Every proxy enabled again and every toxic removed (the proxies themselves stay)."""
        self.request("POST", "/reset")

    def delete_all(self) -> None:
        for name in self.proxies():
            self.request("DELETE", f"/proxies/{name}")


@dataclass(frozen=True)
class Proxy:
    """One proxy: clients connect to `listen` (`host:port`) instead of the upstream."""

    api: ToxiproxyAPI = field(repr=False)
    name: str
    listen: str

    @property
    def host(self) -> str:
        return _host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return _host_port(self.listen)[1]

    def state(self) -> ProxyState:
        return self.api.state(self.name)

    def set_enabled(self, enabled: bool) -> None:
        """Disabled, the proxy closes its listener and every open connection: clients are refused."""
        self.api.request("POST", f"/proxies/{self.name}", {"enabled": enabled})

    def enable(self) -> None:
        self.set_enabled(True)

    def disable(self) -> None:
        self.set_enabled(False)

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The service "goes away" (connections refused and cut) inside the block, and comes back."""
        self.disable()
        try:
            yield
        finally:
            self.enable()

    def delete(self) -> None:
        self.api.request("DELETE", f"/proxies/{self.name}")

    # Toxics ---------------------------------------------------------------------------------------

    def add_toxic(
        self,
        type: str,
        *,
        name: str | None = None,
        stream: Stream = Stream.DOWNSTREAM,
        toxicity: float = 1.0,
        **attributes: int,
    ) -> Toxic:
        """Add a toxic of `type` (one of `TOXIC_TYPES`); its name defaults to `TYPE_STREAM`."""
        if type not in TOXIC_TYPES:
            raise ValueError(f"unknown toxic type {type!r}; one of {', '.join(sorted(TOXIC_TYPES))}")
        if not 0.0 <= toxicity <= 1.0:
            raise ValueError(f"toxicity is a share of connections, 0..1, not {toxicity}")
        body = {
            "name": name or f"{type}_{Stream(stream).value}",
            "type": type,
            "stream": Stream(stream).value,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        return Toxic.from_json(self.api.request("POST", f"/proxies/{self.name}/toxics", body))

    def update_toxic(self, name: str, *, toxicity: float | None = None, **attributes: int) -> Toxic:
        body: dict[str, Any] = {"attributes": attributes}
        if toxicity is not None:
            body["toxicity"] = toxicity
        return Toxic.from_json(self.api.request("POST", f"/proxies/{self.name}/toxics/{name}", body))

    def remove_toxic(self, name: str) -> None:
        self.api.request("DELETE", f"/proxies/{self.name}/toxics/{name}")

    def toxics(self) -> list[Toxic]:
        return [Toxic.from_json(t) for t in self.api.request("GET", f"/proxies/{self.name}/toxics") or []]

    def clear_toxics(self) -> None:
        for toxic in self.toxics():
            self.remove_toxic(toxic.name)

    @contextlib.contextmanager
    def toxic(self, type: str, **kwargs: Any) -> Iterator[Toxic]:
        """`add_toxic` for the duration of a block."""
        added = self.add_toxic(type, **kwargs)
        try:
            yield added
        finally:
            self.remove_toxic(added.name)

    def latency(
        self, ms: int, *, jitter_ms: int = 0, stream: Stream = Stream.DOWNSTREAM, **kwargs: Any
    ) -> Toxic:
        """Each chunk of data waits `ms` (± `jitter_ms`) before it is passed on."""
        return self.add_toxic("latency", stream=stream, latency=ms, jitter=jitter_ms, **kwargs)

    def bandwidth(self, kb_per_s: int, *, stream: Stream = Stream.DOWNSTREAM, **kwargs: Any) -> Toxic:
        """At most `kb_per_s` kilobytes (1000 bytes) a second."""
        return self.add_toxic("bandwidth", stream=stream, rate=kb_per_s, **kwargs)

    def slow_close(self, delay_ms: int, *, stream: Stream = Stream.DOWNSTREAM, **kwargs: Any) -> Toxic:
        """The close of the connection is passed on `delay_ms` late."""
        return self.add_toxic("slow_close", stream=stream, delay=delay_ms, **kwargs)

    def timeout(self, ms: int = 0, *, stream: Stream = Stream.DOWNSTREAM, **kwargs: Any) -> Toxic:
        """Nothing gets through any more; the connection is closed after `ms` (0: never)."""
        return self.add_toxic("timeout", stream=stream, timeout=ms, **kwargs)

    def reset_peer(self, ms: int = 0, *, stream: Stream = Stream.DOWNSTREAM, **kwargs: Any) -> Toxic:
        """When data arrives, wait `ms` and reset the connection (TCP RST, unsent data discarded)."""
        return self.add_toxic("reset_peer", stream=stream, timeout=ms, **kwargs)

    def limit_data(self, n_bytes: int, *, stream: Stream = Stream.DOWNSTREAM, **kwargs: Any) -> Toxic:
        """Pass `n_bytes`, then close the connection: a transfer cut in the middle."""
        return self.add_toxic("limit_data", stream=stream, bytes=n_bytes, **kwargs)

    def slicer(
        self,
        average_size: int,
        size_variation: int = 0,
        delay_us: int = 0,
        *,
        stream: Stream = Stream.DOWNSTREAM,
        **kwargs: Any,
    ) -> Toxic:
        """Pass data in pieces of `average_size` ± `size_variation` bytes, `delay_us` apart."""
        return self.add_toxic(
            "slicer",
            stream=stream,
            average_size=average_size,
            size_variation=size_variation,
            delay=delay_us,
            **kwargs,
        )


@dataclass
class ToxiproxyServer(ChildServer, Background):
    """A Toxiproxy server process whose API listens on `host`:`port` (a free loopback port unless
    given). Proxies may listen on any local address (`create_proxy(listen=...)`); every proxy goes
    with the server when it stops."""

    STOP_TIMEOUT = 10.0

    binary: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api(self) -> ToxiproxyAPI:
        return ToxiproxyAPI(self.api_url)

    def start(self, timeout: float = 15.0) -> Self:
        """Start the server (building the binary first if it is not cached) and wait for its API."""
        if self.running():
            return self
        binary = self.binary or ensure_toxiproxy()
        if self.log_path is None:
            self.log_path = Path(tempfile.mkstemp(prefix="mcpreg-toxiproxy-", suffix=".log")[1])
        chosen = self.port
        for _attempt in range(3):  # a free port can be taken between the check and the bind
            self.port = chosen or free_port(self.host)
            with self.log_path.open("ab") as log:
                process = subprocess.Popen(
                    [str(binary), "-host", self.host, "-port", str(self.port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            self.process = process
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and process.poll() is None:
                with contextlib.suppress(FaultProxyError):
                    ToxiproxyAPI(self.api_url, timeout=1.0).version()
                    return self
                time.sleep(0.05)
            if process.poll() is None:
                self.kill()
                raise FaultProxyError(
                    f"toxiproxy did not answer on {self.api_url} within {timeout:.0f}s; see {self.log_path}"
                )
            if chosen or "address already in use" not in self.log_path.read_text(errors="replace"):
                break
        raise FaultProxyError(f"toxiproxy exited with {process.returncode} at start-up; see {self.log_path}")


def main(argv: list[str] | None = None) -> int:
    parser, serve = serve_cli("python -m mcpreg_dev.faultproxy", "run the Toxiproxy server in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8474)
    args = parser.parse_args(argv)
    return print_or_exec(
        ensure_toxiproxy,
        args.command == "serve",
        lambda binary: [str(binary), "-host", args.host, "-port", str(args.port)],
    )


if __name__ == "__main__":
    sys.exit(main())
