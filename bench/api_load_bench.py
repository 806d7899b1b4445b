"""How long the registry API takes to load one 10,000-server generation, from ConfigMaps and from S3.

What a replica does when a new generation is published, measured in this process with the API's own
code: the storage reader's `read()` (fetch, decode, verify the hash) and the API's snapshot build
(`mcpreg_api.builder.build_off_loop`: everything between the stored bytes and a snapshot ready to
serve). The generation is written first by the operator's own storage writer, into a real
kube-apiserver (started here) and a real MinIO (built from Go modules on first use, on loopback).

    .venv/bin/python bench/api_load_bench.py [--servers 10000] [--runs 5] [--backends configmap,s3] [--json]

Figures: median and maximum of each stage over the runs (after one warm-up run per backend).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as kclient
from kubernetes_asyncio import config as kconfig
from storage_bench import SHARED_DATA, timed  # bench/ is the script's directory: sys.path[0]

from mcpreg.storage import ConfigMapCatalogReader, ConfigMapCatalogStore, StoredCatalog
from mcpreg.storage.interfaces import CatalogReader
from mcpreg.storage.s3_config import S3Credentials
from mcpreg.storage.s3_reader import S3CatalogReader
from mcpreg.storage.s3_store import S3CatalogStore
from mcpreg_api.builder import build_off_loop
from mcpreg_dev.controlplane import ControlPlane
from mcpreg_dev.minio import MinioServer
from mcpreg_dev.samples import replicated_catalog_json

NAMESPACE = "bench"
BUCKET = "bench"


async def load_once(reader: CatalogReader, expected_hash: str, servers: int) -> dict[str, float]:
    read_s, stored = await timed(reader.read)
    assert stored is not None and stored.content_hash == expected_hash
    build_s, snapshot = await timed(lambda: build_off_loop(stored))
    assert snapshot.server_count == servers, (snapshot.server_count, servers)
    return {"read_s": read_s, "build_s": build_s, "total_s": read_s + build_s}


async def configmap_runs(
    kubeconfig: str, stored: StoredCatalog, servers: int, runs: int
) -> list[dict[str, float]]:
    api = await kconfig.new_client_from_config(config_file=kubeconfig)
    core = kclient.CoreV1Api(api)
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    await core.create_namespace(kclient.V1Namespace(metadata=kclient.V1ObjectMeta(name=namespace)))
    try:
        await ConfigMapCatalogStore(api, namespace, "bench", owner=None).write(stored)
        reader = ConfigMapCatalogReader(api, namespace, "bench")
        await load_once(reader, stored.content_hash, servers)  # warm-up
        return [await load_once(reader, stored.content_hash, servers) for _ in range(runs)]
    finally:
        await core.delete_namespace(namespace)
        await api.close()


async def s3_runs(
    minio: MinioServer, stored: StoredCatalog, servers: int, runs: int
) -> list[dict[str, float]]:
    settings = minio.settings(BUCKET, read_timeout=60.0, max_attempts=3)
    credentials = minio.credentials

    async def provider() -> S3Credentials:
        return credentials

    registry = f"bench-{uuid.uuid4().hex[:8]}"
    await S3CatalogStore(settings, NAMESPACE, registry, credentials=provider).write(stored)
    reader = S3CatalogReader(settings, NAMESPACE, registry, credentials=provider)
    await load_once(reader, stored.content_hash, servers)  # warm-up
    return [await load_once(reader, stored.content_hash, servers) for _ in range(runs)]


def summarise(results: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        key: {"median": statistics.median(r[key] for r in results), "max": max(r[key] for r in results)}
        for key in ("read_s", "build_s", "total_s")
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backends", default="configmap,s3")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    data, servers = replicated_catalog_json(
        SHARED_DATA / "toolhive" / "registry-2026-02-18.json", args.servers
    )
    stored = StoredCatalog.create(data, revision="bench", server_count=servers)
    report: dict[str, Any] = {"servers": servers, "catalogue_bytes": len(data), "runs": args.runs}

    if "configmap" in backends:
        plane = ControlPlane.create(with_controller_manager=False)
        plane.start()
        try:
            results = asyncio.run(configmap_runs(str(plane.admin_kubeconfig), stored, servers, args.runs))
        finally:
            plane.stop()
        report["configmap"] = summarise(results)
    if "s3" in backends:
        with tempfile.TemporaryDirectory(prefix="mcpreg-api-load-") as tmp:
            minio = MinioServer.create(Path(tmp))
            minio.start()
            try:
                minio.create_bucket(BUCKET)
                results = asyncio.run(s3_runs(minio, stored, servers, args.runs))
            finally:
                minio.stop()
        report["s3"] = summarise(results)

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{servers} servers, {len(data) / 1e6:.1f} MB canonical JSON, {args.runs} runs (median / max)")
    for backend in backends:
        figures = report[backend]
        line = ", ".join(
            f"{key[:-2]} {figures[key]['median']:.2f} / {figures[key]['max']:.2f} s"
            for key in ("read_s", "build_s", "total_s")
        )
        print(f"  {backend:9} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
