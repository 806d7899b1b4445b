"""How long the registry API takes to load one 10,000-server generation, from ConfigMaps and from S3.

What a replica does when a new generation is published, measured in this process with the API's own
code: the storage reader's `read()` (fetch, decode, verify the hash) and the API's snapshot build
(`mcpreg_api.builder.build_off_loop`: everything between the stored bytes and a snapshot ready to
serve). The generation is what the operator stores - the served document (`mcpreg.catalog.served`)
rendered from the sample - written first by the operator's own storage writer, into a real
kube-apiserver (started here) and a real MinIO (built from Go modules on first use, on loopback).
`--stored canonical` stores canonical catalogue JSON instead, as operators did before the served
document (and as the API still reads, parsing it, until the operator rewrites it).

    .venv/bin/python bench/api_load_bench.py [--servers 10000] [--runs 5] [--backends configmap,s3]
        [--stored served|canonical] [--json]

Figures: median and maximum of each stage over the runs (after one warm-up run per backend); the
worst lateness of a 10 ms sleep on the event loop during a build (how long the build kept the loop
from serving); stored bytes as written; the resident memory of this process after the last load
(one snapshot alive, plus the Kubernetes and S3 clients).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import cmdline
from kubernetes_asyncio import client as kclient
from kubernetes_asyncio import config as kconfig
from procstat import rss_kib
from storage_bench import SHARED_DATA, timed  # bench/ is the script's directory: sys.path[0]

from mcpreg.storage import ConfigMapAddress, ConfigMapCatalogReader, ConfigMapCatalogStore, StoredCatalog
from mcpreg.storage.interfaces import CatalogReader
from mcpreg.storage.s3_config import S3Address, S3Credentials
from mcpreg.storage.s3_reader import S3CatalogReader
from mcpreg.storage.s3_store import S3CatalogStore
from mcpreg_api.builder import build_off_loop
from mcpreg_dev.controlplane import ControlPlane
from mcpreg_dev.minio import MinioServer
from mcpreg_dev.samples import replicated_catalog_json, replicated_served

T = TypeVar("T")
NAMESPACE = "bench"
BUCKET = "bench"


PROBE_INTERVAL = 0.010


async def worst_lag(work: Awaitable[T]) -> tuple[T, float]:
    """`work`'s result, and how late at worst a 10 ms sleep on this loop woke meanwhile."""
    worst = 0.0
    done = asyncio.Event()

    async def probe() -> None:
        nonlocal worst
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(PROBE_INTERVAL)
            worst = max(worst, time.perf_counter() - started - PROBE_INTERVAL)

    prober = asyncio.create_task(probe())
    try:
        return await work, worst
    finally:
        done.set()
        await prober


async def load_once(reader: CatalogReader, expected_hash: str, servers: int) -> dict[str, float]:
    read_s, stored = await timed(reader.read)
    assert stored is not None and stored.content_hash == expected_hash
    (build_s, snapshot), lag_s = await worst_lag(timed(lambda: build_off_loop(stored)))
    assert snapshot.server_count == servers, (snapshot.server_count, servers)
    return {"read_s": read_s, "build_s": build_s, "total_s": read_s + build_s, "loop_lag_s": lag_s}


async def configmap_runs(
    kubeconfig: str, stored: StoredCatalog, servers: int, runs: int
) -> tuple[list[dict[str, float]], int]:
    api = await kconfig.new_client_from_config(config_file=kubeconfig)
    core = kclient.CoreV1Api(api)
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    await core.create_namespace(kclient.V1Namespace(metadata=kclient.V1ObjectMeta(name=namespace)))
    try:
        address = ConfigMapAddress(api, namespace, "bench")
        written = await ConfigMapCatalogStore(address, owner=None).write(stored)
        reader = ConfigMapCatalogReader(address)
        await load_once(reader, stored.content_hash, servers)  # warm-up
        return [await load_once(reader, stored.content_hash, servers) for _ in range(runs)], (
            written.stored_bytes
        )
    finally:
        await core.delete_namespace(namespace)
        await api.close()


async def s3_runs(
    minio: MinioServer, stored: StoredCatalog, servers: int, runs: int
) -> tuple[list[dict[str, float]], int]:
    settings = minio.settings(BUCKET, read_timeout=60.0, max_attempts=3)
    credentials = minio.credentials

    async def provider() -> S3Credentials:
        return credentials

    registry = f"bench-{uuid.uuid4().hex[:8]}"
    address = S3Address(settings, NAMESPACE, registry, provider)
    written = await S3CatalogStore(address).write(stored)
    reader = S3CatalogReader(address)
    await load_once(reader, stored.content_hash, servers)  # warm-up
    return [await load_once(reader, stored.content_hash, servers) for _ in range(runs)], written.stored_bytes


FIGURES = ("read_s", "build_s", "total_s", "loop_lag_s")


def summarise(results: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        key: {"median": statistics.median(r[key] for r in results), "max": max(r[key] for r in results)}
        for key in FIGURES
    }


def main() -> int:
    parser = cmdline.parser(__doc__, servers=10_000, runs=5)
    parser.add_argument("--backends", default="configmap,s3")
    parser.add_argument("--stored", choices=("served", "canonical"), default="served")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    sample = replicated_served if args.stored == "served" else replicated_catalog_json
    data, servers = sample(SHARED_DATA / "toolhive" / "registry-2026-02-18.json", args.servers)
    stored = StoredCatalog.create(data, revision="bench", server_count=servers)
    report: dict[str, Any] = {
        "servers": servers,
        "stored": args.stored,
        "stored_bytes": len(data),
        "runs": args.runs,
    }

    if "configmap" in backends:
        plane = ControlPlane.create(with_controller_manager=False)
        plane.start()
        try:
            results, encoded = asyncio.run(
                configmap_runs(str(plane.admin_kubeconfig), stored, servers, args.runs)
            )
        finally:
            plane.stop()
        report["configmap"] = {**summarise(results), "stored_bytes": encoded}
    if "s3" in backends:
        with tempfile.TemporaryDirectory(prefix="mcpreg-api-load-") as tmp:
            minio = MinioServer.create(Path(tmp))
            minio.start()
            try:
                minio.create_bucket(BUCKET)
                results, encoded = asyncio.run(s3_runs(minio, stored, servers, args.runs))
            finally:
                minio.stop()
        report["s3"] = {**summarise(results), "stored_bytes": encoded}
    report["rss_after_load_mib"] = rss_kib(os.getpid()) / 1024

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    kind = "served document" if args.stored == "served" else "canonical JSON"
    print(f"{servers} servers, {len(data) / 1e6:.1f} MB {kind}, {args.runs} runs (median / max)")
    for backend in backends:
        figures = report[backend]
        line = ", ".join(
            f"{key[:-2].replace('_', ' ')} {figures[key]['median']:.2f} / {figures[key]['max']:.2f} s"
            for key in FIGURES
        )
        print(f"  {backend:9} {line}; stored {figures['stored_bytes'] / 1e6:.1f} MB")
    print(f"  resident memory after the last load: {report['rss_after_load_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
