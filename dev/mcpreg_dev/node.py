"""A real Kubernetes node beside the local control plane: containerd + runc (Debian's packages), the
CNI `bridge` + `host-local` plugins, a kubelet and kube-proxy built from the same `k8s.io/kubernetes`
pin as the control plane, and cluster DNS (CoreDNS, answering `cluster.local` only).

Only one node can run on a machine at a time (kube-proxy owns the host's KUBE-* chains): the node
records itself in `/run/mcpreg-node.json`, and a start finding a record whose owner is gone first
tears that node down. Teardown removes every trace: pod processes and their cgroups, mounts, network
namespaces, containerd's shims, kube-proxy's chains, the bridge, and the sysctls as they were.

Quirks of small VMs handled here (see shared/notes/real-node.md): runc cannot lower oom_score_adj
(`restrict_oom_score_adj`), cgroup v1 (`failCgroupV1: false`, cgroupfs), no dummy interface (the
bridge's address is the node IP), no image registry (a locally built pause image, and every pull
pointed at a closed loopback port), conntrack sysctls left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mcpreg_dev import hostnet
from mcpreg_dev.binaries import COREDNS, KUBERNETES_NODE, ensure_component
from mcpreg_dev.kubeconfig import write_cert_kubeconfig
from mcpreg_dev.pki import ControlPlanePKI, issue_certificate
from mcpreg_dev.processes import cmdline, pid_alive, stop_group

NODE_NAME = "mcpreg-node"
NODE_IP = hostnet.NODE_IP
CLUSTER_DOMAIN = "cluster.local"
DNS_IP = NODE_IP  # CoreDNS listens on the bridge address; pods' resolv.conf names it
KUBELET_PORT = 10250
NODE_RECORD = Path(os.environ.get("MCPREG_NODE_RECORD", "/run/mcpreg-node.json"))
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
NETNS_DIR = Path("/run/netns")
CONTAINER_LOGS_DIR = Path("/var/log/containers")  # the kubelet's symlinks; the path is fixed in it
SHIM_STATE_DIR = Path("/run/containerd")  # containerd 1.6 puts shim sockets under it, whatever `state` is
# Paths outside the node's own folder that containerd, the kubelet and the CNI library write whatever
# they are configured with (device-plugin socket, CNI result cache, network namespaces…). Teardown
# removes each one that did not exist before the node started.
# The node's own state (containerd's images and snapshots, the kubelet's pods and volumes, sockets):
# short paths, because unix socket paths are limited to 104-108 bytes and a test's temporary state
# directory is often longer; one folder per run, and one node per machine.
NODE_BASE = Path(os.environ.get("MCPREG_NODE_BASE", "/var/lib/mcpreg-node"))
HOST_PATHS = (
    NODE_BASE,
    SHIM_STATE_DIR,
    NETNS_DIR,
    CONTAINER_LOGS_DIR,
    Path("/var/log/pods"),
    Path("/var/lib/kubelet"),
    Path("/var/lib/cni"),
    Path("/run/mount"),  # util-linux's utab, written by umount
)
NODE_COMPONENTS = ("containerd", "kubelet", "kube-proxy", "coredns")
READY_TIMEOUT_S = 120.0
HOST_TOOLS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "iptables-save", "ip")


class NodeError(RuntimeError):
    """The node could not start or stop cleanly; the message names the component and its log."""


def unavailable_reason() -> str | None:
    """Why a real node cannot run on this machine at all (None when it can)."""
    if not sys.platform.startswith("linux"):
        return f"a real node needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "a real node needs root (containerd, kubelet and kube-proxy manage namespaces and iptables)"
    missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    if not any((d / "bridge").is_file() and (d / "host-local").is_file() for d in CNI_BIN_DIRS):
        missing.append("the CNI bridge and host-local plugins")
    if missing:
        return f"missing {', '.join(missing)}: run `sudo scripts/install-host-deps` (Debian packages)"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no /sys/fs/cgroup: cgroups are not mounted"
    return None


def node_mode() -> str:
    """`real` or `kwok`, from MCPREG_NODE (`real`, `kwok`, or `auto`, the default: real where possible).
    `real` makes an unavailable node an error rather than a silent fallback (CI sets it)."""
    wanted = os.environ.get("MCPREG_NODE", "auto").strip().lower() or "auto"
    if wanted not in ("auto", "real", "kwok"):
        raise NodeError(f"MCPREG_NODE={wanted!r}: use real, kwok or auto")
    if wanted == "kwok":
        return "kwok"
    reason = unavailable_reason() or busy_reason()
    if reason is None:
        return "real"
    if wanted == "real":
        raise NodeError(f"MCPREG_NODE=real but {reason}")
    return "kwok"


def busy_reason() -> str | None:
    """Why this machine's one node slot is taken (None when it is free)."""
    record = read_record()
    if record is not None and record_is_live(record):
        return f"the machine's real node is in use (state {record.get('node_dir')}; `make down` frees it)"
    return None


