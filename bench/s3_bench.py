"""Benchmark of S3 storage on a 10,000-server catalogue, against a real MinIO on loopback (built from
Go modules on first use), and of the registry API's reload after a new generation.

The catalogue is the real entries of the newest ToolHive snapshot replicated under new names (see
`mcpreg_dev.samples`), in the served form the operator stores (`mcpreg.served/v1`). Each run uses a
fresh registry prefix and measures:

- store (cold): `write()` into an empty prefix: hash check, gzip, the ToolHive document (taken from the
  served form), upload of both objects (the 18 MB ToolHive document in multipart), pointer;
- render: taking the ToolHive document out of the served form, alone (part of store; it lets
  `/api/v1/registry` redirect);
- store (unchanged): `write()` of the same hash: the no-op the operator does on every sync;
- current_hash: the cheap check the operator makes before syncing (pointer GET + HEADs);
- load: `read()` of the whole catalogue (pointer + download + gunzip + verify);
- switch: `write()` of a different 10,000-server generation (old generations pruned);
- API reload: from the end of that switch (the pointer is published) until `mcpreg serve --s3-bucket`
  (a separate process, polling every `--poll-interval` seconds) answers with the new generation;
  about half a poll interval of that is waiting for the next poll.
- longest event-loop step: the most CPU time any single callback or task step took on the event loop
  (every boto3 call, compression, hashing and rendering run in worker threads).

    .venv/bin/python bench/s3_bench.py [--servers 10000] [--runs 3] [--poll-interval 1.0] [--json]
"""

from __future__ import annotations

import asyncio
import http.client
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, TypeVar

import cmdline  # bench/ is sys.path[0]
from storage_bench import timed, write_and_load

from mcpreg.storage import StoredCatalog
from mcpreg.storage.documents import extra_documents
from mcpreg.storage.s3_config import S3Address
from mcpreg.storage.s3_reader import S3CatalogReader
from mcpreg.storage.s3_store import S3CatalogStore
from mcpreg_dev.controlplane import free_port
from mcpreg_dev.minio import MinioServer
from mcpreg_dev.samples import replicated_served

# The sibling benchmark's event-loop meter (bench/ is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
LoopStepMeter: Any = importlib.import_module("storage_bench").LoopStepMeter

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MCPREG_SHARED_DATA", REPO.parent / "shared" / "data"))
NAMESPACE = "bench"
BUCKET = "bench"
T = TypeVar("T")


def _served_hash(port: int) -> str | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/readiness")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        return str(json.loads(body)["catalog"]["contentHash"])
    except OSError:
        return None
    finally:
        connection.close()


def start_api(
    minio: MinioServer, registry: str, poll_interval: float, log_dir: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=minio.access_key, AWS_SECRET_ACCESS_KEY=minio.secret_key)
    with (log_dir / f"api-{registry}.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "mcpreg_cli.main", "serve",
                "--registry", registry, "--namespace", NAMESPACE,
                "--s3-bucket", BUCKET, "--s3-endpoint", minio.endpoint, "--s3-region", "us-east-1",
                "--s3-force-path-style", "--s3-poll-interval", str(poll_interval),
                "--port", str(port), "--no-access-log", "--log-level", "WARNING",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip
    return process, port


def wait_served(port: int, content_hash: str, timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if _served_hash(port) == content_hash:
            return time.perf_counter() - started
        time.sleep(0.01)
    raise RuntimeError(f"the API did not serve {content_hash} within {timeout}s")


async def one_run(
    minio: MinioServer, a: StoredCatalog, b: StoredCatalog, poll_interval: float, log_dir: Path
) -> dict[str, Any]:
    registry = f"r-{uuid.uuid4().hex[:8]}"
    settings = minio.settings(BUCKET, read_timeout=60.0, max_attempts=3)
    address = S3Address(settings, NAMESPACE, registry, _provider(minio))
    store = S3CatalogStore(address)
    reader = S3CatalogReader(address)
    figures: dict[str, Any] = {}
    with LoopStepMeter() as steps:
        first_figures, first = await write_and_load(store, reader, a)
        figures.update(first_figures)
        api, port = start_api(minio, registry, poll_interval, log_dir)
        try:
            await asyncio.to_thread(wait_served, port, a.content_hash)
            figures["switch_s"], switched = await timed(lambda: store.write(b))
            assert switched.written
            figures["api_reload_s"] = await asyncio.to_thread(wait_served, port, b.content_hash)
        finally:
            api.terminate()
            api.wait(30)
    figures["loop_step_ms"] = steps.worst_cpu * 1000
    figures["loop_step"] = steps.worst_step
    figures["stored_bytes"] = first.stored_bytes
    await store.delete()
    return figures


def _provider(minio: MinioServer) -> Any:
    credentials = minio.credentials

    async def provide() -> Any:
        return credentials

    return provide


def main() -> int:
    parser = cmdline.parser(__doc__.split("\n\n")[0], servers=10_000, runs=3)
    parser.add_argument("--poll-interval", type=float, default=1.0, help="the API's --s3-poll-interval")
    args = parser.parse_args()

    latest = SHARED_DATA / "toolhive" / "registry-2026-02-18.json"
    older = SHARED_DATA / "toolhive" / "registry-2025-12-03.json"
    data_a, count_a = replicated_served(latest, args.servers)
    data_b, count_b = replicated_served(older, args.servers)
    a = StoredCatalog.create(data_a, revision="a", server_count=count_a)
    b = StoredCatalog.create(data_b, revision="b", server_count=count_b)
    extra_documents(b)  # warm up (first use of the catalogue code)
    started = time.perf_counter()
    toolhive = extra_documents(a)["toolhive"]
    render_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="mcpreg-s3-bench-") as tmp:
        minio = MinioServer.create(Path(tmp))
        minio.start()
        try:
            minio.create_bucket(BUCKET)
            runs = [
                asyncio.run(one_run(minio, a, b, args.poll_interval, Path(tmp))) for _ in range(args.runs)
            ]
        finally:
            minio.stop()

    keys = [
        "store_s",
        "store_unchanged_s",
        "current_hash_s",
        "load_s",
        "switch_s",
        "api_reload_s",
        "loop_step_ms",
    ]
    summary = {key: statistics.median(run[key] for run in runs) for key in keys}
    result = {
        "servers": count_a,
        "catalog_bytes": len(a.data),
        "stored_bytes": runs[0]["stored_bytes"],
        "toolhive_bytes": len(toolhive),
        "render_s": render_s,
        "poll_interval_s": args.poll_interval,
        "median": summary,
        "runs": runs,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    mb = 1_000_000
    print(
        f"{count_a} servers: catalogue {len(a.data) / mb:.1f} MB, stored "
        f"{result['stored_bytes'] / mb:.2f} MB gzip + ToolHive document {len(toolhive) / mb:.1f} MB; "
        f"MinIO on loopback; medians of {args.runs} runs"
    )
    seconds = {
        "store (cold, incl. render + upload)": summary["store_s"],
        "ToolHive rendering alone": render_s,
        "store (unchanged hash)": summary["store_unchanged_s"],
        "current_hash": summary["current_hash_s"],
        "load (read + verify)": summary["load_s"],
        "switch to a new generation": summary["switch_s"],
        f"API reload (poll every {args.poll_interval:g}s)": summary["api_reload_s"],
    }
    for label, value in seconds.items():
        print(f"  {label:<40} {value:8.3f} s")
    print(f"  {'longest event-loop step (CPU)':<40} {summary['loop_step_ms']:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
