"""A real local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager as local
processes on loopback (envtest-style), for the tests and for `make up`.

Each run owns a state directory under `$MCPREG_CACHE_DIR/runs/` holding its PKI, kubeconfigs, etcd
data, logs and a `state.json` naming its processes. Runs tied to a Python process (test sessions) are
cleaned up by the next start if that process died without stopping them; the developer run of
`make up` lives in `$MCPREG_CACHE_DIR/dev/` until `make down`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpreg_dev.binaries import ControlPlaneBinaries, cache_dir, ensure_binaries
from mcpreg_dev.kubeconfig import write_cert_kubeconfig
from mcpreg_dev.node import NODE_IP, Node
from mcpreg_dev.pki import ControlPlanePKI, generate_pki
from mcpreg_dev.processes import pid_alive, stop_group

SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"
READY_TIMEOUT_S = 90.0
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
CLUSTER_CIDR = "10.244.0.0/16"
FAKE_NODE = "kwok-node-0"
KEEP_LOG_RUNS = 10


class ControlPlaneError(RuntimeError):
    """The control plane could not start; the message names the component and its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def runs_dir() -> Path:
    return cache_dir() / "runs"


def logs_root() -> Path:
    return cache_dir() / "logs"


def cleanup_stale_runs() -> list[Path]:
    """Stop and delete runs whose owning process is gone (a crashed or killed earlier test run)."""
    removed: list[Path] = []
    root = runs_dir()
    if not root.is_dir():
        return removed
    for state_dir in root.iterdir():
        state_file = state_dir / "state.json"
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = None
        if state is not None:
            owner = state.get("owner_pid")
            if owner is not None and pid_alive(int(owner)):
                continue
            for pid in state.get("pids", {}).values():
                stop_group(int(pid), str(state_dir))
        elif time.time() - state_dir.stat().st_mtime < 60:
            continue  # a run being set up right now has not written its state yet
        shutil.rmtree(state_dir, ignore_errors=True)
        removed.append(state_dir)
    return removed