def cni_bin_dir() -> Path:
    for directory in CNI_BIN_DIRS:
        if (directory / "bridge").is_file():
            return directory
    return CNI_BIN_DIRS[0]


# --- records and teardown (also used for a crashed run's node) ------------------------------------


def read_record() -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(NODE_RECORD.read_text())
        return record
    except (OSError, ValueError):
        return None


def _write_record(record: dict[str, Any]) -> None:
    NODE_RECORD.parent.mkdir(parents=True, exist_ok=True)
    tmp = NODE_RECORD.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(NODE_RECORD)


def record_is_live(record: dict[str, Any]) -> bool:
    """A node whose control plane's state still exists (a crashed test run's is removed by the next
    start) and whose kubelet, containerd… still run."""
    owner = record.get("owner_state_dir")
    if owner and not Path(str(owner)).is_dir():
        return False
    marker = str(record.get("node_dir", "\0"))
    return any(pid_alive(int(pid)) and marker in cmdline(int(pid)) for pid in record.get("pids", {}).values())


def _kubepods_cgroups() -> list[Path]:
    """Every `kubepods` cgroup in every mounted hierarchy (v1 controllers and the unified one)."""
    root = Path("/sys/fs/cgroup")
    found = [root / "kubepods"] if (root / "kubepods").is_dir() else []
    with contextlib.suppress(OSError):
        found += [h / "kubepods" for h in root.iterdir() if (h / "kubepods").is_dir()]
    return found


def _cgroup_pids(cgroup: Path) -> set[int]:
    pids: set[int] = set()
    for dirpath, _dirs, files in os.walk(cgroup):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError, ValueError):
                pids |= {int(p) for p in (Path(dirpath) / "cgroup.procs").read_text().split()}
    return pids


def _kill_pods() -> None:
    """SIGKILL every process left in the kubepods cgroups, then remove those cgroups bottom-up."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = set().union(*(_cgroup_pids(c) for c in _kubepods_cgroups())) if _kubepods_cgroups() else set()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    for cgroup in _kubepods_cgroups():
        for dirpath, _dirs, _files in sorted(os.walk(cgroup), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                Path(dirpath).rmdir()


def _kill_shims(address: str) -> None:
    """containerd's shims outlive containerd; stop the ones serving our containerd."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        cmd = cmdline(int(entry.name))
        if "containerd-shim" in cmd and address in cmd:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


def _mounts_under(prefixes: list[str]) -> list[str]:
    points: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if any(point == p or point.startswith(p.rstrip("/") + "/") for p in prefixes):
                points.append(point)
    return points


def _unmount_all(prefixes: list[str]) -> None:
    for _ in range(5):
        points = _mounts_under(prefixes)
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)


def _new_netns(before: list[str]) -> list[Path]:
    if not NETNS_DIR.is_dir():
        return []
    return [p for p in NETNS_DIR.iterdir() if p.name.startswith("cni-") and p.name not in before]


