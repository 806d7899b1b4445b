"""`mcpreg serve --file` (and `--config` on a configuration document) as a real process: it serves,
reloads when the file changes, writes the access log as JSON lines on stdout, refuses oversized requests,
and stops cleanly on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", REPO.parent / "shared" / "data"))
LATEST = SHARED / "toolhive" / "registry-2026-02-18.json"
OLDER = SHARED / "toolhive" / "registry-2025-07-29.json"
MCPREG = Path(sys.executable).with_name("mcpreg")

# The real catalogues are part of the test contract: missing data fails the tests, it never skips them.
needs_shared = pytest.mark.usefixtures("require_shared_data")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiProcess:
    process: subprocess.Popen[bytes]
    base: str
    port: int
    stdout: Path
    stderr: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, body
        return json.loads(body)

    def access_log(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line.strip()]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def start_api(tmp_path: Path, *args: str, timeout: float = 60) -> ApiProcess:
    """`mcpreg serve ARGS` on a free loopback port, once /readiness answers 200."""
    port = free_port()
    stdout, stderr = tmp_path / f"api-{port}.out", tmp_path / f"api-{port}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            # Access-log lines written at once, so that tests can read them as soon as a response is in.
            [
                str(MCPREG),
                "serve",
                *args,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--access-log-flush",
                "0",
            ],
            stdout=out,
            stderr=err,
        )
    api = ApiProcess(process, f"http://127.0.0.1:{port}", port, stdout, stderr)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mcpreg serve exited {process.returncode}: {stderr.read_text()[-2000:]}")
        try:
            if api.get("/readiness")[0] == 200:
                return api
        except OSError:
            pass
        time.sleep(0.1)
    api.stop()
    raise AssertionError(f"mcpreg serve not ready after {timeout}s: {stderr.read_text()[-2000:]}")


@pytest.fixture
def served_file(tmp_path: Path) -> Iterator[tuple[ApiProcess, Path]]:
    path = tmp_path / "registry.json"
    path.write_bytes(LATEST.read_bytes())
    api = start_api(tmp_path, "--file", str(path), "--poll-interval", "0.1")
    yield api, path
    api.stop()


@needs_shared
def test_serves_reloads_and_logs(served_file: tuple[ApiProcess, Path]) -> None:
    api, path = served_file
    first = api.json("/v0.1/servers?limit=100&version=latest")
    assert first["metadata"]["count"] == 100 and first["metadata"]["nextCursor"]
    assert api.json("/readiness")["catalog"]["servers"] == 102

    staging = path.with_suffix(".new")
    staging.write_bytes(OLDER.read_bytes())
    os.replace(staging, path)
    deadline = time.monotonic() + 30
    while api.json("/version")["catalog"]["servers"] != 32:
        assert time.monotonic() < deadline, "the new file was not loaded"
        time.sleep(0.1)
    assert api.json("/v0.1/servers?limit=100")["metadata"] == {"count": 32}

    assert api.stop() == 0  # stopping flushes the access log
    log = api.access_log()
    assert log and all(
        set(line) >= {"remote", "method", "path", "status", "bytes", "latency_ms"} for line in log
    )
    listing = [line for line in log if line["path"] == "/v0.1/servers" and line["query"] == "limit=100"]
    assert listing and listing[-1]["status"] == 200 and listing[-1]["bytes"] > 1000
    assert "shutting down" in api.stderr.read_text()


@needs_shared
def test_refuses_oversized_requests(served_file: tuple[ApiProcess, Path]) -> None:
    api, _ = served_file
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    connection.request("GET", "/v0.1/servers?search=" + "x" * 10_000)
    assert connection.getresponse().status in (400, 414)
    connection.close()
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    connection.putrequest("GET", "/health")
    for i in range(100):
        connection.putheader(f"X-Header-{i}", "v")
    connection.endheaders()
    assert connection.getresponse().status in (400, 431)
    connection.close()
    assert api.get("/health")[0] == 200  # and it keeps serving


@needs_shared
def test_unusable_arguments(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(MCPREG), "serve", "--file", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "no such file" in result.stderr
    result = subprocess.run([str(MCPREG), "serve"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--file" in result.stderr


@needs_shared
def test_serves_from_a_configuration_document(tmp_path: Path) -> None:
    catalogue = tmp_path / "registry.json"
    catalogue.write_bytes(LATEST.read_bytes())
    config = tmp_path / "api.yaml"
    config.write_text(
        "apiVersion: mcpregistry.dev/v1alpha1\nkind: ApiServerConfig\n"
        f"storage: {{type: file, path: {json.dumps(str(catalogue))}}}\n"
        "http: {cacheMaxAgeSeconds: 7}\n"
    )
    api = start_api(tmp_path, "--config", str(config))
    try:
        status, headers, _ = api.get("/v0.1/servers?limit=1")
        assert status == 200 and headers["Cache-Control"] == "public, max-age=7"
        assert api.json("/readiness")["catalog"]["servers"] == 102
    finally:
        assert api.stop() == 0
    config.write_text(config.read_text().replace("cacheMaxAgeSeconds", "cacheMaxAge"))
    result = subprocess.run(
        [str(MCPREG), "serve", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr == f"error: {config}: http.cacheMaxAge: unknown field\n"
