"""Operator under load: its memory and event-loop lag while N MCPRegistries sync large catalogues.

For each parse mode - `thread` (every catalogue parsed in a worker thread, as before issue 12's fix:
`MCPREG_PARSE_PROCESS_ABOVE` set huge) and `process` (the default: large catalogues in a child
process) - on a fresh control plane (with kwok, so the API pods become Ready) and a local smart-HTTP
git server holding one generated `--servers`-server ToolHive catalogue:

1. the real operator starts (`mcpreg operator`, as its own process) with the event-loop lag monitor
   (`mcpreg_operator.looplag`, 100 ms interval) started from one extra Kopf startup handler, which
   records every sample to a file and serves the Prometheus metrics on loopback;
2. idle for a few seconds (the lag baseline);
3. N MCPRegistries are created at once, all reading that catalogue; until every one is Ready with
   all the servers: the time, the lag samples (p50, p99, max), the operator's peak RSS (VmRSS), the
   peak of the operator and its children together (parse processes, git), and the parse processes seen;
4. the RSS a few seconds after (what the operator keeps).

Run: MCPREG_NODE=kwok .venv/bin/python bench/operator_load_bench.py [--registries 50] [--servers 10000]
     [--modes thread,process] [--idle 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))

THREAD_ONLY = str(1 << 62)  # MCPREG_PARSE_PROCESS_ABOVE: no catalogue is that large


def run_operator_child(argv: list[str]) -> int:
    """`--operator-child LAG_FILE METRICS_PORT -- OPERATOR_ARGS…`: the operator, with the lag monitor.

    The real `mcpreg operator` command; the only addition is a Kopf startup handler (registered before
    the operator's own) that starts the monitor. Imports nothing the operator itself would not.
    """
    lag_file, metrics_port, separator, *operator_args = argv
    assert separator == "--"
    # As `mcpreg operator` does before importing Kopf: keep the synchronous client out (60 MiB).
    if "kubernetes" not in sys.modules:
        sys.modules["kubernetes"] = None  # type: ignore[assignment]
    import kopf
    from prometheus_client import start_http_server

    from mcpreg_cli.main import main
    from mcpreg_operator import looplag

    samples = open(lag_file, "a", buffering=1)  # noqa: SIM115  (open for the process's lifetime)

    def record(lag: float) -> None:
        samples.write(f"{time.monotonic():.4f} {lag:.6f}\n")

    @kopf.on.startup()
    async def start_lag_monitor(**_: Any) -> None:
        looplag.start_lag_monitor(on_sample=record)

    start_http_server(int(metrics_port), addr="127.0.0.1")  # a thread: scrapes do not wait on the loop
    return main(["operator", *operator_args])


if __name__ == "__main__" and sys.argv[1:2] == ["--operator-child"]:
    sys.exit(run_operator_child(sys.argv[2:]))

from catalog_bench import generate_toolhive  # noqa: E402
from kubernetes import client, config  # noqa: E402
from procstat import descendants, rss_kib  # noqa: E402

from fixtures.kube import Kube, wait_until  # noqa: E402
from fixtures.operator import CRD_FILE, GROUP, PLURAL, VERSION, OperatorProcess  # noqa: E402
from mcpreg_dev.controlplane import ControlPlane, free_port  # noqa: E402
from mcpreg_dev.gitserver import SmartHTTPGitServer, create_bare_repo  # noqa: E402


@dataclass
class MonitoredOperator(OperatorProcess):
    """The operator process of the fixtures, started through `run_operator_child`."""

    lag_file: Path = field(default_factory=Path)
    metrics_port: int = field(default_factory=free_port)

    def start(self) -> None:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), **self.extra_env)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        liveness = f"http://127.0.0.1:{self.liveness_port}/healthz"
        command = [sys.executable, __file__, "--operator-child", str(self.lag_file), str(self.metrics_port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--", "--log-level", "INFO", "--liveness", liveness],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            wait_until(lambda: self._healthy() or self._dead(), timeout=60, what="operator start-up")
        except BaseException:
            self.kill()
            raise
        assert self.process.poll() is None, f"operator exited at start-up; see {self.log_path}"

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())


class Sampler:
    """Every 100 ms: the operator's RSS, its process tree's, and which parse processes run."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_own = 0
        self.peak_tree = 0
        self.parse_processes: set[int] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(0.1):
            own = rss_kib(self.pid)
            tree = own
            for child in descendants(self.pid):
                tree += rss_kib(child)
                try:
                    if b"mcpreg_operator.parsing" in Path(f"/proc/{child}/cmdline").read_bytes():
                        self.parse_processes.add(child)
                except OSError:
                    pass
            self.peak_own = max(self.peak_own, own)
            self.peak_tree = max(self.peak_tree, tree)

    def reset(self) -> None:
        self.peak_own = self.peak_tree = 0
        self.parse_processes.clear()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


def lag_samples(path: Path, start: float, end: float) -> list[float]:
    out = []
    for line in path.read_text().splitlines():
        stamp, lag = line.split()
        if start <= float(stamp) <= end:
            out.append(float(lag))
    return out


def summarise(lags: list[float]) -> dict[str, Any]:
    if not lags:
        return {"samples": 0}
    ordered = sorted(lags)
    return {
        "samples": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "over_100ms": sum(1 for lag in ordered if lag > 0.1),
    }


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def run_mode(mode: str, args: argparse.Namespace, catalogue: bytes, work: Path) -> dict[str, Any]:
    base = work / mode
    (base / "git").mkdir(parents=True)
    env = {"MCPREG_PARSE_PROCESS_ABOVE": THREAD_ONLY} if mode == "thread" else {}
    with ControlPlane.create(with_kwok=True) as cp, SmartHTTPGitServer(base / "git") as git:
        kube = Kube(cp, config.new_client_from_config(config_file=str(cp.admin_kubeconfig)))
        kube.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
        kube.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}")
        repo = create_bare_repo(base / "git", "catalog")
        repo.commit({"registry.json": catalogue})
        operator = MonitoredOperator(
            kubeconfig=cp.admin_kubeconfig,
            log_path=base / "operator.log",
            extra_env=env,
            lag_file=base / "lag.txt",
        )
        operator.start()
        assert operator.process is not None
        try:
            with Sampler(operator.process.pid) as sampler:
                idle_start = time.monotonic()
                time.sleep(args.idle)
                idle = summarise(lag_samples(operator.lag_file, idle_start, time.monotonic()))
                idle_rss = rss_kib(operator.process.pid)

                ns = "load"
                kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
                sampler.reset()
                start = time.monotonic()
                for i in range(args.registries):
                    body = {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "MCPRegistry",
                        "metadata": {"name": f"reg-{i}"},
                        "spec": {
                            "source": {
                                "type": "git",
                                "git": {"repository": git.url(repo), "path": "registry.json"},
                            }
                        },
                    }
                    kube.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)

                def all_ready() -> bool:
                    items = kube.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
                    ready = [
                        item
                        for item in items
                        if (item.get("status") or {}).get("phase") == "Ready"
                        and item["status"].get("syncStatus", {}).get("serverCount") == args.servers
                    ]
                    return bool(len(ready) == args.registries)

                wait_until(all_ready, timeout=args.timeout, interval=0.5, what="all registries Ready")
                end = time.monotonic()
                loaded = summarise(lag_samples(operator.lag_file, start, end))
                peak_own, peak_tree = sampler.peak_own, sampler.peak_tree
                parse_processes = len(sampler.parse_processes)
                time.sleep(args.idle)
                settled_rss = rss_kib(operator.process.pid)
            scraped = operator.scrape()
        finally:
            operator.stop()
    return {
        "mode": mode,
        "registries": args.registries,
        "servers": args.servers,
        "catalogue_mb": round(len(catalogue) / 1e6, 1),
        "all_ready_s": round(end - start, 1),
        "lag_idle": idle,
        "lag_during_syncs": loaded,
        "operator_rss_mib": {
            "idle": round(idle_rss / 1024, 1),
            "peak": round(peak_own / 1024, 1),
            "peak_with_children": round(peak_tree / 1024, 1),
            "after": round(settled_rss / 1024, 1),
        },
        "parse_processes_seen": parse_processes,
        "metrics_endpoint": {
            "lag_histogram_count": metric(scraped, "mcpreg_operator_event_loop_lag_seconds_count"),
            "lag_max_last_minute_s": metric(scraped, "mcpreg_operator_event_loop_lag_max_seconds"),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registries", type=int, default=50)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--modes", default="thread,process", help="comma-separated: thread, process")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle baseline, and of settling")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not set(modes) <= {"thread", "process"}:
        parser.error("--modes takes thread and/or process")
    catalogue = generate_toolhive(args.servers)
    work = Path(tempfile.mkdtemp(prefix="mcpreg-load-bench-"))
    results = [run_mode(mode, args, catalogue, work) for mode in modes]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
