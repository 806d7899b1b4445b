"""Operator start-up on a cluster full of large ConfigMaps (real control plane, kwok node, the real
operator as a process).

Fills a namespace with `--configmaps` ConfigMaps of `--kib` KiB each (none of them a source), creates
one MCPRegistry reading the real 102-server ToolHive catalogue from a ConfigMap, then starts the
operator and measures:

- start → /healthz: Kopf's start-up;
- start → the registry Ready: what a user waits for after an operator restart;
- a change of the source ConfigMap → the new hash in status (the ConfigMap watch at work);
- with `--churn N`, the operator's CPU time while N of the unrelated ConfigMaps are edited (what
  others' ConfigMaps cost an operator that should not hear of them);
- the operator's peak RSS over all of it, and its CPU seconds from start to the end.

`--code DIR` runs the operator from another checkout (its `src`, `operator`, `api-server` and `cli`
ahead of this one's on PYTHONPATH), to compare with an earlier commit:

    .venv/bin/python bench/operator_startup_bench.py [--configmaps 300] [--kib 900] [--churn 0] \
        [--code DIR] [--json]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import cmdline  # noqa: E402
from kubernetes import client, config  # noqa: E402
from procstat import PeakSampler, cpu_seconds  # noqa: E402

from fixtures.kube import Kube  # noqa: E402
from fixtures.operator import CRD_FILE, GROUP, PLURAL, VERSION, OperatorProcess  # noqa: E402
from mcpreg_dev.controlplane import ControlPlane  # noqa: E402

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", REPO.parent / "shared" / "data"))
CATALOG = SHARED / "toolhive" / "registry-2026-02-18.json"


def wait_status(kube: Kube, ns: str, name: str, predicate: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        obj = kube.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        status = obj.get("status") or {}
        if predicate(status):
            return status
        time.sleep(0.05)
    raise TimeoutError(f"{name}: {status}")


def fill(kube: Kube, namespace: str, count: int, kib: int) -> None:
    """`count` ConfigMaps of `kib` KiB of text each (different bytes in each, like real data)."""
    value_base = os.urandom(kib * 1024 * 3 // 8).hex()[: kib * 1024 - 16]

    def create(index: int) -> None:
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=filler_name(index)),
            data={"blob": f"{index:016d}{value_base}"},
        )
        kube.core.create_namespaced_config_map(namespace, body)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(count)))


def filler_name(index: int) -> str:
    return f"filler-{index:05d}"


def churn(kube: Kube, namespace: str, count: int) -> None:
    """Edit the first `count` filler ConfigMaps once each (a label, so their data stays)."""

    def edit(index: int) -> None:
        patch = {"metadata": {"labels": {"edited": "yes"}}}
        kube.core.patch_namespaced_config_map(filler_name(index), namespace, patch)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(edit, range(count)))


def main() -> int:
    parser = cmdline.parser(__doc__.split("\n\n")[0], configmaps=300, kib=900)
    parser.add_argument("--churn", type=int, default=0, help="unrelated ConfigMaps to edit once Ready")
    parser.add_argument("--code", type=Path, help="run the operator from this checkout")
    args = parser.parse_args()
    extra_env: dict[str, str] = {}
    if args.code is not None:
        paths = [args.code / part for part in ("src", "operator", "api-server", "cli")]
        extra_env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    work = Path(tempfile.mkdtemp(prefix="mcpreg-startup-bench-"))
    report: dict[str, Any] = {
        "configmaps": args.configmaps,
        "kib_each": args.kib,
        "code": str(args.code or REPO),
    }
    with ControlPlane.create(with_kwok=True) as cp:
        kube = Kube(cp, config.new_client_from_config(config_file=str(cp.admin_kubeconfig)))
        kube.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
        kube.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}")
        for ns in ("filler", "bench"):
            kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        started = time.monotonic()
        fill(kube, "filler", args.configmaps, args.kib)
        report["fill_s"] = round(time.monotonic() - started, 1)
        document = json.loads(CATALOG.read_text())
        source = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="catalogue"), data={"registry.json": json.dumps(document)}
        )
        kube.core.create_namespaced_config_map("bench", source)
        spec = {
            "source": {"type": "configmap", "configMap": {"name": "catalogue", "key": "registry.json"}},
            "api": {"enabled": False},
        }
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MCPRegistry", "metadata": {"name": "probe"}}
        kube.custom.create_namespaced_custom_object(GROUP, VERSION, "bench", PLURAL, {**body, "spec": spec})

        operator = OperatorProcess(
            kubeconfig=cp.admin_kubeconfig, log_path=work / "operator.log", extra_env=extra_env
        )
        sampler = PeakSampler(lambda: operator.process.pid if operator.process else None)
        sampler.start()
        started = time.monotonic()
        operator.start()
        report["start_to_healthz_s"] = round(time.monotonic() - started, 2)
        try:
            status = wait_status(kube, "bench", "probe", lambda s: s.get("phase") == "Ready", timeout=900)
            report["start_to_ready_s"] = round(time.monotonic() - started, 2)
            old_hash = status["syncStatus"]["lastSyncHash"]
            first = next(iter(document["servers"]))
            document["servers"][first]["description"] = "changed by the start-up benchmark"
            changed = time.monotonic()
            kube.core.patch_namespaced_config_map(
                "catalogue", "bench", {"data": {"registry.json": json.dumps(document)}}
            )
            wait_status(
                kube,
                "bench",
                "probe",
                lambda s: (s.get("syncStatus") or {}).get("lastSyncHash") not in (None, old_hash),
                timeout=300,
            )
            report["source_change_to_synced_s"] = round(time.monotonic() - changed, 2)
            if args.churn:
                assert operator.process is not None
                before = cpu_seconds(operator.process.pid)
                churned = time.monotonic()
                churn(kube, "filler", args.churn)
                time.sleep(5)  # let the operator take in what it was sent
                report["churn_s"] = round(time.monotonic() - churned, 1)
                report["churn_operator_cpu_s"] = round(cpu_seconds(operator.process.pid) - before, 2)
        finally:
            sampler.stop()
            operator.stop()
        report["operator_peak_rss_mib"] = round(sampler.peak_kib / 1024, 1)
        report["operator_cpu_s"] = round(sampler.cpu_s, 2)  # the last sample, just before it stopped
    return cmdline.print_figures(report, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
