"""Resident memory of the registry API server (`mcpreg serve --file`) across many catalogue reloads.

Starts the real server on loopback following a catalogue file (polled every 0.1 s), then replaces the
file `--reloads` times, alternating between two distinct generated catalogues of `--servers` servers
each (the real ToolHive entries under new names, as catalogue files in canonical JSON, 18.5 and
18.3 MB), so that every replacement is a real reload: a build in a child process, the swap, and what
the loader does with the garbage collector afterwards. Clients stay connected across each reload as a
Service's clients do: `--connections` keep-alive connections each make a request before the file is
replaced and another once the new generation is served, then close. (Each closed connection leaves a
small reference cycle in the server - transport and socket - that only the cyclic collector frees.)

After each reload the server's VmRSS is read from /proc. Printed: RSS after reload 1, 10, 50 and 100,
the median of each ten reloads (single samples swing by ±20 MB with the allocator), and the
least-squares slope per reload over all reloads and over the last half (after the allocator has
warmed up). Aim: flat.
The server runs with glibc's mmap threshold fixed (see MMAP_THRESHOLD; `--dynamic-malloc` to leave it),
and `--mcpreg` starts another build of the server, to compare.

    .venv/bin/python bench/reload_memory_bench.py [--reloads 100] [--servers 10000] [--connections 500]
                                                  [--dynamic-malloc] [--mcpreg PATH] [--json FILE]
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MCPREG_SHARED_DATA", REPO.parent / "shared" / "data"))
SOURCES = (
    SHARED_DATA / "toolhive" / "registry-2026-02-18.json",
    SHARED_DATA / "toolhive" / "registry-2025-12-03.json",
)
MCPREG = Path(sys.executable).with_name("mcpreg")
SAMPLE_AT = (1, 10, 50, 100)
# glibc serves a large block (a catalogue's bytes, the 12 MB ToolHive document) from the heap once its
# dynamic mmap threshold has grown, and a fragmented heap keeps RSS up long after the block is freed;
# a fixed threshold maps and unmaps each large block, so that RSS follows the memory in use.
MMAP_THRESHOLD = 128 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def rss_mb(pid: int) -> float:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit(f"no VmRSS for process {pid}")
    return int(match.group(1)) / 1024


def metric(port: int, name: str) -> float:
    text = get(port, "/metrics")[1].decode()
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def served_hash(port: int) -> str | None:
    try:
        status, body = get(port, "/version")
    except OSError:
        return None
    if status != 200:
        return None
    catalog = json.loads(body).get("catalog") or {}
    return catalog.get("contentHash")


def wait_served(port: int, process: subprocess.Popen[bytes], content_hash: str, timeout: float) -> float:
    started = time.monotonic()
    while served_hash(port) != content_hash:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{content_hash} was not served within {timeout:.0f}s")
        time.sleep(0.02)
    return time.monotonic() - started


def connect_clients(port: int, count: int) -> list[http.client.HTTPConnection]:
    clients = []
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        request(connection)
        clients.append(connection)
    return clients


def request(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/v0.1/servers?limit=5")
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"the server answered {response.status}")


def generated(source: Path, count: int, target: Path) -> str:
    """Write a `count`-server catalogue made from `source`'s entries; its content hash."""
    sys.path.insert(0, str(REPO / "src"))
    from mcpreg.storage.model import sha256_hash
    from mcpreg_dev.samples import replicated_catalog_json

    data, _ = replicated_catalog_json(source, count)
    target.write_bytes(data)
    return sha256_hash(data)


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares MB per reload."""
    if len(points) < 2:
        return 0.0
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    print(f"generating two {args.servers}-server catalogues ...", flush=True)
    catalogues = [
        (workdir / f"catalogue-{i}.json", generated(source, args.servers, workdir / f"catalogue-{i}.json"))
        for i, source in enumerate(SOURCES)
    ]
    served = workdir / "served.json"
    shutil.copyfile(catalogues[0][0], served)
    port = free_port()
    command = [
        str(args.mcpreg),
        "serve",
        "--file",
        str(served),
        "--port",
        str(port),
        "--poll-interval",
        "0.1",
    ]
    command += ["--no-access-log"]
    stderr = (workdir / "server.err").open("wb")
    environment = dict(os.environ)
    if not args.dynamic_malloc:
        environment.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=environment)
    try:
        wait_served(port, process, catalogues[0][1], timeout=120)
        loaded_rss = rss_mb(process.pid)
        print(f"serving {args.servers} servers: {loaded_rss:.1f} MB resident", flush=True)
        reloads: list[dict[str, Any]] = []
        for number in range(1, args.reloads + 1):
            path, content_hash = catalogues[number % 2]
            clients = connect_clients(port, args.connections)
            build_before = metric(port, "mcpreg_api_catalog_reload_duration_seconds_sum")
            staging = served.with_suffix(".next")
            shutil.copyfile(path, staging)
            os.replace(staging, served)
            visible = wait_served(port, process, content_hash, timeout=120)
            dropped = 0
            for connection in clients:
                try:
                    request(connection)
                except (http.client.HTTPException, ConnectionError):
                    dropped += 1  # idle past the server's keep-alive timeout (a slow reload): closed
                connection.close()
            time.sleep(0.2)  # the server notices the closes
            sample = {
                "reload": number,
                "rss_mb": round(rss_mb(process.pid), 1),
                "build_s": round(
                    metric(port, "mcpreg_api_catalog_reload_duration_seconds_sum") - build_before, 3
                ),
                "served_after_s": round(visible, 3),
                "closed_by_server": dropped,
            }
            reloads.append(sample)
            if number in SAMPLE_AT or number == args.reloads or number % 10 == 0:
                print(
                    f"reload {number:3d}: {sample['rss_mb']:6.1f} MB  (built in {sample['build_s']:.2f} s, "
                    f"served {sample['served_after_s']:.2f} s after the file was replaced)",
                    flush=True,
                )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stderr.close()
    series = [(r["reload"], float(r["rss_mb"])) for r in reloads]
    rss = [value for _, value in series]
    return {
        "servers": args.servers,
        "reloads": args.reloads,
        "connections_per_reload": args.connections,
        "rss_loaded_mb": round(loaded_rss, 1),
        "rss_after_mb": {str(n): value for n, value in series if n in SAMPLE_AT or n == args.reloads},
        "rss_median_per_10_mb": [
            round(statistics.median(rss[i : i + 10]), 1) for i in range(0, len(rss), 10)
        ],
        "rss_max_mb": max(rss),
        "slope_mb_per_reload": round(slope(series), 3),
        "slope_last_half_mb_per_reload": round(slope(series[len(series) // 2 :]), 3),
        "build_s_median": statistics.median(r["build_s"] for r in reloads),
        "closed_by_server": sum(r["closed_by_server"] for r in reloads),
        "series": reloads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reloads", type=int, default=100)
    parser.add_argument("--servers", type=int, default=10_000, help="servers in each generated catalogue")
    parser.add_argument(
        "--connections", type=int, default=500, help="keep-alive clients connected across each reload"
    )
    parser.add_argument(
        "--dynamic-malloc",
        action="store_true",
        help=f"leave glibc's mmap threshold dynamic (default: fixed at {MMAP_THRESHOLD // 1024} KiB)",
    )
    parser.add_argument("--mcpreg", type=Path, default=MCPREG, help="the mcpreg executable to start")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not all(source.is_file() for source in SOURCES):
        print(f"shared data not found at {SHARED_DATA} (set MCPREG_SHARED_DATA)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mcpreg-reload-bench-") as tmp:
        result = run(args, Path(tmp))
    summary = ", ".join(f"{n}: {rss:.1f} MB" for n, rss in result["rss_after_mb"].items())
    medians = " ".join(f"{value:.0f}" for value in result["rss_median_per_10_mb"])
    print(
        f"\nRSS after reload {summary}\nmedian of each 10 reloads (MB): {medians}\n"
        f"slope {result['slope_mb_per_reload']:+.3f} MB/reload "
        f"(last half: {result['slope_last_half_mb_per_reload']:+.3f}); "
        f"median build {result['build_s_median']:.2f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "series"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
