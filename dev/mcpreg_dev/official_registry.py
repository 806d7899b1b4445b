"""The official MCP Registry's own server on loopback, over a throw-away PostgreSQL: a real upstream
for the API-mirror tests (`source.type: api`).

The server is built from the module pinned in `tools/mcp-registry/go.mod` (mcpreg_dev.binaries) and
configured only through its environment (`MCP_REGISTRY_*`, read by its internal/config):

- its database is a cluster of mcpreg_dev.postgres, reached over a unix socket;
- it listens on 127.0.0.1 on a free port;
- registry validation (its look-ups of npm, PyPI, NuGet, OCI, MCPB and crates.io packages) is off,
  and HTTP(S)_PROXY points at a closed loopback port, so anything else that tried to call out would
  fail at once instead of reaching the internet (Go never proxies loopback, so nothing local breaks);
- its JWT key is a fresh Ed25519 seed, so `admin_token()` can mint the registry's own kind of token
  with publish and edit rights on every name: entries are changed later through its real publish,
  edit and status endpoints, as a publisher or an administrator would;
- entries given to `start(seed=...)` are imported by its own seed mechanism (`MCP_REGISTRY_SEED_FROM`,
  a JSON array of server.json documents, each created through the same service as a publish) before
  it starts serving.

    with OfficialRegistryPeer.started(work_dir, seed=generated_servers(3000)) as peer:
        peer.base_url                                   # http://127.0.0.1:PORT
        peer.publish(generated_server(7, version="1.1.0"))  # a new latest version
        peer.set_status(name, "1.0.0", "deprecated")    # or "deleted", or back to "active"

`python -m mcpreg_dev.official_registry --entries N [--port P]` runs one in the foreground (the
server's binary is built, or found, by `python -m mcpreg_dev.binaries`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mcpreg_dev.binaries import BuildError, ensure_official_registry
from mcpreg_dev.controlplane import free_port
from mcpreg_dev.postgres import PostgresCluster, PostgresError
from mcpreg_dev.processes import ChildServer, answers_ok, spawn_logged, wait_ready

SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
OFFICIAL_META = "io.modelcontextprotocol.registry/official"
API_PREFIX = "/v0.1"
NAMESPACE = "com.example.peer"
# A closed port: a proxy that refuses every connection, so no request can leave the machine.
_NO_EGRESS_PROXY = "http://127.0.0.1:9"


class OfficialRegistryError(RuntimeError):
    """The server did not start, or refused a request; the message names the URL and HTTP status."""


def generated_server(
    index: int,
    *,
    namespace: str = NAMESPACE,
    version: str = "1.0.0",
    description: str | None = None,
) -> dict[str, Any]:
    """A valid server.json named `<namespace>/server-<index>`: an npm package, and for every third a
    remote endpoint as well (each with a URL of its own: the registry refuses a remote URL two
    servers share)."""
    name = f"{namespace}/server-{index:05d}"
    entry: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "name": name,
        "description": description or f"Generated test server {index}",
        "version": version,
        "repository": {"url": f"https://github.com/example/server-{index:05d}", "source": "github"},
        "packages": [
            {
                "registryType": "npm",
                "identifier": f"@example/server-{index:05d}",
                "version": version,
                "transport": {"type": "stdio"},
            }
        ],
    }
    if index % 3 == 0:
        slug = namespace.replace(".", "-")
        entry["remotes"] = [{"type": "streamable-http", "url": f"https://{slug}.example.com/mcp/{index:05d}"}]
    return entry


def generated_servers(count: int, *, namespace: str = NAMESPACE, start: int = 0) -> list[dict[str, Any]]:
    return [generated_server(i, namespace=namespace) for i in range(start, start + count)]


@dataclass
class OfficialRegistryPeer(ChildServer):
    """One official registry server over one database of a PostgreSQL cluster; `stop()` (SIGTERM: it
    shuts down gracefully) keeps the database."""

    binary: Path
    database_url: str
    work_dir: Path  # the seed file and the server's log
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    _jwt_seed: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    cluster: PostgresCluster | None = field(default=None, repr=False)  # owned: removed by remove()

    @classmethod
    @contextlib.contextmanager
    def started(
        cls, work_dir: Path, *, seed: Sequence[Mapping[str, Any]] = (), port: int | None = None
    ) -> Iterator[OfficialRegistryPeer]:
        """A PostgreSQL cluster and a server over it, seeded, stopped and removed on exit."""
        peer = cls.create(work_dir, port=port)
        try:
            peer.start(seed=seed)
            yield peer
        finally:
            peer.remove()

    @classmethod
    def create(cls, work_dir: Path, *, port: int | None = None) -> OfficialRegistryPeer:
        """A started PostgreSQL cluster with an empty database, and a server (not yet started) for it."""
        binary = ensure_official_registry()
        work_dir.mkdir(parents=True, exist_ok=True)
        cluster = PostgresCluster.create(work_dir)
        try:
            cluster.start()
            database = cluster.create_database("registry")
        except BaseException:
            cluster.remove()
            raise
        peer = cls(binary=binary, database_url=cluster.url(database), work_dir=work_dir, cluster=cluster)
        if port is not None:
            peer.port = port
        return peer

    @property
    def base_url(self) -> str:
        """The registry's root; its API is under `/v0.1` (and `/v0`)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def log_path(self) -> Path:
        return self.work_dir / "official-registry.log"

    def env(self, seed_file: Path | None) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("MCP_REGISTRY_")}
        env.update(
            {
                "MCP_REGISTRY_DATABASE_URL": self.database_url,
                "MCP_REGISTRY_SERVER_ADDRESS": f"{self.host}:{self.port}",
                "MCP_REGISTRY_JWT_PRIVATE_KEY": self._jwt_seed.hex(),
                "MCP_REGISTRY_ENABLE_REGISTRY_VALIDATION": "false",
                "MCP_REGISTRY_ENABLE_ANONYMOUS_AUTH": "false",
                "MCP_REGISTRY_OIDC_ENABLED": "false",
                "MCP_REGISTRY_DATABASE_MIN_CONNECTIONS": "1",
                "MCP_REGISTRY_DATABASE_MAX_CONNECTIONS": "10",
                "MCP_REGISTRY_VERSION": "mcpreg-test-peer",
                "MCP_REGISTRY_SEED_FROM": str(seed_file) if seed_file else "",
                "HTTP_PROXY": _NO_EGRESS_PROXY,
                "HTTPS_PROXY": _NO_EGRESS_PROXY,
                "NO_PROXY": "",
            }
        )
        for lower in ("http_proxy", "https_proxy", "no_proxy"):
            env.pop(lower, None)
        return env

    def start(self, *, seed: Sequence[Mapping[str, Any]] = (), timeout: float = 300.0) -> None:
        """Start the server, importing `seed` first (the server answers only once the import is done;
        3,000 entries take a few seconds), and wait until /v0.1/health answers."""
        if self.running():
            return
        seed_file = None
        if seed:
            seed_file = self.work_dir / "seed.json"
            seed_file.write_text(json.dumps(list(seed)))
        self.process = spawn_logged(
            [str(self.binary)], self.log_path, cwd=self.work_dir, env=self.env(seed_file)
        )
        failure = wait_ready(self.process, self.ready, timeout)
        if failure:
            raise OfficialRegistryError(f"the official registry {failure}; see {self.log_path}")
        if seed and "Import completed successfully" not in self.log_path.read_text(errors="replace"):
            raise OfficialRegistryError(
                f"the official registry did not import every seed entry; see {self.log_path}"
            )

    def ready(self) -> bool:
        return answers_ok(f"{self.api_url}/health")

    def remove(self) -> None:
        """Stop the server, then its PostgreSQL cluster, and delete the cluster's files."""
        self.stop()
        if self.cluster is not None:
            self.cluster.remove()

    # --- the registry's own API ---------------------------------------------------------------

    def admin_token(self, ttl_s: int = 3600) -> str:
        """A registry JWT (EdDSA, signed with the server's key) allowed to publish and edit any name,
        the kind its auth endpoints hand out; minted here, because those endpoints all need GitHub,
        DNS, HTTP or OIDC proofs that cannot be given offline."""
        now = int(time.time())
        claims = {
            "iss": "mcp-registry",
            "iat": now,
            "nbf": now - 5,
            "exp": now + ttl_s,
            "auth_method": "none",
            "auth_method_sub": "mcpreg-tests",
            "permissions": [{"action": "publish", "resource": "*"}, {"action": "edit", "resource": "*"}],
        }
        return jwt.encode(claims, Ed25519PrivateKey.from_private_bytes(self._jwt_seed), algorithm="EdDSA")

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, token: str | None = None
    ) -> Any:
        """One API call (`path` under /v0.1); the decoded JSON answer, or an error naming the status."""
        url = self.api_url + path
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise OfficialRegistryError(f"{method} {url}: HTTP {exc.code}: {detail}") from None

    def publish(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """POST /publish: a new server, or a new version of one (it becomes the latest if higher)."""
        return dict(self.request("POST", "/publish", entry, token=self.admin_token()))

    def edit(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """PUT /servers/{name}/versions/{version}: change a published version in place."""
        path = f"/servers/{_quote(entry['name'])}/versions/{_quote(entry['version'])}"
        return dict(self.request("PUT", path, entry, token=self.admin_token()))

    def set_status(self, name: str, version: str, status: str, message: str | None = None) -> dict[str, Any]:
        """PATCH .../status: `active`, `deprecated` or `deleted` (the official registry never removes a
        version; deleted ones leave the listing but `updated_since` still reports them)."""
        body: dict[str, Any] = {"status": status}
        if message is not None:
            body["statusMessage"] = message
        path = f"/servers/{_quote(name)}/versions/{_quote(version)}/status"
        return dict(self.request("PATCH", path, body, token=self.admin_token()))

    def deprecate(self, name: str, version: str, message: str = "deprecated by the test") -> dict[str, Any]:
        return self.set_status(name, version, "deprecated", message)

    def delete(self, name: str, version: str) -> dict[str, Any]:
        return self.set_status(name, version, "deleted")

    def list_page(self, **params: str | int) -> dict[str, Any]:
        """One page of GET /servers with these query parameters."""
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        return dict(self.request("GET", "/servers" + (f"?{query}" if query else "")))

    def walk(self, **params: str | int) -> tuple[list[dict[str, Any]], int]:
        """Every entry of GET /servers, page by page along `metadata.nextCursor`; (entries, pages)."""
        entries: list[dict[str, Any]] = []
        pages = 0
        cursor = ""
        while True:
            page = self.list_page(**params, **({"cursor": cursor} if cursor else {}))
            pages += 1
            entries.extend(page["servers"])
            cursor = (page.get("metadata") or {}).get("nextCursor") or ""
            if not cursor:
                return entries, pages


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def main(argv: list[str] | None = None) -> int:
    """Run an official registry over a throw-away PostgreSQL in the foreground, until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m mcpreg_dev.official_registry")
    parser.add_argument("--entries", type=int, default=100, help="generated servers to seed")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a fresh temporary directory")
    args = parser.parse_args(argv)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="mcpreg-official-registry-"))
    started = time.monotonic()
    try:
        with OfficialRegistryPeer.started(
            work_dir, seed=generated_servers(args.entries), port=args.port
        ) as peer:
            print(
                f"official registry at {peer.base_url} ({args.entries} entries, ready in "
                f"{time.monotonic() - started:.1f}s; log {peer.log_path}); Ctrl-C stops it",
                flush=True,
            )
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except (BuildError, PostgresError, OfficialRegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