def _prune_old_logs() -> None:
    root = logs_root()
    if not root.is_dir():
        return
    runs = sorted(root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in runs[KEEP_LOG_RUNS:]:
        shutil.rmtree(old, ignore_errors=True)


# kwok's own stage definitions (shipped in its Go module): initialise nodes and keep their leases;
# move scheduled pods to Running/Ready; finish deleted pods.
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


def kwok_stages(kwok_dir: Path) -> Path:
    """A kwok config of the stages above, assembled once from the pinned kwok module and cached
    beside the binary."""
    target = kwok_dir / "stages.yaml"
    if target.is_file():
        return target
    from mcpreg_dev.binaries import KWOK

    try:
        module_dir = subprocess.run(
            ["go", "list", "-m", "-f", "{{.Dir}}", KWOK.pinned_module],
            cwd=KWOK.module_dir,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
            env=dict(os.environ, GOFLAGS="-mod=readonly", GOTOOLCHAIN="local"),
        ).stdout.strip()
        documents = [(Path(module_dir) / name).read_text() for name in KWOK_STAGE_FILES]
    except (OSError, subprocess.SubprocessError) as exc:
        raise ControlPlaneError(f"cannot read kwok's stage definitions from its Go module: {exc}") from exc
    tmp = target.with_suffix(".tmp")
    tmp.write_text("\n---\n".join(doc.strip() for doc in documents) + "\n")
    tmp.replace(target)
    return target


@dataclass
class ControlPlane:
    """One local control plane. Use `start()`/`stop()` or `with ControlPlane.create() as cp:`."""

    state_dir: Path
    binaries: ControlPlaneBinaries
    with_controller_manager: bool = True
    # kube-scheduler + kwok + one fake node: pods get scheduled and become Ready without a kubelet.
    with_kwok: bool = False
    # kube-scheduler + a real node (containerd, kubelet, kube-proxy, CoreDNS): pods really run.
    with_node: bool = False
    node: Node | None = None
    owner_pid: int | None = None  # None: lives until explicitly stopped (the dev environment)
    etcd_port: int = 0
    etcd_peer_port: int = 0
    apiserver_port: int = 0
    controller_manager_port: int = 0
    scheduler_port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    pki: ControlPlanePKI | None = None
    progress: Callable[[str], None] = field(default=lambda _message: None)

    @classmethod
    def create(
        cls,
        *,
        state_dir: Path | None = None,
        with_controller_manager: bool = True,
        with_kwok: bool = False,
        with_node: bool = False,
        owner_pid: int | None = -1,
        progress: Callable[[str], None] | None = None,
    ) -> ControlPlane:
        """A control plane ready to start. `owner_pid=-1` ties it to this process."""
        binaries = ensure_binaries(progress) if progress else ensure_binaries()
        if state_dir is None:
            state_dir = runs_dir() / f"cp-{uuid.uuid4().hex[:8]}"
        return cls(
            state_dir=state_dir,
            binaries=binaries,
            with_controller_manager=with_controller_manager,
            with_kwok=with_kwok,
            with_node=with_node,
            owner_pid=os.getpid() if owner_pid == -1 else owner_pid,
            progress=progress or (lambda _message: None),
        )

    # Paths -----------------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def host(self) -> str:
        """Where the apiserver listens: loopback, or with a real node the bridge address pods reach
        (the `kubernetes` Service's endpoint)."""
        return NODE_IP if self.with_node else "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.apiserver_port}"

    @property
    def ca_cert(self) -> Path:
        return self._pki.ca_cert

    @property
    def _pki(self) -> ControlPlanePKI:
        """The PKI, which start() generates before anything asks for it."""
        assert self.pki is not None
        return self.pki

    def log_path(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    # Lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(keep_logs=exc[0] is not None)

    def start(self) -> None:
        cleanup_stale_runs()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.pki = generate_pki(
            self.state_dir / "pki",
            service_ip=SERVICE_IP,
            extra_server_ips=(NODE_IP,) if self.with_node else (),
        )
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.apiserver_port = free_port()
        self.controller_manager_port = free_port()
        self.scheduler_port = free_port()
        write_cert_kubeconfig(
            self.admin_kubeconfig,
            server=self.server,
            ca_cert=self.pki.ca_cert,
            client_cert=self.pki.admin_cert,
            client_key=self.pki.admin_key,
        )
        self._save_state()
        try:
            if self.with_node:
                self.node = Node(
                    state_dir=self.state_dir,
                    server=self.server,
                    pki=self.pki,
                    kubectl=self.binaries.kubectl,
                    admin_kubeconfig=self.admin_kubeconfig,
                    spawn=self._spawn,
                    log_path=self.log_path,
                    progress=self.progress,
                )
                self.node.prepare_network()
            self._start_etcd()
            self._start_apiserver()
            self._wait_apiserver_ready()
            if self.with_controller_manager:
                self._start_controller_manager()
                self._wait_controller_manager_healthy()
            if self.with_kwok:
                self._start_kwok()
            if self.node is not None:
                self._start_scheduler()
                self.node.start()
        except BaseException:
            self.stop(keep_logs=True)
            raise

    def stop(self, keep_logs: bool = False) -> Path | None:
        """Stop every component and remove the state directory. Returns where logs were kept."""
        marker = str(self.state_dir)
        node, self.node = self.node, None
        if node is not None:
            node.stop()  # pods, containerd, kubelet, kube-proxy and DNS first
        # Reverse order: the controller manager and apiserver go before the etcd they talk to.
        for name in reversed(COMPONENTS):
            proc = self.processes.pop(name, None)
            if proc is not None:
                stop_group(proc.pid, marker)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        if node is not None:
            # Last: the apiserver talks to itself on the bridge address until it has stopped.
            node.release()
        kept: Path | None = None
        if keep_logs and self.log_dir.is_dir():
            kept = logs_root() / self.state_dir.name
            logs_root().mkdir(parents=True, exist_ok=True)
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(self.log_dir, kept)
            _prune_old_logs()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return kept

    def restart(self, component: str, *, down_seconds: float = 0.0) -> None:
        """Stop `component` (etcd or kube-apiserver), keep it down for `down_seconds`, start it again
        on the same port and data, and wait until the API server answers: the fault-injection suite's
        control-plane restarts."""
        starters = {"etcd": self._start_etcd, "kube-apiserver": self._start_apiserver}
        if component not in starters:
            raise ValueError(f"cannot restart {component}; only {', '.join(starters)}")
        proc = self.processes.pop(component, None)
        if proc is not None:
            stop_group(proc.pid, str(self.state_dir))
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        time.sleep(down_seconds)
        starters[component]()
        self._wait_apiserver_ready()

    def _save_state(self) -> None:
        state: dict[str, Any] = {
            "owner_pid": self.owner_pid,
            "server": self.server,
            "kubeconfig": str(self.admin_kubeconfig),
            "kubernetes_version": self.binaries.kubernetes_version,
            "pids": {name: proc.pid for name, proc in self.processes.items()},
            "ports": {
                "etcd": self.etcd_port,
                "kube-apiserver": self.apiserver_port,
                "kube-controller-manager": self.controller_manager_port,
            },
        }
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_dir / "state.json")

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with self.log_path(name).open("ab") as log:
            # A session of its own, so stopping kills the whole process group and nothing is orphaned.
            proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.processes[name] = proc
        self._save_state()
        return proc

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.binaries.etcd),
                "--name=default",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                # A throwaway store: skipping fsync makes every write (and so every test) faster.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )

    def _start_apiserver(self) -> None:
        pki = self._pki
        self._spawn(
            "kube-apiserver",
            [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                f"--bind-address={self.host}",
                f"--advertise-address={self.host}",
                f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-account-key-file={pki.service_account_pub}",
                f"--service-account-signing-key-file={pki.service_account_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--profiling=false",
                f"--cert-dir={self.state_dir / 'apiserver-certs'}",
                *self._apiserver_node_args(),
            ],
        )

    def _apiserver_node_args(self) -> list[str]:
        if not self.with_node:
            # Nothing routes to 127.0.0.1 from pods; keep the 'kubernetes' Endpoints untouched.
            return ["--authorization-mode=RBAC", "--endpoint-reconciler-type=none"]
        pki = self._pki
        from mcpreg_dev.pki import issue_certificate

        client = issue_certificate(
            pki, self.state_dir / "pki", "apiserver-kubelet-client",
            common_name="kube-apiserver-kubelet-client", organization="system:masters",
        )  # fmt: skip
        return [
            # The kubelet's own identity (system:node:…) is limited to its node by these two.
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={client[0]}",
            f"--kubelet-client-key={client[1]}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            # By IP: the node's name is in no resolver (and the host's resolver is never asked).
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _system_kubeconfig(self) -> Path:
        pki = self._pki
        return write_cert_kubeconfig(
            self.state_dir / "controller-manager.kubeconfig",
            server=self.server,
            ca_cert=pki.ca_cert,
            client_cert=pki.controller_manager_cert,
            client_key=pki.controller_manager_key,
            name="kube-controller-manager",
        )

    def _system_component_flags(self, secure_port: int) -> list[str]:
        """What kube-scheduler and kube-controller-manager are both started with: the system kubeconfig,
        for the API and for delegated authentication and authorization, serving on loopback
        `secure_port`, no leader election (one of each)."""
        kubeconfig = self._system_kubeconfig()
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={secure_port}",
            "--leader-elect=false",
        ]

    def _start_scheduler(self) -> None:
        if self.binaries.kube_scheduler is None:
            raise ControlPlaneError("the kube-scheduler binary is needed for pods to be scheduled")
        flags = self._system_component_flags(self.scheduler_port)
        self._spawn("kube-scheduler", [str(self.binaries.kube_scheduler), *flags])

    def _start_kwok(self) -> None:
        """kube-scheduler binds pods to a fake node that kwok keeps Ready; kwok then plays the kubelet
        and marks scheduled pods Running and Ready, so Deployments report real status."""
        if self.binaries.kwok is None:
            raise ControlPlaneError("the kwok binary is needed for with_kwok=True")
        kubeconfig = self._system_kubeconfig()
        stages = kwok_stages(self.binaries.kwok.parent)
        self._start_scheduler()
        self._spawn(
            "kwok",
            [
                str(self.binaries.kwok),
                f"--kubeconfig={kubeconfig}",
                f"--config={stages}",
                # Leases keep the fake node healthy in the eyes of the node lifecycle controller.
                "--node-lease-duration-seconds=40",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.0.1.0/24",
                "--node-ip=10.0.1.1",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": FAKE_NODE,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"kubernetes.io/hostname": FAKE_NODE, "kubernetes.io/os": "linux", "type": "kwok"},
            },
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            },
        }
        result = subprocess.run(
            [str(self.binaries.kubectl), "create", "-f", "-"],
            input=json.dumps(node),
            capture_output=True,
            text=True,
            env=dict(os.environ, KUBECONFIG=str(self.admin_kubeconfig)),
            timeout=60,
        )
        if result.returncode != 0:
            raise ControlPlaneError(f"cannot create the fake node: {result.stderr.strip()}")

    def _start_controller_manager(self) -> None:
        pki = self._pki
        flags = [
            *self._system_component_flags(self.controller_manager_port),
            f"--cert-dir={self.state_dir / 'controller-manager-certs'}",
            "--use-service-account-credentials=false",
            f"--root-ca-file={pki.ca_cert}",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
        ]
        if self.with_node:
            flags += [
                "--allocate-node-cidrs=true",
                f"--cluster-cidr={CLUSTER_CIDR}",
                "--node-cidr-mask-size=24",
                # Pods on a deleted or dead node are gone quickly in tests, not after 5 minutes.
                "--node-monitor-grace-period=20s",
            ]
        self._spawn("kube-controller-manager", [str(self.binaries.kube_controller_manager), *flags])

    # Readiness -------------------------------------------------------------------------------

    def _client_ssl(self) -> ssl.SSLContext:
        pki = self._pki
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        return context

    def _check_alive(self, name: str) -> None:
        proc = self.processes.get(name)
        if proc is not None and proc.poll() is not None:
            raise ControlPlaneError(
                f"{name} exited with code {proc.returncode} during start-up; its log "
                f"({self.log_path(name)}) ends with:\n{_tail(self.log_path(name))}"
            )

    def _wait_http_ok(self, url: str, context: ssl.SSLContext, components: tuple[str, ...]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last_error = ""
        while time.monotonic() < deadline:
            for name in components:
                self._check_alive(name)
            try:
                with urllib.request.urlopen(url, context=context, timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(getattr(exc, "reason", exc))
            time.sleep(0.1)
        raise ControlPlaneError(
            f"{url} not ready after {READY_TIMEOUT_S:.0f}s ({last_error}); logs in {self.log_dir}"
        )

    def _wait_apiserver_ready(self) -> None:
        self._wait_http_ok(f"{self.server}/readyz", self._client_ssl(), ("etcd", "kube-apiserver"))

    def _wait_controller_manager_healthy(self) -> None:
        # The controller manager serves a self-signed certificate of its own; only liveness is checked.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self._wait_http_ok(
            f"https://127.0.0.1:{self.controller_manager_port}/healthz", context, ("kube-controller-manager",)
        )

    def version(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.server}/version", context=self._client_ssl(), timeout=5) as r:  # noqa: S310
            result: dict[str, Any] = json.loads(r.read())
            return result

    def resident_memory_bytes(self) -> dict[str, int]:
        """Resident set size of each running component (from /proc), for measurements."""
        sizes: dict[str, int] = {}
        for name, proc in self.processes.items():
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    sizes[name] = int(line.split()[1]) * 1024
        return sizes


@contextlib.contextmanager
def running_control_plane(with_controller_manager: bool = True) -> Iterator[ControlPlane]:
    control_plane = ControlPlane.create(with_controller_manager=with_controller_manager)
    with control_plane:
        yield control_plane


def main() -> int:
    """`python -m mcpreg_dev.controlplane`: start, report timings and memory, stop."""
    started = time.monotonic()
    control_plane = ControlPlane.create()
    control_plane.start()
    ready = time.monotonic() - started
    try:
        print(
            json.dumps(
                {
                    "ready_s": round(ready, 2),
                    "version": control_plane.version()["gitVersion"],
                    "rss_bytes": control_plane.resident_memory_bytes(),
                }
            )
        )
    finally:
        control_plane.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
