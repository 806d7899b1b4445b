"""Operator benchmarks against the real local control plane, a real git server and the real operator:

1. annotate → Ready with the new hash, for the 102-server real ToolHive catalogue from a local git
   server (a new commit before each trigger), N rounds: median and p90;
2. a manual trigger with an unchanged remote: the time to acknowledge it, and proof that nothing was
   downloaded (pack fetches counted by the smart-HTTP git server);
3. end-to-end freshness: a new commit, then the annotation → the new server visible over HTTP from the
   registry API (started with the Deployment's arguments), N rounds;
4. 50 MCPRegistries created at once (each with its API Deployment, pods made Ready by kwok): time
   until all are Ready, and the operator's peak RSS.

Run: .venv/bin/python bench/operator_bench.py [--rounds 20] [--registries 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from kubernetes import client, config  # noqa: E402
from procstat import PeakSampler  # noqa: E402
from timings import spread  # noqa: E402

from fixtures.kube import Kube  # noqa: E402
from fixtures.operator import CRD_FILE, GROUP, PLURAL, VERSION, OperatorProcess  # noqa: E402
from mcpreg_dev.controlplane import ControlPlane, free_port  # noqa: E402
from mcpreg_dev.devstack import api_command  # noqa: E402
from mcpreg_dev.gitserver import SmartHTTPGitServer, create_bare_repo  # noqa: E402

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", REPO.parent / "shared" / "data"))
CATALOG = SHARED / "toolhive" / "registry-2026-02-18.json"


def wait(kube: Kube, ns: str, name: str, predicate: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj: dict[str, Any] = kube.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        if predicate(obj.get("status") or {}):
            return obj
        time.sleep(0.01)
    raise TimeoutError(f"{name}: {obj.get('status')}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--registries", type=int, default=50)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="mcpreg-bench-"))
    (work / "git").mkdir()
    with ControlPlane.create(with_kwok=True) as cp, SmartHTTPGitServer(work / "git") as git:
        kube = Kube(cp, config.new_client_from_config(config_file=str(cp.admin_kubeconfig)))
        kube.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
        kube.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}")
        operator = OperatorProcess(kubeconfig=cp.admin_kubeconfig, log_path=work / "operator.log")
        operator.start()
        assert operator.process is not None
        sampler = PeakSampler(lambda: operator.process.pid if operator.process else None, interval=0.1)
        sampler.start()
        try:
            ns = "bench"
            kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
            repo = create_bare_repo(work / "git", "catalog")
            document = json.loads(CATALOG.read_text())
            repo.commit({"registry.json": json.dumps(document)})
            source = {"type": "git", "git": {"repository": git.url(repo), "path": "registry.json"}}
            body: dict[str, Any] = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MCPRegistry",
                "metadata": {"name": "bench"},
                "spec": {"source": source},
            }
            kube.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
            wait(kube, ns, "bench", lambda s: s.get("phase") == "Ready")

            # 1. annotate → Ready with the new hash (each round commits a changed catalogue).
            latencies = []
            for i in range(args.rounds):
                document["last_updated"] = f"2026-11-21T00:{i // 60:02d}:{i % 60:02d}Z"
                first = next(iter(document["servers"]))
                document["servers"][first]["description"] = f"benchmark round {i}"
                repo.commit({"registry.json": json.dumps(document)})
                before = kube.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "bench")
                old_hash = before["status"]["syncStatus"]["lastSyncHash"]
                start = time.monotonic()
                patch = {"metadata": {"annotations": {"mcpregistry.dev/sync-trigger": f"r{i}"}}}
                kube.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "bench", patch)
                wait(kube, ns, "bench", lambda s, h=old_hash: s.get("phase") == "Ready"
                     and s.get("syncStatus", {}).get("lastSyncHash") not in (None, h))  # fmt: skip
                latencies.append(time.monotonic() - start)
            results["annotate_to_ready_s"] = spread(latencies)

            # 2. unchanged remote: acknowledged without a download.
            fetches = git.pack_fetches(repo)
            unchanged = []
            for i in range(10):
                start = time.monotonic()
                patch = {"metadata": {"annotations": {"mcpregistry.dev/sync-trigger": f"u{i}"}}}
                kube.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "bench", patch)
                wait(kube, ns, "bench", lambda s, t=f"u{i}": s.get("lastManualSyncTrigger") == t
                     and s.get("phase") == "Ready")  # fmt: skip
                unchanged.append(time.monotonic() - start)
            results["unchanged_check"] = {
                "median_s": round(statistics.median(unchanged), 3),
                "pack_fetches_during_10_checks": git.pack_fetches(repo) - fetches,
            }

            # 3. end-to-end freshness: new commit + annotation → the new server visible over HTTP, from the
            # registry API process started with the Deployment's arguments (as `make up` runs it).
            port = free_port()
            api_log = (work / "api.log").open("wb")
            api = subprocess.Popen(
                api_command("bench", ns, port, work / "api-config.json"),
                env=dict(os.environ, KUBECONFIG=str(cp.admin_kubeconfig)),
                stdout=api_log,
                stderr=subprocess.STDOUT,
            )
            try:
                freshness = []
                for i in range(args.rounds):
                    server = f"freshness-probe-{i}"
                    document["servers"][server] = dict(next(iter(document["servers"].values())))
                    repo.commit({"registry.json": json.dumps(document)})
                    start = time.monotonic()
                    patch = {"metadata": {"annotations": {"mcpregistry.dev/sync-trigger": f"f{i}"}}}
                    kube.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "bench", patch)
                    url = (
                        f"http://127.0.0.1:{port}/v0.1/servers/io.github.stacklok%2F{server}/versions/latest"
                    )
                    deadline = start + 60
                    while time.monotonic() < deadline:
                        try:
                            with urllib.request.urlopen(url, timeout=2) as response:
                                if response.status == 200:
                                    break
                        except OSError:
                            pass
                        time.sleep(0.02)
                    else:
                        raise TimeoutError(f"{server} never appeared at {url}")
                    freshness.append(time.monotonic() - start)
                results["commit_annotate_to_visible_s"] = spread(freshness)
            finally:
                api.terminate()
                api.wait(10)

            # 4. many registries at once. The sampler restarts so this figure is this phase's own.
            whole_run_peak = sampler.peak_kib
            sampler.peak_kib = 0
            ns2 = "bench-many"
            kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns2)))
            start = time.monotonic()
            for i in range(args.registries):
                body["metadata"] = {"name": f"reg-{i}"}
                kube.custom.create_namespaced_custom_object(GROUP, VERSION, ns2, PLURAL, body)
            for i in range(args.registries):
                wait(kube, ns2, f"reg-{i}", lambda s: s.get("phase") == "Ready", timeout=600)
            results["many_registries"] = {
                "registries": args.registries,
                "all_ready_s": round(time.monotonic() - start, 2),
                "operator_peak_rss_mib": round(sampler.peak_kib / 1024, 1),
                "operator_peak_rss_mib_before_this_phase": round(whole_run_peak / 1024, 1),
            }
        finally:
            sampler.stop()
            operator.stop()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
