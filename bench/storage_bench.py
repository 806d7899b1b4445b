"""Benchmark of ConfigMap storage on a 10,000-server catalogue, through a real local control plane.

The catalogue is the real entries of the newest ToolHive snapshot replicated under new names (see
`mcpreg_dev.samples`), in the served form the operator stores (`mcpreg.served/v1`). Each run uses a
fresh namespace and measures, as the operator and the registry API see them:

- store (cold): `write()` into an empty namespace: encode (gzip) + parts + head;
- store (unchanged): `write()` of the same hash: the no-op the operator does on every sync;
- current_hash: the cheap check the operator makes before syncing;
- load: `read()` of the whole catalogue, verified byte for byte against its hash;
- switch: `write()` of a different 10,000-server generation over the first (old parts deleted);
- notify + load: from the start of that switch until a reader following `changes()` holds the new
  generation, verified (it is notified when the head flips, near the end of the write);
- longest event-loop step: the most CPU time any single callback or task step took on the event
  loop during all of the above (compression, hashing, base64 and big JSON documents run in worker
  threads; what remains is JSON-encoding request bodies and TLS on megabyte bodies).

    .venv/bin/python bench/storage_bench.py [--servers 10000] [--runs 5] [--json] [--kubeconfig FILE]

Without --kubeconfig it starts (and stops) its own control plane (etcd + kube-apiserver).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import cmdline  # bench/ is the script's directory: sys.path[0]
from kubernetes_asyncio import client as kclient
from kubernetes_asyncio import config as kconfig

from mcpreg.storage import ConfigMapAddress, ConfigMapCatalogReader, ConfigMapCatalogStore, StoredCatalog
from mcpreg.storage.encoding import encode
from mcpreg_dev.samples import replicated_served

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MCPREG_SHARED_DATA", REPO.parent / "shared" / "data"))
REGISTRY = "bench-registry"
T = TypeVar("T")


class LoopStepMeter:
    """The longest single event-loop step (callback or task step) while active, in thread CPU time.

    CPU time of the loop's thread, not wall time: on a loaded machine the operating system may
    pause the process at any moment, which says nothing about the code. A benchmark-only hook on
    asyncio's Handle._run, restored on exit.
    """

    def __init__(self) -> None:
        self.worst_cpu = 0.0
        self.worst_step = ""
        self._original: Any = None

    def __enter__(self) -> LoopStepMeter:
        self._original = original = asyncio.events.Handle._run
        meter = self

        def timed_run(handle: asyncio.events.Handle) -> None:
            started = time.thread_time()
            try:
                original(handle)
            finally:
                spent = time.thread_time() - started
                if spent > meter.worst_cpu:
                    meter.worst_cpu, meter.worst_step = spent, repr(handle)[:160]

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]


async def timed(action: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    started = time.perf_counter()
    result = await action()
    return time.perf_counter() - started, result


async def write_and_load(store: Any, reader: Any, a: StoredCatalog) -> tuple[dict[str, Any], Any]:
    """What both backends are timed on first: a write, the same write again (nothing written), the
    published hash, and a full load (checked to give back what was written); the figures and the
    first write's result."""
    figures: dict[str, Any] = {}
    figures["store_s"], first = await timed(lambda: store.write(a))
    assert first.written
    figures["store_unchanged_s"], again = await timed(lambda: store.write(a))
    assert not again.written
    figures["current_hash_s"], current = await timed(store.current_hash)
    assert current == a.content_hash
    figures["load_s"], loaded = await timed(reader.read)
    assert loaded is not None and await asyncio.to_thread(lambda: loaded.data == a.data)
    return figures, first


async def one_run(api: kclient.ApiClient, a: StoredCatalog, b: StoredCatalog) -> dict[str, Any]:
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    core = kclient.CoreV1Api(api)
    await core.create_namespace(kclient.V1Namespace(metadata=kclient.V1ObjectMeta(name=namespace)))
    try:
        address = ConfigMapAddress(api, namespace, REGISTRY)
        store = ConfigMapCatalogStore(address, owner=None)
        reader = ConfigMapCatalogReader(address)
        figures: dict[str, Any] = {}
        with LoopStepMeter() as steps:
            first_figures, first = await write_and_load(store, reader, a)
            figures.update(first_figures)

            async with aclosing(ConfigMapCatalogReader(address).changes()) as changes:
                assert (await anext(changes)).content_hash == a.content_hash
                started = time.perf_counter()
                switching = asyncio.ensure_future(store.write(b))
                switching.add_done_callback(
                    lambda _: figures.__setitem__("switch_s", time.perf_counter() - started)
                )
                arrived = await anext(changes)
                figures["notify_load_s"] = time.perf_counter() - started
                switched = await switching
            assert await asyncio.to_thread(lambda: arrived.data == b.data)  # the reader verified the hash
            assert set(switched.removed) == set(first.location.config_maps[1:])
        figures["loop_step_ms"] = steps.worst_cpu * 1000
        figures["loop_step"] = steps.worst_step
        figures["parts"] = len(first.location.config_maps) - 1
        figures["stored_bytes"] = first.stored_bytes
        return figures
    finally:
        await core.delete_namespace(namespace)


