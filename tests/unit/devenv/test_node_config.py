"""The real node's configuration, as pure data: what keeps pods on the machine (CNI routes, no
masquerade, no registry pulls), the VM quirks (oom_score_adj, cgroup v1), and how the mode is chosen."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mcpreg_dev import hostnet, node
from mcpreg_dev.pki import ControlPlanePKI


def make_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> node.Node:
    monkeypatch.setattr(node, "NODE_BASE", tmp_path / "node-base")
    pki = ControlPlanePKI(*(tmp_path / f"pki-{i}" for i in range(10)))

    def no_spawn(name: str, args: list[str]) -> Any:
        raise AssertionError("nothing is started here")

    instance = node.Node(
        state_dir=tmp_path / "cp-test",
        server="https://10.244.0.1:6443",
        pki=pki,
        kubectl=Path("kubectl"),
        admin_kubeconfig=tmp_path / "admin.kubeconfig",
        spawn=no_spawn,
        log_path=lambda name: tmp_path / f"{name}.log",
    )
    instance.pause_ref = "mcpreg.local/pause:test"
    return instance


def test_containerd_config_handles_the_vm_and_never_pulls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = make_node(tmp_path, monkeypatch)
    config = tomllib.loads(instance._containerd_config().read_text())
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # runc cannot lower oom_score_adj here
    assert cri["sandbox_image"] == "mcpreg.local/pause:test"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert config["grpc"]["address"] == instance.containerd_address
    # Socket paths must stay under the kernel's 108-byte limit, whatever the state directory is.
    assert len(instance.containerd_address + ".ttrpc") < 104
    hosts = Path(cri["registry"]["config_path"]) / "_default" / "hosts.toml"
    assert tomllib.loads(hosts.read_text()) == {"server": "http://127.0.0.1:9"}


def test_pods_get_only_cluster_routes_and_no_masquerade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = make_node(tmp_path, monkeypatch)
    instance._containerd_config()
    [conflist] = (instance.node_dir / "cni" / "net.d").glob("*.conflist")
    [bridge] = json.loads(conflist.read_text())["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == hostnet.BRIDGE
    assert bridge["ipMasq"] is False and bridge["isDefaultGateway"] is False
    routes = [r["dst"] for r in bridge["ipam"]["routes"]]
    assert routes == [hostnet.CLUSTER_CIDR, hostnet.SERVICE_CIDR]
    assert "0.0.0.0/0" not in routes


@pytest.mark.parametrize(
    ("wanted", "reason", "expected"),
    [
        ("kwok", None, "kwok"),
        ("auto", None, "real"),
        ("auto", "no containerd", "kwok"),
        ("real", None, "real"),
        ("", None, "real"),
    ],
)
def test_node_mode(monkeypatch: pytest.MonkeyPatch, wanted: str, reason: str | None, expected: str) -> None:
    monkeypatch.setenv("MCPREG_NODE", wanted)
    monkeypatch.setattr(node, "unavailable_reason", lambda: reason)
    monkeypatch.setattr(node, "busy_reason", lambda: None)
    assert node.node_mode() == expected


def test_node_mode_real_refuses_to_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node, "unavailable_reason", lambda: "a real node needs root")
    monkeypatch.setenv("MCPREG_NODE", "real")
    with pytest.raises(node.NodeError, match="needs root"):
        node.node_mode()
    monkeypatch.setenv("MCPREG_NODE", "sometimes")
    with pytest.raises(node.NodeError, match="real, kwok or auto"):
        node.node_mode()


def test_a_node_whose_control_plane_state_is_gone_is_stale(tmp_path: Path) -> None:
    record = {"owner_state_dir": str(tmp_path / "gone"), "node_dir": "/", "pids": {"kubelet": os.getpid()}}
    assert not node.record_is_live(record)
    record["owner_state_dir"] = str(tmp_path)
    assert node.record_is_live(record)  # this process's command line contains "/"
