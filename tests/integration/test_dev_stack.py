"""The README's first command, as a newcomer runs it: `make up` brings up the control plane with
a real node, installs the chart with helm (the operator runs as a pod from the product's image), syncs
a sample MCPRegistry from a sample git repository and serves it from registry API pods behind their
Service, reachable from the host; `dev env` points a shell at it; `dev down` leaves nothing behind.
Where no real node can run, the same command runs the operator and the API as local processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mcpreg_dev import node as node_module
from mcpreg_dev.thv import ensure_thv, thv_config_env, thv_env

pytestmark = [pytest.mark.integration, pytest.mark.devstack]


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (the stack's own URL)
        return json.loads(response.read())


def test_dev_up_env_down(tmp_path: Path) -> None:
    mode = node_module.node_mode()
    # Its own state directory, so the developer's own `make up` (if any) is left alone; the
    # built binaries and images are shared through the usual cache.
    dev_dir = tmp_path / "dev"
    env = dict(os.environ, MCPREG_DEV_DIR=str(dev_dir))
    env.pop("KUBECONFIG", None)

    def mcpreg(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mcpreg_dev", *args],
            env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    pids: list[int] = []
    record: dict[str, Any] | None = None
    started = time.monotonic()
    up = mcpreg("up")
    up_seconds = time.monotonic() - started
    stack_file = dev_dir / "stack.json"
    try:
        assert up.returncode == 0, up.stderr
        assert "The local MCP registry is up." in up.stdout
        print(f"dev up ({mode}): {up_seconds:.1f}s")
        lines = mcpreg("env").stdout.splitlines()
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export ")
        )
        api_url = exports["MCPREG_API_URL"]
        body = _get(f"{api_url}/v0.1/servers?limit=100")
        names = sorted(entry["server"]["name"] for entry in body["servers"])
        # The sample catalogue has five servers; the sample MCPRegistry's filter drops *-experimental.
        assert len(names) == 4 and not any(name.endswith("-experimental") for name in names)
        toolhive = _get(f"{api_url}/api/v1/registry")
        assert len(toolhive["servers"]) + len(toolhive.get("remote_servers") or {}) == 4
        # ToolHive's own client, as the README shows it.
        thv, home = ensure_thv(), tmp_path / "thv-home"
        configured = subprocess.run(
            [str(thv), "config", "set-registry", api_url, "-p"],
            env=thv_config_env(home), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert configured.returncode == 0, configured.stderr
        listed = subprocess.run(
            [str(thv), "registry", "list"], env=thv_env(home), capture_output=True, text=True, timeout=60
        )
        assert listed.returncode == 0, listed.stderr
        assert all(name.rsplit("/", 1)[-1].split(".")[-1] in listed.stdout for name in toolhive["servers"])

        stack = json.loads(stack_file.read_text())
        kubectl_env = dict(env, KUBECONFIG=exports["KUBECONFIG"])

        def kubectl(*args: str) -> Any:
            result = subprocess.run(
                [stack["kubectl"], *args, "-o", "json"],
                env=kubectl_env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)

        [registry] = kubectl("get", "mcpreg", "-A")["items"]
        assert registry["status"]["phase"] == "Ready"
        assert registry["status"]["syncStatus"]["serverCount"] == 4
        pids = [stack["git_pid"], *stack["control_plane_pids"].values()]
        if mode == "real":
            assert stack["mode"] == "real-node"
            # No API or operator process runs outside the cluster: both are pods from the image.
            assert "api_pid" not in stack and "operator_pid" not in stack
            [operator_pod] = kubectl("get", "pods", "-n", "mcp-system")["items"]
            assert operator_pod["spec"]["serviceAccountName"] == "mcp-registry-operator"
            assert operator_pod["spec"]["containers"][0]["image"] == stack["image"]
            assert operator_pod["status"]["phase"] == "Running"
            api_pods = kubectl(
                "get", "pods", "-n", "default", "-l", "app.kubernetes.io/instance=sample-registry"
            )["items"]
            assert len(api_pods) == 2
            assert all(p["status"]["phase"] == "Running" for p in api_pods)
            assert registry["status"]["apiStatus"]["readyReplicas"] == 2
            # The host reaches the Service's ClusterIP (kube-proxy), not a pod or a local process.
            service = kubectl("get", "service", "sample-registry-api", "-n", "default")
            assert api_url == f"http://{service['spec']['clusterIP']}:8080"
            record = node_module.read_record()
            assert record is not None and str(record["owner_state_dir"]).startswith(str(dev_dir))
        else:
            assert stack["mode"] == "local-processes"
            assert api_url.startswith("http://127.0.0.1:")
            pids += [stack["api_pid"], stack["operator_pid"]]
        assert all(_alive(pid) for pid in pids)
        # Running it again reuses what runs.
        again = mcpreg("up")
        assert again.returncode == 0, again.stderr
        assert json.loads(stack_file.read_text())["control_plane_pids"] == stack["control_plane_pids"]
    finally:
        down = mcpreg("down")
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids)
    assert not dev_dir.exists()
    if record is not None:
        assert node_module.leftovers(record) == []
        assert node_module.read_record() is None