def teardown(record: dict[str, Any], kube_proxy: Path | None = None) -> None:
    """Remove everything the recorded node left on this machine. Idempotent."""
    stop_workloads(record, kube_proxy)
    release_host(record)


def stop_workloads(record: dict[str, Any], kube_proxy: Path | None = None) -> None:
    """Stop the node's processes and pods and undo their mounts, namespaces and KUBE-* chains; the
    bridge stays (the apiserver still listens on its address until the control plane stops)."""
    node_dir = str(record.get("node_dir", ""))
    for name in ("coredns", "kube-proxy", "kubelet"):
        pid = record.get("pids", {}).get(name)
        if pid and node_dir:
            stop_group(int(pid), node_dir)
    _kill_pods()
    pid = record.get("pids", {}).get("containerd")
    if pid and node_dir:
        stop_group(int(pid), node_dir)
    if record.get("containerd_address"):
        _kill_shims(str(record["containerd_address"]))
    netns = _new_netns(record.get("netns_before", []))
    created = _created_host_paths(record)
    prefixes = [p for p in (node_dir, *(str(n) for n in netns), *(str(c) for c in created)) if p]
    _unmount_all(prefixes)
    for path in netns:
        with contextlib.suppress(OSError):
            path.unlink()
    binary = kube_proxy or (Path(record["kube_proxy"]) if record.get("kube_proxy") else None)
    if binary is not None and binary.is_file():
        # kube-proxy's own cleanup removes its KUBE-* chains in every mode it knows of.
        subprocess.run([str(binary), "--cleanup"], capture_output=True, timeout=120)
    _remove_kubelet_chains()


def release_host(record: dict[str, Any]) -> None:
    """The rest, once nothing uses the bridge: the host network and sysctls, the node's folders, the
    paths the node's components created outside them, the record."""
    node_dir = str(record.get("node_dir", ""))
    hostnet.HostNetwork(saved_sysctls=record.get("sysctls", {})).teardown()
    if CONTAINER_LOGS_DIR.is_dir() and node_dir:
        for link in CONTAINER_LOGS_DIR.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and os.readlink(link).startswith(node_dir):
                    link.unlink()
    cni_results = Path("/var/lib/cni/results")
    if cni_results.is_dir():  # a CNI cache that was there before: only our network's entries go
        for entry in cni_results.glob("mcpreg-*"):
            with contextlib.suppress(OSError):
                entry.unlink()
    if node_dir:
        shutil.rmtree(node_dir, ignore_errors=True)
    for path in _created_host_paths(record):
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        NODE_RECORD.unlink()


def _created_host_paths(record: dict[str, Any]) -> list[Path]:
    existed = record.get("host_paths_existed")
    if existed is None:
        return []
    return [path for path in HOST_PATHS if not existed.get(str(path), True) and path.exists()]


def _remove_kubelet_chains() -> None:
    """The kubelet's own canary chains (KUBE-KUBELET-CANARY, KUBE-FIREWALL…) that kube-proxy --cleanup
    does not own."""
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            try:
                out = subprocess.run(
                    [f"{tool}-save", "-t", table], capture_output=True, text=True, timeout=30
                )
            except (OSError, subprocess.SubprocessError):
                continue
            chains = [line[1:].split()[0] for line in out.stdout.splitlines() if line.startswith(":KUBE-")]
            rules = [line for line in out.stdout.splitlines() if line.startswith("-A ") and "KUBE-" in line]
            for rule in rules:
                parts = rule.split()
                if parts[1].startswith("KUBE-"):
                    continue  # goes with its chain
                subprocess.run([tool, "-w", "-t", table, "-D", *parts[1:]], capture_output=True, timeout=30)
            for chain in chains:
                subprocess.run([tool, "-w", "-t", table, "-F", chain], capture_output=True, timeout=30)
            for chain in chains:
                subprocess.run([tool, "-w", "-t", table, "-X", chain], capture_output=True, timeout=30)


