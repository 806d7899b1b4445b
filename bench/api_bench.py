"""Benchmark of the registry API server (`mcpreg serve`) with wrk on loopback, against nginx as the ceiling.

For the real 102-server catalogue and a generated 10,000-server one (the real entries copied under new
names, stored as the operator stores them), it starts `mcpreg serve --file` (access log on, written to
a file) and measures, with wrk at 64 connections:

- list page (`limit=30`), list page (`limit=100`), search, get by name (`/versions/latest` with %2F),
  the full ToolHive document (`/api/v1/registry`, plain and gzip);
- the same list-page bytes served as a static file by nginx (one worker, access log on): the ceiling,
  and our list-page figure as a ratio of it;
- ToolHive's start-up walk (every page at `limit=1`, then `limit=100`), one keep-alive connection;
- the server's memory (RSS) once loaded, and (10,000 servers) how long a reload takes and what a wrk
  run across the reload sees (errors, p99, max).

The server is pinned to CPU 0 and wrk to CPU 1 when `taskset` exists (this is a 2-core machine).
Everything listens on 127.0.0.1 and every run is bounded by --duration.

    .venv/bin/python bench/api_bench.py [--duration 5] [--repeat 3] [--connections 64] [--servers 10000]
                                        [--json FILE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mcpreg_dev.processes import stop_child

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MCPREG_SHARED_DATA", REPO.parent / "shared" / "data"))
LATEST = SHARED_DATA / "toolhive" / "registry-2026-02-18.json"
OLDER = SHARED_DATA / "toolhive" / "registry-2025-12-03.json"
MCPREG = Path(sys.executable).with_name("mcpreg")
SERVER_CPU, LOAD_CPU = "0", "1"


@dataclass
class WrkResult:
    name: str
    url: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    transfer_per_s: str
    requests: int = 0
    server_cpu_us_per_request: float | None = None  # CPU time the server spent per answer


@dataclass
class DatasetResult:
    label: str
    servers: int
    catalogue_bytes: int
    ready_s: float
    rss_mb: float
    peak_rss_mb: float
    wrk: list[WrkResult] = field(default_factory=list)
    walks: dict[str, dict[str, float]] = field(default_factory=dict)
    nginx: WrkResult | None = None
    list_page_alternated: WrkResult | None = None  # our list page, run alternately with nginx's
    ratio_to_nginx: float | None = None  # requests/s, medians of alternated runs
    cpu_ratio_to_nginx: float | None = None  # nginx's CPU time per request / ours
    reload: dict[str, Any] | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: str, command: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", cpu, *command] if taskset and (os.cpu_count() or 1) > 1 else command


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if get(port, "/readiness")[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"the server was not ready within {timeout}s")


def memory_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its children (nginx's master and worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    total = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def median_run(runs: Iterable[WrkResult]) -> WrkResult:
    """The median of several wrk runs of one figure, by requests/s: this machine is shared, runs vary."""
    ordered = sorted(runs, key=_rate)
    return ordered[len(ordered) // 2]


def _rate(result: WrkResult) -> float:
    return result.requests_per_s


def run_wrk_once(
    name: str,
    url: str,
    args: argparse.Namespace,
    headers: dict[str, str] | None = None,
    pid: int | None = None,
    *,
    script: Path | None = None,
    threads: int | None = None,
) -> WrkResult:
    """One wrk run (with a Lua `script`, and `threads` instead of --threads, when given), and the
    server's CPU time per request when `pid` is the server's."""
    command = [
        "wrk",
        "-t",
        str(threads or args.threads),
        "-c",
        str(args.connections),
        "-d",
        f"{args.duration}s",
        "--latency",
    ]
    if script is not None:
        command += ["-s", str(script)]
    for key, value in (headers or {}).items():
        command += ["-H", f"{key}: {value}"]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    output = subprocess.run(
        pinned(LOAD_CPU, [*command, url]),
        capture_output=True,
        text=True,
        check=True,
        timeout=args.duration + 60,
    ).stdout
    result = parse_wrk(name, url, output)
    if pid and result.requests:
        result.server_cpu_us_per_request = round((cpu_seconds(pid) - cpu_before) / result.requests * 1e6, 1)
    return result


def walk(port: int, limit: int) -> dict[str, float]:
    """ToolHive's ListServers: every page at `limit`, version=latest, on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    cursor, pages, servers = "", 0, 0
    try:
        while True:
            query = (f"cursor={cursor}&" if cursor else "") + f"limit={limit}&version=latest"
            connection.request("GET", f"/v0.1/servers?{query}")
            response = connection.getresponse()
            document = json.loads(response.read())
            if response.status != 200:
                raise SystemExit(f"walk failed: {response.status} {document}")
            pages += 1
            servers += len(document["servers"])
            cursor = document["metadata"].get("nextCursor", "")
            if not cursor:
                break
    finally:
        connection.close()
    return {
        "limit": limit,
        "pages": pages,
        "servers": servers,
        "seconds": round(time.perf_counter() - started, 3),
    }


