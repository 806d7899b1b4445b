"""The product on the real node: start-up, time to Ready, in-cluster freshness and API pod memory.

    .venv/bin/python bench/node_bench.py [--rounds 10] [--servers 10000] [--json]

Needs root and the node's Debian packages (scripts/install-host-deps). Starts a control plane with a
real node (containerd, kubelet, kube-proxy, CoreDNS), builds (or finds in the cache) the product image
and imports it, installs the chart with the real helm (the operator runs as a pod), serves a git
repository on the pod bridge, then measures:
1. control plane + node start to node Ready and DNS ready;
2. image: build (0 when cached) and import into containerd;
3. chart installed → operator pod Ready;
4. MCPRegistry created → its 2 API pods Ready (`status.apiStatus` Ready), 102 real servers;
5. freshness, `--rounds` times: a new commit with one more server, then the sync-trigger annotation →
   that server answered through the Service's ClusterIP (kube-proxy → an API pod);
6. resident memory (VmRSS) of one API pod's server process at 102 and at `--servers` servers.
Every request goes to the pod bridge or a ClusterIP kept on it. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from catalog_bench import generate_toolhive
from timings import spread

from mcpreg_dev.binaries import ensure_helm
from mcpreg_dev.controlplane import ControlPlane
from mcpreg_dev.gitserver import GitDaemonServer, create_bare_repo
from mcpreg_dev.image import ensure_product_image
from mcpreg_dev.node import NODE_IP
from mcpreg_dev.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", REPO.parent / "shared" / "data"))
CATALOG = SHARED / "toolhive" / "registry-2026-02-18.json"
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.02) -> T:
    try:
        return wait_until(probe, timeout=timeout, interval=interval, what=what)
    except TimeoutError as exc:
        raise SystemExit(str(exc)) from None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="JSON only")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="mcpreg-node-bench-"))

    started = time.monotonic()
    cp = ControlPlane.create(with_node=True)
    cp.start()
    results["control_plane_and_node_ready_s"] = round(time.monotonic() - started, 2)
    assert cp.node is not None
    env = dict(os.environ, KUBECONFIG=str(cp.admin_kubeconfig), HELM_CACHE_HOME=str(work / "helm"),
               HELM_CONFIG_HOME=str(work / "helm"), HELM_DATA_HOME=str(work / "helm"))  # fmt: skip

    def kubectl(*argv: str) -> str:
        out = subprocess.run([str(cp.binaries.kubectl), *argv], capture_output=True, text=True, env=env,
                             timeout=300)  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(argv[:3])}: {out.stderr}")
        return out.stdout

    git = GitDaemonServer(work / "git", host=NODE_IP)
    (work / "git").mkdir()
    git.start()
    try:
        image = ensure_product_image(lambda _m: None)
        results["image_build_s"] = round(image.build_seconds, 1)
        results["image_compressed_mb"] = round(image.compressed_size / 1e6, 1)
        t = time.monotonic()
        cp.node.import_image(image.archive)
        results["image_import_s"] = round(time.monotonic() - t, 2)

        repository, tag = image.ref.rsplit(":", 1)
        t = time.monotonic()
        subprocess.run(
            [str(ensure_helm()), "install", "bench", str(REPO / "charts" / "mcp-registry-operator"),
             "-n", "mcp-system", "--create-namespace", "--set", f"image.repository={repository}",
             "--set", f"image.tag={tag}", "--set", "image.pullPolicy=Never"],
            check=True, capture_output=True, env=env, timeout=300,
        )  # fmt: skip
        kubectl("wait", "pod", "-n", "mcp-system", "-l", "app.kubernetes.io/instance=bench",
                "--for=condition=Ready", "--timeout=180s")  # fmt: skip
        results["chart_to_operator_pod_ready_s"] = round(time.monotonic() - t, 2)

        repo = create_bare_repo(work / "git", "catalog")
        document = json.loads(CATALOG.read_text())
        repo.commit({"registry.json": json.dumps(document)})
        registry = {
            "apiVersion": "mcpregistry.dev/v1alpha1",
            "kind": "MCPRegistry",
            "metadata": {"name": "bench", "namespace": "default"},
            "spec": {
                "source": {"type": "git", "git": {"repository": git.url(repo), "path": "registry.json"}},
                "api": {"replicas": 2},
            },
        }

        def status() -> dict[str, Any]:
            out: dict[str, Any] = (
                json.loads(kubectl("get", "mcpreg", "bench", "-o", "json")).get("status") or {}
            )
            return out

        t = time.monotonic()
        subprocess.run(
            [str(cp.binaries.kubectl), "apply", "--server-side", "-f", "-"],
            input=json.dumps(registry), text=True, env=env, check=True, capture_output=True,
        )  # fmt: skip
        wait_for(lambda: (status().get("apiStatus") or {}).get("readyReplicas") == 2, 240, "API Ready", 0.2)
        results["create_to_api_pods_ready_s"] = round(time.monotonic() - t, 2)
        cluster_ip = kubectl("get", "svc", "bench-api", "-o", "jsonpath={.spec.clusterIP}")
        base = f"http://{cluster_ip}:8080"

        def visible(name: str) -> bool:
            try:
                url = f"{base}/v0.1/servers?limit=100&search={name}"
                with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (the Service's ClusterIP)
                    return any(s["server"]["name"].endswith(name) for s in json.load(r)["servers"])
            except (urllib.error.URLError, OSError):
                return False

        latencies = []
        template = next(iter(document["servers"].values()))
        for i in range(args.rounds):
            name = f"zz-fresh-{i}-{uuid.uuid4().hex[:4]}"
            document["servers"][name] = dict(template, description=f"added in benchmark round {i}")
            repo.commit({"registry.json": json.dumps(document)})
            t = time.monotonic()
            kubectl("annotate", "mcpreg", "bench", "--overwrite", f"mcpregistry.dev/sync-trigger=r{i}")
            try:
                wait_for(lambda name=name: visible(name), 60, f"server {name} through the Service")  # type: ignore[misc]
            except SystemExit as exc:
                raise SystemExit(f"{exc}; registry status: {json.dumps(status())}") from None
            latencies.append(time.monotonic() - t)
        results["commit_annotate_to_visible_in_cluster_s"] = spread(latencies)

        def api_rss_mib() -> float:
            pods = json.loads(kubectl("get", "pods", "-l", "app.kubernetes.io/instance=bench", "-o", "json"))
            ready = [p for p in pods["items"] if p["status"].get("containerStatuses", [{}])[0].get("ready")]
            container = ready[0]["status"]["containerStatuses"][0]["containerID"].split("//", 1)[1]
            tasks = cp.node.ctr("tasks", "ls").stdout.splitlines()  # type: ignore[union-attr]
            pid = next(line.split()[1] for line in tasks if line.startswith(container))
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
            raise SystemExit("no VmRSS")

        time.sleep(3)
        results["api_pod_rss_mib"] = {str(status()["syncStatus"]["serverCount"]): api_rss_mib()}
        if args.servers:
            big = generate_toolhive(args.servers)
            commit = repo.commit({"registry.json": big})
            kubectl("annotate", "mcpreg", "bench", "--overwrite", "mcpregistry.dev/sync-trigger=big")
            wait_for(
                lambda: (status().get("syncStatus") or {}).get("revision") == commit, 180, "big sync", 0.5
            )
            wait_for(
                lambda: visible(f"{next(iter(json.loads(big)['servers']))}"), 120, "big catalogue served"
            )
            time.sleep(5)
            results["api_pod_rss_mib"][str(args.servers)] = api_rss_mib()
        results["node_component_rss_mib"] = {
            k: round(v / 2**20, 1) for k, v in cp.node.resident_memory_bytes().items()
        }
    finally:
        git.stop()
        t = time.monotonic()
        cp.stop()
        results["teardown_s"] = round(time.monotonic() - t, 2)
    print(json.dumps(results, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