def leftovers(record: dict[str, Any]) -> list[str]:
    """What is still on the machine of a node that was torn down (empty when teardown was complete)."""
    found = hostnet.leftovers(record.get("sysctls", {}))
    node_dir = str(record.get("node_dir", ""))
    found += [f"mount {p}" for p in _mounts_under([node_dir] if node_dir else [])]
    found += [f"cgroup {c}" for c in _kubepods_cgroups()]
    found += [f"netns {p.name}" for p in _new_netns(record.get("netns_before", []))]
    found += [f"path {p}" for p in _created_host_paths(record)]
    if node_dir and Path(node_dir).exists():
        found.append(f"path {node_dir}")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = cmdline(int(entry.name))
            if (node_dir and node_dir in cmd) or (
                "containerd-shim" in cmd and str(record.get("containerd_address", "\0")) in cmd
            ):
                found.append(f"process {entry.name}: {cmd[:120]}")
    return found


# --- the node ----------------------------------------------------------------------------------


@dataclass
class Node:
    """One real node attached to a control plane whose state lives in `state_dir`."""

    state_dir: Path
    server: str
    pki: ControlPlanePKI
    kubectl: Path
    admin_kubeconfig: Path
    spawn: Callable[[str, list[str]], subprocess.Popen[bytes]]
    log_path: Callable[[str], Path]
    progress: Callable[[str], None] = lambda _msg: None
    network: hostnet.HostNetwork | None = None
    record: dict[str, Any] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kubelet: Path | None = None
    kube_proxy: Path | None = None
    coredns: Path | None = None
    pause_ref: str = ""
    dns_ready_port: int = 0

    @property
    def node_dir(self) -> Path:
        return NODE_BASE / self.state_dir.name

    @property
    def containerd_address(self) -> str:
        return str(self.node_dir / "containerd.sock")

    # Phase 1, before the apiserver (it binds the bridge address) -------------------------------

    def prepare_network(self) -> None:
        """Clear a dead run's node, claim the machine, and create the bridge the apiserver binds to."""
        previous = read_record()
        if previous is not None:
            if record_is_live(previous):
                raise NodeError(
                    f"a real node is already running on this machine (state {previous.get('node_dir')}); "
                    "stop it first (`make down`, or end the test run that owns it), or set MCPREG_NODE=kwok"
                )
            self.progress("removing the node a crashed earlier run left behind…")
            teardown(previous)
        self.kubelet = ensure_component(KUBERNETES_NODE, self.progress) / "kubelet"
        self.kube_proxy = ensure_component(KUBERNETES_NODE, self.progress) / "kube-proxy"
        self.coredns = ensure_component(COREDNS, self.progress) / "coredns"
        from mcpreg_dev.image import ensure_pause_image

        pause = ensure_pause_image(self.progress)
        self.pause_ref = pause.ref
        self.record = {
            "node_dir": str(self.node_dir),
            "owner_state_dir": str(self.state_dir),
            "owner_pid": os.getpid(),
            "containerd_address": self.containerd_address,
            "kube_proxy": str(self.kube_proxy),
            "netns_before": sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else [],
            "host_paths_existed": {str(path): path.exists() for path in HOST_PATHS},
            "sysctls": {key: hostnet.read_sysctl(key) for key in hostnet.SYSCTLS},
            "pids": {},
        }
        shutil.rmtree(self.node_dir, ignore_errors=True)
        self.node_dir.mkdir(parents=True, exist_ok=True)
        _write_record(self.record)
        self.network = hostnet.HostNetwork.setup()
        self.record["sysctls"] = self.network.saved_sysctls
        _write_record(self.record)
        self._pause_archive = pause.archive

    # Phase 2, once the apiserver is ready -------------------------------------------------------

    def start(self) -> None:
        self._write_certificates()
        self._start_containerd()
        self.import_image(self._pause_archive)
        self._start_kubelet()
        self._start_kube_proxy()
        self._start_coredns()
        self._wait_node_ready()
        self._wait_dns_ready()

    def _spawn(self, name: str, args: list[str]) -> None:
        self.processes[name] = self.spawn(name, args)
        self.record["pids"][name] = self.processes[name].pid
        _write_record(self.record)

    def _write_certificates(self) -> None:
        pki_dir = self.node_dir / "pki"
        self.kubelet_client = issue_certificate(
            self.pki, pki_dir, "kubelet-client",
            common_name=f"system:node:{NODE_NAME}", organization="system:nodes",
        )  # fmt: skip
        self.kubelet_serving = issue_certificate(
            self.pki, pki_dir, "kubelet-serving",
            common_name=NODE_NAME, alt_names=(NODE_NAME, NODE_IP),
        )  # fmt: skip
        self.proxy_client = issue_certificate(
            self.pki, pki_dir, "kube-proxy", common_name="system:kube-proxy"
        )
        self.coredns_client = issue_certificate(self.pki, pki_dir, "coredns", common_name="mcpreg:coredns")

    def _kubeconfig(self, name: str, cert: tuple[Path, Path]) -> Path:
        return write_cert_kubeconfig(
            self.node_dir / f"{name}.kubeconfig",
            server=self.server,
            ca_cert=self.pki.ca_cert,
            client_cert=cert[0],
            client_key=cert[1],
            name=name,
        )

    # containerd ---------------------------------------------------------------------------------

    def _containerd_config(self) -> Path:
        base = self.node_dir / "containerd"
        hosts = base / "certs.d" / "_default"
        hosts.mkdir(parents=True, exist_ok=True)
        # No image registry is reachable: every pull goes to a closed loopback port and fails at
        # once, instead of resolving a public registry's name through the host's resolver.
        (hosts / "hosts.toml").write_text('server = "http://127.0.0.1:9"\n')
        cni = self.node_dir / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": "mcpreg",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": hostnet.BRIDGE,
                    "isGateway": True,
                    "isDefaultGateway": False,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": hostnet.POD_SUBNET, "gateway": NODE_IP}]],
                        # Only the pod and service ranges: no default route, so nothing leaves.
                        "routes": [{"dst": hostnet.CLUSTER_CIDR}, {"dst": hostnet.SERVICE_CIDR}],
                        "dataDir": str(cni / "ipam"),
                    },
                }
            ],
        }
        (cni / "net.d" / "10-mcpreg.conflist").write_text(json.dumps(conflist, indent=2))
        runc = shutil.which("runc") or "runc"
        config = f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{self.containerd_address}"

