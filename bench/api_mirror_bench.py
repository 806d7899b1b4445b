"""Mirroring a large upstream registry (`source.type: api`, issue 15): real components on loopback.

Starts the official MCP Registry's own server over a throw-away PostgreSQL, seeded with `--entries`
generated servers; a forwarding server in front of it that logs every request (what the operator
costs the upstream); a control plane with a kwok node; and the real operator as a process. Then
measures:

1. the first sync: create → Ready with every entry stored (a full walk, `limit=100`), and the
   operator's peak RSS during it;
2. an unchanged refresh (a manual trigger): the requests it made upstream and its time (aim: at most
   two requests);
3. an incremental refresh after `--changed` entries were edited upstream: requests, time, and that
   the edits are stored.

    .venv/bin/python bench/api_mirror_bench.py [--entries 10000] [--changed 10] [--json]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import cmdline  # noqa: E402
from kubernetes import client, config  # noqa: E402
from procstat import PeakSampler, rss_kib  # noqa: E402

from fixtures.kube import Kube  # noqa: E402
from fixtures.operator import CRD_FILE, GROUP, PLURAL, VERSION, OperatorProcess  # noqa: E402
from mcpreg_dev.controlplane import ControlPlane  # noqa: E402
from mcpreg_dev.forwarder import ForwardingServer  # noqa: E402
from mcpreg_dev.official_registry import OfficialRegistryPeer, generated_server, generated_servers  # noqa: E402

NAMESPACE = "bench"
NAME = "mirror"
TRIGGER = f"{GROUP}/sync-trigger"


def status_of(kube: Kube) -> dict[str, Any]:
    obj = kube.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, NAME)
    return dict(obj.get("status") or {})


def wait_status(kube: Kube, predicate: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = status_of(kube)
        if predicate(status):
            return status
        time.sleep(0.05)
    raise TimeoutError(f"{NAME}: {status}")


def triggered_sync(kube: Kube, gate: ForwardingServer) -> tuple[dict[str, Any], float, list[str]]:
    """One manual sync: (status after it, seconds until its trigger was recorded, requests it made)."""
    before = len(gate.requests())
    value = str(time.time_ns())
    patch = {"metadata": {"annotations": {TRIGGER: value}}}
    started = time.monotonic()
    kube.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, NAME, patch)
    status = wait_status(kube, lambda s: s.get("lastManualSyncTrigger") == value, timeout=300)
    elapsed = time.monotonic() - started
    made = [f"{r.path}?{r.query}" if r.query else r.path for r in gate.requests()[before:]]
    return status, elapsed, made


def main() -> int:
    args = cmdline.parser(__doc__.split("\n\n")[0], entries=10_000, changed=10).parse_args()
    work = Path(tempfile.mkdtemp(prefix="mcpreg-api-mirror-bench-"))
    report: dict[str, Any] = {"entries": args.entries, "changed": args.changed}

    started = time.monotonic()
    with (
        OfficialRegistryPeer.started(work / "official", seed=generated_servers(args.entries)) as peer,
        ForwardingServer(peer.base_url) as gate,
        ControlPlane.create(with_kwok=True) as cp,
    ):
        report["upstream_seeded_s"] = round(time.monotonic() - started, 1)
        kube = Kube(cp, config.new_client_from_config(config_file=str(cp.admin_kubeconfig)))
        kube.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
        kube.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}")
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        operator = OperatorProcess(
            kubeconfig=cp.admin_kubeconfig,
            log_path=work / "operator.log",
            extra_env={"MCPREG_ALLOW_INSECURE_HTTP_SOURCES": "true"},
        )
        operator.start()
        sampler = PeakSampler(lambda: operator.process.pid if operator.process else None)
        try:
            idle = rss_kib(operator.process.pid) if operator.process is not None else 0
            sampler.start()
            spec = {"source": {"type": "api", "api": {"url": gate.base_url}}, "api": {"enabled": False}}
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MCPRegistry",
                "metadata": {"name": NAME},
                "spec": spec,
            }
            created = time.monotonic()
            kube.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
            first = wait_status(
                kube,
                lambda s: (
                    s.get("phase") == "Ready"
                    and (s.get("syncStatus") or {}).get("serverCount") == args.entries
                ),
                timeout=900,
            )
            report["first_sync_s"] = round(time.monotonic() - created, 2)
            report["first_sync_requests"] = len(gate.requests())
            report["operator_idle_rss_mib"] = round(idle / 1024, 1)
            report["operator_peak_rss_mib"] = round(sampler.peak_kib / 1024, 1)

            status, elapsed, made = triggered_sync(kube, gate)
            assert status["syncStatus"]["lastSyncHash"] == first["syncStatus"]["lastSyncHash"], status
            report["unchanged_refresh_s"] = round(elapsed, 2)
            report["unchanged_refresh_requests"] = len(made)
            report["unchanged_refresh_made"] = made

            for index in range(args.changed):
                peer.edit(generated_server(index, description=f"Edited by the benchmark {time.time_ns()}"))
            status, elapsed, made = triggered_sync(kube, gate)
            assert status["syncStatus"]["lastSyncHash"] != first["syncStatus"]["lastSyncHash"], status
            assert status["syncStatus"]["serverCount"] == args.entries, status
            report["incremental_refresh_s"] = round(elapsed, 2)
            report["incremental_refresh_requests"] = len(made)
            report["operator_peak_rss_mib_overall"] = round(sampler.peak_kib / 1024, 1)
        finally:
            sampler.stop()
            operator.stop()
    return cmdline.print_figures(report, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
