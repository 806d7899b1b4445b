"""The host side of the local node's pod network, and proof that it is gone again.

One bridge (`mcpreg0`, gateway and node address 10.244.0.1) that the CNI `bridge` plugin attaches pods
to; a route that keeps the service range on that bridge; and a guard chain that drops anything from the
pod range that would leave through another interface, so no packet of a pod ever leaves the machine
(pods also get no default route: see the CNI config in `node.py`). Every host setting changed here is
recorded first and put back on teardown; `leftovers()` lists whatever is still there.
"""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

BRIDGE = "mcpreg0"
NODE_IP = "10.244.0.1"
POD_SUBNET = "10.244.0.0/24"
POD_PREFIX = 24
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.0.0.0/24"
GUARD_CHAIN = "MCPREG-GUARD"

# sysctls the node needs: forwarding between pods through the bridge gateway (service traffic is
# DNAT-ed on the host), and bridged traffic through iptables (a pod reaching a Service whose endpoint
# is on the same bridge).
SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/bridge/bridge-nf-call-iptables": "1",
}


class HostNetworkError(RuntimeError):
    """The host network could not be set up; the message names the command that failed."""


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise HostNetworkError(f"`{' '.join(args)}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def read_sysctl(key: str) -> str | None:
    try:
        return (Path("/proc/sys") / key).read_text().strip()
    except OSError:
        return None


def write_sysctl(key: str, value: str) -> None:
    (Path("/proc/sys") / key).write_text(value)


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


@dataclass
class HostNetwork:
    """Sets up and tears down the bridge, route, guard chain and sysctls. `saved_sysctls` is what
    was there before (kept in the node record, so a crashed run can still be undone)."""

    saved_sysctls: dict[str, str | None]

    @classmethod
    def setup(cls) -> HostNetwork:
        network = cls(saved_sysctls={key: read_sysctl(key) for key in SYSCTLS})
        try:
            network._setup()
        except BaseException:
            network.teardown()
            raise
        return network

    def _setup(self) -> None:
        if not _link_exists(BRIDGE):
            _run("ip", "link", "add", BRIDGE, "type", "bridge")
        # The kubelet refuses a loopback node IP and this VM has no dummy interface: the bridge's own
        # gateway address is the node's address, the apiserver's advertised address and the DNS server.
        addresses = _run("ip", "-o", "-4", "addr", "show", "dev", BRIDGE).stdout
        if f"{NODE_IP}/" not in addresses:
            _run("ip", "addr", "add", f"{NODE_IP}/{POD_PREFIX}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        # Host → ClusterIP: kube-proxy DNATs these in OUTPUT; until it does (or for an address without
        # a Service) the packet goes to the bridge, never to the default route.
        _run("ip", "route", "replace", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP)
        if read_sysctl("net/bridge/bridge-nf-call-iptables") is None:
            _run("modprobe", "br_netfilter", check=False)
            self.saved_sysctls["net/bridge/bridge-nf-call-iptables"] = read_sysctl(
                "net/bridge/bridge-nf-call-iptables"
            )
        for key, value in SYSCTLS.items():
            if read_sysctl(key) is None:
                raise HostNetworkError(f"/proc/sys/{key} does not exist: this kernel lacks what a node needs")
            write_sysctl(key, value)
        self._add_guard()

    def _add_guard(self) -> None:
        _run("iptables", "-w", "-N", GUARD_CHAIN, check=False)
        _run("iptables", "-w", "-F", GUARD_CHAIN)
        # Pod traffic may only go back onto the bridge (to another pod, after service DNAT) or to the
        # host itself (INPUT, not FORWARD); anything else would leave the machine.
        _run("iptables", "-w", "-A", GUARD_CHAIN, "-s", CLUSTER_CIDR, "!", "-o", BRIDGE, "-j", "DROP")
        _run("iptables", "-w", "-A", GUARD_CHAIN, "-d", CLUSTER_CIDR, "!", "-i", BRIDGE, "-j", "DROP")
        if _run("iptables", "-w", "-C", "FORWARD", "-j", GUARD_CHAIN, check=False).returncode != 0:
            _run("iptables", "-w", "-I", "FORWARD", "1", "-j", GUARD_CHAIN)

    def teardown(self) -> None:
        """Undo everything `setup` did; safe to call more than once and after a partial setup."""
        while _run("iptables", "-w", "-D", "FORWARD", "-j", GUARD_CHAIN, check=False).returncode == 0:
            pass
        _run("iptables", "-w", "-F", GUARD_CHAIN, check=False)
        _run("iptables", "-w", "-X", GUARD_CHAIN, check=False)
        _run("ip", "route", "del", SERVICE_CIDR, "dev", BRIDGE, check=False)
        if _link_exists(BRIDGE):
            _run("ip", "link", "del", BRIDGE, check=False)
        for key, value in self.saved_sysctls.items():
            if value is not None and read_sysctl(key) not in (None, value):
                with contextlib.suppress(OSError):
                    write_sysctl(key, value)


def kube_chains() -> list[str]:
    """KUBE-* (kube-proxy's, the kubelet's) and our guard chains still present in any table."""
    found: list[str] = []
    for tool in ("iptables-save", "ip6tables-save"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([tool], capture_output=True, text=True, timeout=30).stdout
            found += [
                f"{tool.split('-')[0]} {line[1:].split()[0]}"
                for line in out.splitlines()
                if line.startswith(":KUBE-") or line.startswith(f":{GUARD_CHAIN}")
            ]
    return found


def leftovers(saved_sysctls: dict[str, str | None]) -> list[str]:
    """What the host network still shows of a node that was torn down (empty when clean)."""
    found = kube_chains()
    if _link_exists(BRIDGE):
        found.append(f"bridge {BRIDGE}")
    routes = _run("ip", "route", "show", SERVICE_CIDR, check=False).stdout.strip()
    if routes:
        found.append(f"route {routes}")
    for key, value in saved_sysctls.items():
        now = read_sysctl(key)
        if value is not None and now not in (None, value):
            found.append(f"sysctl {key}={now} (was {value})")
    return found
