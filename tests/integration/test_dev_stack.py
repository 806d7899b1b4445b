"""The README's first command, as a newcomer runs it: `mcpreg dev up` brings up the control plane, the
CRD, a sample git repository, the operator, a synced sample MCPRegistry and the registry API on
localhost; `dev env` points a shell at it; `dev down` leaves nothing running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mcpreg.devenv.binaries import ensure_binaries

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def test_dev_up_env_down(tmp_path: Path) -> None:
    binaries = ensure_binaries()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for path in (binaries.etcd, binaries.kube_apiserver, binaries.kube_controller_manager, binaries.kubectl):
        (bin_dir / path.name).symlink_to(path)
    # Its own cache directory, so the developer's own `mcpreg dev up` (if any) is left alone.
    env = dict(os.environ, MCPREG_CACHE_DIR=str(tmp_path / "cache"), MCPREG_BIN_DIR=str(bin_dir))
    env.pop("KUBECONFIG", None)

    def mcpreg(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mcpreg.cli", "dev", *args],
            env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    pids: list[int] = []
    up = mcpreg("up")
    stack_file = tmp_path / "cache" / "dev" / "stack.json"
    try:
        assert up.returncode == 0, up.stderr
        assert "The local MCP registry is up." in up.stdout
        lines = mcpreg("env").stdout.splitlines()
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export ")
        )
        api_url = exports["MCPREG_API_URL"]
        assert api_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{api_url}/v0.1/servers?limit=100", timeout=5) as response:  # noqa: S310
            body = json.loads(response.read())
        names = sorted(entry["server"]["name"] for entry in body["servers"])
        # The sample catalogue has five servers; the sample MCPRegistry's filter drops *-experimental.
        assert len(names) == 4 and not any(name.endswith("-experimental") for name in names)
        kubectl = subprocess.run(
            [str(bin_dir / "kubectl"), "get", "mcpreg", "-A", "-o", "json"],
            env=dict(env, KUBECONFIG=exports["KUBECONFIG"]), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        [registry] = json.loads(kubectl.stdout)["items"]
        assert registry["status"]["phase"] == "Ready"
        assert registry["status"]["syncStatus"]["serverCount"] == 4
        stack = json.loads(stack_file.read_text())
        pids = [
            stack["api_pid"],
            stack["operator_pid"],
            stack["git_pid"],
            *stack["control_plane_pids"].values(),
        ]
        assert all(_alive(pid) for pid in pids)
        # Running it again reuses what runs.
        again = mcpreg("up")
        assert again.returncode == 0, again.stderr
        assert json.loads(stack_file.read_text())["api_pid"] == stack["api_pid"]
    finally:
        down = mcpreg("down")
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids)
    assert not (tmp_path / "cache" / "dev").exists()