def wrk_arguments(description: str | None) -> argparse.Namespace:
    """The command line of a one-figure-per-request-kind wrk benchmark (cors_bench, auth_bench)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="wrk runs per figure; the median is kept")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args()


def wrk_report(args: argparse.Namespace, results: list[WrkResult], **figures: Any) -> int:
    """Print the figures of a `wrk_arguments` benchmark as JSON (and write them to --json FILE): its
    settings, every wrk result, then its own `figures`."""
    document = {
        "connections": args.connections,
        "duration_s": args.duration,
        "results": [asdict(result) for result in results],
        **figures,
    }
    text = json.dumps(document, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


class ApiServer:
    """`mcpreg serve --file CATALOGUE` pinned to SERVER_CPU; with `config`, `--config CONFIG` instead
    (a document naming the catalogue), followed by `extra` arguments."""

    def __init__(
        self, catalogue: Path, workdir: Path, *, config: Path | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        source = ("--config", str(config)) if config is not None else ("--file", str(catalogue))
        self.port = free_port()
        self.access_log = workdir / f"access-{self.port}.log"
        self.stderr = workdir / f"server-{self.port}.err"
        with self.access_log.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                pinned(
                    SERVER_CPU,
                    [
                        str(MCPREG),
                        "serve",
                        *source,
                        "--port",
                        str(self.port),
                        "--poll-interval",
                        "0.1",
                        *extra,
                    ],
                ),
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group, for stop_child
            )
        self.ready_s = wait_ready(self.port, self.process)

    def metric(self, name: str) -> float:
        text = get(self.port, "/metrics")[1].decode()
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def stop(self) -> None:
        stop_child(self.process, signal.SIGTERM, grace_s=30)


class Nginx:
    """nginx serving one directory as static files: one worker, pinned like our server, access log on."""

    def __init__(self, root: Path, workdir: Path) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise FileNotFoundError("nginx is not installed (apt-get install nginx-light)")
        self.port = free_port()
        prefix = workdir / f"nginx-{self.port}"
        prefix.mkdir()
        for directory in (workdir, root, prefix):
            directory.chmod(0o755)  # nginx's worker runs as nobody
        conf = prefix / "nginx.conf"
        conf.write_text(
            textwrap.dedent(
                f"""\
                worker_processes 1;
                daemon off;
                pid {prefix}/nginx.pid;
                error_log {prefix}/error.log warn;
                events {{ worker_connections 1024; }}
                http {{
                    access_log {prefix}/access.log;
                    client_body_temp_path {prefix}/body;
                    proxy_temp_path {prefix}/proxy;
                    fastcgi_temp_path {prefix}/fastcgi;
                    uwsgi_temp_path {prefix}/uwsgi;
                    scgi_temp_path {prefix}/scgi;
                    sendfile on;
                    tcp_nopush on;
                    keepalive_requests 1000000;
                    server {{
                        listen 127.0.0.1:{self.port};
                        location / {{ root {root}; default_type application/json; etag on; }}
                    }}
                }}
                """
            )
        )
        self.process = subprocess.Popen(
            pinned(SERVER_CPU, [binary, "-p", str(prefix), "-c", str(conf)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # master and worker in one process group, for stop_child
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if get(self.port, "/")[0] in (200, 403, 404):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        stop_child(self.process, signal.SIGQUIT, grace_s=20)  # SIGQUIT: nginx's graceful shutdown


def first_name_with(port: int, text: str) -> str:
    status, body = get(port, f"/v0.1/servers?search={text}&version=latest&limit=1")
    servers = json.loads(body)["servers"]
    if status != 200 or not servers:
        raise SystemExit(f"no server matching {text!r} to benchmark")
    return str(servers[0]["server"]["name"])


def bench_dataset(label: str, catalogue: Path, args: argparse.Namespace, workdir: Path) -> DatasetResult:
    server = ApiServer(catalogue, workdir)
    try:
        rss, peak = memory_mb(server.process.pid)
        readiness = json.loads(get(server.port, "/readiness")[1])["catalog"]
        result = DatasetResult(
            label,
            readiness["servers"],
            catalogue.stat().st_size,
            round(server.ready_s, 2),
            round(rss, 1),
            round(peak, 1),
        )
        base = f"http://127.0.0.1:{server.port}"
        name = first_name_with(server.port, "fetch")
        scenarios = [
            ("list limit=30", "/v0.1/servers?limit=30", None),
            ("list limit=100", "/v0.1/servers?limit=100", None),
            ("search", "/v0.1/servers?search=fetch&version=latest", None),
            ("get by name", f"/v0.1/servers/{quote(name, safe='')}/versions/latest", None),
            ("ToolHive document", "/api/v1/registry", None),
            ("ToolHive document, gzip", "/api/v1/registry", {"Accept-Encoding": "gzip"}),
        ]
        for scenario, path, headers in scenarios:
            get(server.port, path, headers)  # warm: first render of this page
            pid = server.process.pid
            outcome = median_run(
                run_wrk_once(scenario, base + path, args, headers, pid) for _ in range(args.repeat)
            )
            result.wrk.append(outcome)
            print(f"  {label:>14}  {_row(outcome)}", flush=True)
        result.walks["limit=1"] = walk(server.port, 1)
        result.walks["limit=100"] = walk(server.port, 100)
        print(f"  {label:>14}  walks: {result.walks}", flush=True)
        if not args.skip_nginx:
            compare_with_nginx(result, server, args, workdir)
            print(
                f"  {label:>14}  {_row(result.nginx)}\n  {label:>14}  {_row(result.list_page_alternated)}"  # type: ignore[arg-type]
                f"\n  {label:>14}  ratio to nginx: {result.ratio_to_nginx:.2f} (requests/s), "
                f"{result.cpu_ratio_to_nginx:.2f} (CPU per request)",
                flush=True,
            )
        if args.reload_with is not None and label != "real":
            result.reload = measure_reload(server, catalogue, args.reload_with, args, workdir)
            print(f"  {label:>14}  reload: {result.reload}", flush=True)
        return result
    finally:
        server.stop()


def compare_with_nginx(
    result: DatasetResult, server: ApiServer, args: argparse.Namespace, workdir: Path
) -> None:
    """nginx serving our list page as a file, run alternately with our list page (so both see the
    same background load), medians of each; and CPU time per request, which other load hardly moves."""
    path = "/v0.1/servers?limit=30"
    page = get(server.port, path)[1]
    root = workdir / f"www-{server.port}"
    root.mkdir()
    (root / "page.json").write_bytes(page)
    nginx = Nginx(root, workdir)
    ours: list[WrkResult] = []
    theirs: list[WrkResult] = []
    try:
        for _ in range(args.repeat):
            theirs.append(
                run_wrk_once(
                    "nginx: same list page",
                    f"http://127.0.0.1:{nginx.port}/page.json",
                    args,
                    None,
                    nginx.process.pid,
                )
            )
            ours.append(
                run_wrk_once(
                    "list limit=30 (alternated)",
                    f"http://127.0.0.1:{server.port}{path}",
                    args,
                    None,
                    server.process.pid,
                )
            )
    finally:
        nginx.stop()
    result.nginx = median_run(theirs)
    result.list_page_alternated = median_run(ours)
    result.ratio_to_nginx = round(result.list_page_alternated.requests_per_s / result.nginx.requests_per_s, 3)
    our_cpu = sorted(r.server_cpu_us_per_request or 0.0 for r in ours)[len(ours) // 2]
    their_cpu = sorted(r.server_cpu_us_per_request or 0.0 for r in theirs)[len(theirs) // 2]
    result.cpu_ratio_to_nginx = round(their_cpu / our_cpu, 3) if our_cpu else None


def measure_reload(
    server: ApiServer, catalogue: Path, other: Path, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """Swap the file for another catalogue of the same size while wrk hammers the list page."""
    before_hash = json.loads(get(server.port, "/version")[1])["catalog"]["contentHash"]
    loads_before = server.metric("mcpreg_api_catalog_reload_duration_seconds_count")
    build_before = server.metric("mcpreg_api_catalog_reload_duration_seconds_sum")
    duration = max(args.duration, 8)
    wrk = subprocess.Popen(
        pinned(
            LOAD_CPU,
            [
                "wrk",
                "-t",
                str(args.threads),
                "-c",
                str(args.connections),
                "-d",
                f"{duration}s",
                "--latency",
                f"http://127.0.0.1:{server.port}/v0.1/servers?limit=30",
            ],
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    staging = catalogue.with_suffix(".next")
    shutil.copyfile(other, staging)
    replaced = time.monotonic()
    os.replace(staging, catalogue)
    while json.loads(get(server.port, "/version")[1])["catalog"]["contentHash"] == before_hash:
        if time.monotonic() - replaced > 120:
            raise SystemExit("the reload did not happen within 120 s")
        time.sleep(0.02)
    visible = time.monotonic() - replaced
    output, _ = wrk.communicate(timeout=duration + 60)
    rss, peak = memory_mb(server.process.pid)
    under_load = parse_wrk("list limit=30 across the reload", "", output)
    return {
        "build_s": round(server.metric("mcpreg_api_catalog_reload_duration_seconds_sum") - build_before, 3),
        "loads": int(server.metric("mcpreg_api_catalog_reload_duration_seconds_count") - loads_before),
        "file_replaced_to_served_s": round(visible, 3),
        "rss_after_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
        "wrk_across_reload": asdict(under_load),
    }


def parse_wrk(name: str, url: str, output: str) -> WrkResult:
    def field(pattern: str) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise SystemExit(f"unreadable wrk output for {name}:\n{output}")
        return match.group(1)

    latency_line = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", output)
    transfer = re.search(r"Transfer/sec:\s+(\S+)", output)
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(
        name=name,
        url=url,
        requests=int(field(r"(\d+) requests in")),
        requests_per_s=float(field(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(field(r"^\s+50%\s+(\S+)")),
        p99_ms=_ms(field(r"^\s+99%\s+(\S+)")),
        max_ms=_ms(latency_line.group(3)) if latency_line else 0.0,
        errors=errors,
        transfer_per_s=transfer.group(1) if transfer else "",
    )


def _row(result: WrkResult) -> str:
    cpu = f"  cpu {result.server_cpu_us_per_request:.0f} us/req" if result.server_cpu_us_per_request else ""
    return (
        f"{result.name:<28} {result.requests_per_s:>9.0f} req/s{cpu}  p50 {result.p50_ms:6.2f} ms  "
        f"p99 {result.p99_ms:6.2f} ms  max {result.max_ms:7.1f} ms  errors {result.errors}  "
        f"{result.transfer_per_s}/s"
    )


def generated_catalogue(source: Path, count: int, target: Path) -> Path:
    sys.path.insert(0, str(REPO / "src"))
    from mcpreg_dev.samples import replicated_catalog_json

    data, _ = replicated_catalog_json(source, count)
    target.write_bytes(data)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="wrk runs per scenario; the median is kept")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--servers", type=int, default=10_000, help="size of the generated catalogue (0: skip)"
    )
    parser.add_argument("--skip-nginx", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    if not LATEST.is_file():
        print(f"shared data not found at {SHARED_DATA} (set MCPREG_SHARED_DATA)", file=sys.stderr)
        return 2
    if not args.skip_nginx and not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        print("nginx not found: skipping the ceiling (apt-get install nginx-light)", file=sys.stderr)
        args.skip_nginx = True
    args.reload_with = None
    results: list[DatasetResult] = []
    with tempfile.TemporaryDirectory(prefix="mcpreg-api-bench-") as tmp:
        workdir = Path(tmp)
        real = workdir / "real.json"
        shutil.copyfile(LATEST, real)
        print(
            f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s on 127.0.0.1; "
            f"server on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}",
            flush=True,
        )
        results.append(bench_dataset("real", real, args, workdir))
        if args.servers:
            print(f"generating a {args.servers}-server catalogue ...", flush=True)
            large = generated_catalogue(LATEST, args.servers, workdir / "large.json")
            args.reload_with = generated_catalogue(OLDER, args.servers, workdir / "large-other.json")
            results.append(bench_dataset(f"{args.servers} servers", large, args, workdir))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print()
    print(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