[ttrpc]
  address = "{self.containerd_address}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{self.pause_ref}"
  # This VM lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below containerd's own.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{base / "runc"}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir()}"
    conf_dir = "{cni / "net.d"}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{base / "certs.d"}"
"""
        path = base / "config.toml"
        path.write_text(config)
        return path

    def _start_containerd(self) -> None:
        config = self._containerd_config()
        self._spawn("containerd", ["containerd", "--config", str(config), "--log-level", "warn"])
        self._wait(lambda: self.ctr("version").returncode == 0, 60, "containerd", "containerd")

    def ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", self.containerd_address, "--namespace", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def import_image(self, archive: Path) -> None:
        """Make an OCI archive's image available to the kubelet (no registry is involved)."""
        import_image(self.containerd_address, archive)

    def images(self) -> list[str]:
        result = self.ctr("images", "list", "--quiet")
        return result.stdout.split()

    # kubelet ------------------------------------------------------------------------------------

    def _start_kubelet(self) -> None:
        assert self.kubelet is not None
        base = self.node_dir / "kubelet"
        base.mkdir(parents=True, exist_ok=True)
        # Pods with dnsPolicy Default (and the kubelet's own search paths) get our DNS, never the
        # host's resolver.
        resolv = base / "resolv.conf"
        resolv.write_text(f"nameserver {DNS_IP}\n")
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 0,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.pki.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(self.kubelet_serving[0]),
            "tlsPrivateKeyFile": str(self.kubelet_serving[1]),
            "containerRuntimeEndpoint": f"unix://{self.containerd_address}",
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,  # this VM has cgroup v1 hierarchies
            "failSwapOn": False,
            "clusterDNS": [DNS_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": str(resolv),
            "podLogsDir": str(base / "pod-logs"),
            "serializeImagePulls": False,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "nodeStatusUpdateFrequency": "4s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
            "shutdownGracePeriod": "0s",
            "maxPods": 110,
            "registerNode": True,
        }
        config_path = base / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        kubeconfig = self._kubeconfig("kubelet", self.kubelet_client)
        self._spawn(
            "kubelet",
            [
                str(self.kubelet),
                f"--config={config_path}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={base / 'root'}",
                f"--cert-dir={base / 'pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                "--v=1",
            ],
        )

    # kube-proxy ---------------------------------------------------------------------------------

    def _start_kube_proxy(self) -> None:
        assert self.kube_proxy is not None
        from mcpreg_dev.controlplane import free_port

        base = self.node_dir / "kube-proxy"
        base.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self._kubeconfig("kube-proxy", self.proxy_client))},
            "mode": "iptables",  # no IPVS in this kernel
            "clusterCIDR": hostnet.CLUSTER_CIDR,
            "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_IP,
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # NodePorts only on the bridge address, never on the machine's own interfaces.
            "nodePortAddresses": [f"{NODE_IP}/32"],
            "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
            # Zero: keep the kernel's conntrack settings (their sysctls may not be writable here).
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
        }
        config_path = base / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._spawn("kube-proxy", [str(self.kube_proxy), f"--config={config_path}", "--v=1"])

    # CoreDNS ------------------------------------------------------------------------------------

    def _start_coredns(self) -> None:
        assert self.coredns is not None
        from mcpreg_dev.controlplane import free_port

        rbac = [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "mcpreg:coredns"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["services", "namespaces", "pods"],
                        "verbs": ["list", "watch"],
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["list", "watch"],
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "mcpreg:coredns"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "mcpreg:coredns",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mcpreg:coredns"}
                ],
            },
        ]
        self.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
        base = self.node_dir / "coredns"
        base.mkdir(parents=True, exist_ok=True)
        kubeconfig = self._kubeconfig("coredns", self.coredns_client)
        self.dns_ready_port = free_port()
        # cluster.local and the reverse zones of the pod and service ranges, nothing else: there is no
        # forward plugin in this build, so any other name is refused, never looked up upstream.
        corefile = f"""{CLUSTER_DOMAIN}:53 10.in-addr.arpa:53 {{
    bind {DNS_IP}
    errors
    ready 127.0.0.1:{self.dns_ready_port}
    kubernetes {CLUSTER_DOMAIN} 10.in-addr.arpa {{
        kubeconfig {kubeconfig} coredns
        pods insecure
        ttl 5
    }}
    cache 5
}}
"""
        path = base / "Corefile"
        path.write_text(corefile)
        self._spawn("coredns", [str(self.coredns), "-conf", str(path), "-dns.port", "53"])

    # readiness ----------------------------------------------------------------------------------

    def kubectl_run(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run(
            [str(self.kubectl), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, KUBECONFIG=str(self.admin_kubeconfig)),
        )
        if result.returncode != 0:
            raise NodeError(f"kubectl {' '.join(args[:3])}: {result.stderr.strip()}")
        return result.stdout

    def _wait(self, probe: Callable[[], bool], timeout: float, what: str, *components: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in components or tuple(self.processes):
                proc = self.processes.get(name)
                if proc is not None and proc.poll() is not None:
                    raise NodeError(
                        f"{name} exited with code {proc.returncode}; its log ({self.log_path(name)}) "
                        f"ends with:\n{_tail(self.log_path(name))}"
                    )
            if probe():
                return
            time.sleep(0.2)
        raise NodeError(f"{what} not ready after {timeout:.0f}s; logs in {self.log_path(what).parent}")

    def node_ready(self) -> bool:
        try:
            out = self.kubectl_run(
                "get", "node", NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
            )
        except NodeError:
            return False
        return out.strip() == "True"

    def _wait_node_ready(self) -> None:
        self._wait(self.node_ready, READY_TIMEOUT_S, "kubelet")

    def _wait_dns_ready(self) -> None:
        import urllib.error
        import urllib.request

        def ready() -> bool:
            try:
                url = f"http://127.0.0.1:{self.dns_ready_port}/ready"
                with urllib.request.urlopen(url, timeout=2) as response:
                    return bool(response.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        self._wait(ready, 60, "coredns", "coredns")

    # stop -----------------------------------------------------------------------------------------

    def restart_kubelet(self, *, down_seconds: float = 0.0) -> None:
        """Stop the kubelet (its pods keep running under containerd), keep it down for `down_seconds`,
        start it again and wait for the node to be Ready: the fault-injection suite's kubelet restart."""
        proc = self.processes.pop("kubelet", None)
        if proc is not None:
            stop_group(proc.pid, str(self.node_dir))
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        time.sleep(down_seconds)
        self._start_kubelet()
        self._wait_node_ready()

    def stop(self) -> None:
        """Stop the node's processes and pods (the host network stays until `release`)."""
        if not self.record:
            return
        stop_workloads(self.record, self.kube_proxy)
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.processes.clear()

    def release(self) -> None:
        """Remove the bridge, sysctls and folders: after the control plane stopped using them."""
        if self.record:
            release_host(self.record)
            self.record = {}

    def resident_memory_bytes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for name, proc in self.processes.items():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes[name] = int(line.split()[1]) * 1024
        return sizes


def import_image(containerd_address: str, archive: Path) -> None:
    """Import an OCI archive into the node's containerd (the CRI's `k8s.io` namespace)."""
    result = subprocess.run(
        ["ctr", "--address", containerd_address, "--namespace", "k8s.io", "images", "import", str(archive)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise NodeError(f"ctr images import {archive}: {result.stderr.strip()[-400:]}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def machine_leftovers() -> list[str]:
    """Node state on this machine with no live node to own it (a check for after a test run)."""
    found = hostnet.kube_chains()
    record = read_record()
    if record is not None:
        found.append(f"node record {NODE_RECORD} ({'live' if record_is_live(record) else 'stale'})")
    if Path("/sys/class/net", hostnet.BRIDGE).exists():
        found.append(f"bridge {hostnet.BRIDGE}")
    found += [f"cgroup {c}" for c in _kubepods_cgroups()]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            command = cmdline(int(entry.name)).split(" ", 1)[0].rsplit("/", 1)[-1]
            if command in ("kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "coredns"):
                found.append(f"process {entry.name} {command}")
    if NETNS_DIR.is_dir():
        found += [f"netns {p.name}" for p in NETNS_DIR.iterdir() if p.name.startswith("cni-")]
    return found


def main(argv: list[str] | None = None) -> int:
    """`python -m mcpreg_dev.node check-clean [--ip-forward V]`: exit 1 listing any node state
    left on the machine (CI runs it after the tests)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mcpreg_dev.node")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-clean", help="fail if a real node left anything behind")
    check.add_argument("--ip-forward", help="the value net.ipv4.ip_forward had before the run")
    args = parser.parse_args(argv)
    found = machine_leftovers()
    if args.ip_forward is not None:
        now = hostnet.read_sysctl("net/ipv4/ip_forward")
        if now != args.ip_forward:
            found.append(f"net.ipv4.ip_forward={now} (was {args.ip_forward})")
    for item in found:
        print(f"left behind: {item}", file=sys.stderr)
    if not found:
        print("no node state left on this machine")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