@contextmanager
def control_plane(kubeconfig: str | None) -> Iterator[str]:
    if kubeconfig:
        yield kubeconfig
        return
    from mcpreg_dev.controlplane import ControlPlane

    plane = ControlPlane.create(with_controller_manager=False)
    plane.start()
    try:
        yield str(plane.admin_kubeconfig)
    finally:
        plane.stop()


async def bench(kubeconfig: str, a: StoredCatalog, b: StoredCatalog, runs: int) -> list[dict[str, Any]]:
    api = await kconfig.new_client_from_config(config_file=kubeconfig)
    try:
        await one_run(api, a, b)  # warm-up: connections, API server caches
        return [await one_run(api, a, b) for _ in range(runs)]
    finally:
        await api.close()


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["store_s", "store_unchanged_s", "current_hash_s", "load_s", "switch_s", "notify_load_s"]
    summary: dict[str, Any] = {
        key: {"median": statistics.median(r[key] for r in results), "max": max(r[key] for r in results)}
        for key in keys
    }
    worst = max(results, key=lambda r: r["loop_step_ms"])
    summary["loop_step_ms"] = {
        "median": statistics.median(r["loop_step_ms"] for r in results),
        "max": worst["loop_step_ms"],
        "step": worst["loop_step"],
    }
    return summary


def main() -> int:
    parser = cmdline.parser(__doc__, servers=10_000, runs=5)
    parser.add_argument("--kubeconfig", help="use this cluster instead of starting a control plane")
    args = parser.parse_args()

    started = time.perf_counter()
    data_a, count_a = replicated_served(SHARED_DATA / "toolhive" / "registry-2026-02-18.json", args.servers)
    data_b, count_b = replicated_served(SHARED_DATA / "toolhive" / "registry-2025-12-03.json", args.servers)
    generate_s = time.perf_counter() - started
    a = StoredCatalog.create(data_a, revision="bench-a", server_count=count_a)
    b = StoredCatalog.create(data_b, revision="bench-b", server_count=count_b)
    encode_started = time.perf_counter()
    encode(a.data)
    encode_s = time.perf_counter() - encode_started

    with control_plane(args.kubeconfig) as kubeconfig:
        results = asyncio.run(bench(kubeconfig, a, b, args.runs))

    report = {
        "servers": count_a,
        "catalogue_bytes": len(a.data),
        "stored_bytes": results[0]["stored_bytes"],
        "parts": results[0]["parts"],
        "encode_s": encode_s,
        "generate_s": generate_s,
        "runs": args.runs,
        "summary": summarise(results),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    s = report["summary"]
    print(
        f"{report['servers']} servers: {report['catalogue_bytes'] / 1e6:.1f} MB served form, stored as "
        f"{report['stored_bytes'] / 1e6:.2f} MB gzip in {report['parts']} parts + head "
        f"(gzip alone {encode_s * 1000:.0f} ms)"
    )
    print(f"{'operation':<34}{'median':>10}{'max':>10}   ({args.runs} runs)")
    labels = {
        "store_s": "store (empty namespace)",
        "store_unchanged_s": "store, hash unchanged (no-op)",
        "current_hash_s": "current_hash",
        "load_s": "load (read + verify)",
        "switch_s": "switch to another generation",
        "notify_load_s": "reader notified + loaded",
    }
    for key, label in labels.items():
        print(f"{label:<34}{s[key]['median'] * 1000:>8.0f}ms{s[key]['max'] * 1000:>8.0f}ms")
    step = s["loop_step_ms"]
    print(f"{'longest event-loop step (CPU)':<34}{step['median']:>8.1f}ms{step['max']:>8.1f}ms")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"process peak RSS {report['peak_rss_mb']:.0f} MB (includes generating two catalogues)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
