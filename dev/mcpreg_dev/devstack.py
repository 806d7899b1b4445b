"""`make up | down | env`: the whole product on one machine, as its users run it.

`up` starts (or reuses) a control plane with a real node in `$MCPREG_CACHE_DIR/dev/`, builds the
product's image and imports it into the node, serves a sample git repository (the project's
`examples/sample-catalog/`) with `git daemon` on the pod bridge, installs the chart with the real
`helm` (so the operator runs as a pod with the chart's ServiceAccount), applies a sample MCPRegistry
that syncs from that repository, and waits until its registry API pods are Ready behind their Service,
which the host reaches through kube-proxy. Each background process is recorded in `dev/stack.json`
so `down` stops exactly what `up` started, and the node is torn down without a trace.

Where no real node can run (not root, no containerd: see `node.unavailable_reason`), the operator and
the registry API run as local processes instead, with the arguments their pods would get.
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
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mcpreg_dev import node as node_module
from mcpreg_dev.binaries import REPO_ROOT, cache_dir, ensure_binaries, ensure_helm
from mcpreg_dev.controlplane import ControlPlane, free_port
from mcpreg_dev.gitserver import create_bare_repo

SAMPLE_NAME = "sample-registry"
SAMPLE_NAMESPACE = "default"
DEFAULT_API_PORT = 8080
RELEASE = "mcp-registry-operator"
RELEASE_NAMESPACE = "mcp-system"
CHART = REPO_ROOT / "charts" / "mcp-registry-operator"


def dev_dir() -> Path:
    """The dev environment's state (MCPREG_DEV_DIR overrides it: the tests run their own)."""
    override = os.environ.get("MCPREG_DEV_DIR")
    return Path(override) if override else cache_dir() / "dev"


def _stack_file() -> Path:
    return dev_dir() / "stack.json"


def _load_stack() -> dict[str, Any]:
    try:
        stack: dict[str, Any] = json.loads(_stack_file().read_text())
        return stack
    except (OSError, ValueError):
        return {}


def _save_stack(stack: dict[str, Any]) -> None:
    dev_dir().mkdir(parents=True, exist_ok=True)
    _stack_file().write_text(json.dumps(stack, indent=2))


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/status").read_text().count("State:\tZ")


def _spawn(name: str, args: list[str], env: dict[str, str]) -> int:
    logs = dev_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return proc.pid


def _stop_pid(pid: int | None) -> None:
    if not _alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for _ in range(100):
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _kubectl(stack: dict[str, Any], *args: str, input: str | None = None) -> str:
    try:
        result = subprocess.run(
            [stack["kubectl"], *args],
            input=input,
            capture_output=True,
            text=True,
            env=dict(os.environ, KUBECONFIG=stack["kubeconfig"]),
            timeout=240,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"kubectl {' '.join(args[:2])} did not finish; logs in {dev_dir() / 'logs'}"
        ) from None
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _wait(probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.3)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}; logs in {dev_dir() / 'logs'}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URL we built)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _sample_manifest(git_url: str, *, in_cluster: bool = False) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "apiVersion": "mcpregistry.dev/v1alpha1",
        "kind": "MCPRegistry",
        "metadata": {"name": SAMPLE_NAME, "namespace": SAMPLE_NAMESPACE},
        "spec": {
            "displayName": "Sample MCP catalogue (make up)",
            "source": {
                "type": "git",
                "git": {"repository": git_url, "branch": "main", "path": "registry.json"},
            },
            "syncPolicy": {"interval": "1m"},
            "filter": {"names": {"exclude": ["*-experimental"]}},
            "api": {"enabled": True, "replicas": 2},
        },
    }
    if not in_cluster:
        # No node runs pods here: the registry API runs as a local process instead, with the
        # Deployment's exact arguments.
        manifest["spec"]["api"] = {"enabled": False}
    return manifest


def api_command(registry: str, namespace: str, port: int, config_file: Path) -> list[str]:
    """The registry API exactly as the operator's Deployment runs it (the configuration document it
    renders for ConfigMap storage, written to `config_file`), bound to loopback."""
    from mcpreg_operator.api_config import render_api_config
    from mcpreg_operator.spec.storage import Storage

    document = render_api_config(registry, namespace, Storage()).document()
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(json.dumps(document, indent=2) + "\n")
    listen = ["--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "mcpreg_cli.main", "serve", "--config", str(config_file), *listen]


S3_SAMPLE_NAME = "sample-registry-s3"
S3_BUCKET = "mcp-registries"


def _s3_sample_manifests(
    endpoint: str, access_key: str, secret_key: str, git_url: str
) -> list[dict[str, Any]]:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sample-s3-credentials", "namespace": SAMPLE_NAMESPACE},
        "stringData": {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key},
    }
    registry = _sample_manifest(git_url)
    registry["metadata"] = {"name": S3_SAMPLE_NAME, "namespace": SAMPLE_NAMESPACE}
    registry["spec"]["displayName"] = "Sample MCP catalogue stored in MinIO (make up WITH_S3=1)"
    registry["spec"]["storage"] = {
        "type": "s3",
        "s3": {
            "bucket": S3_BUCKET,
            "endpoint": endpoint,
            "region": "us-east-1",
            "forcePathStyle": True,
            "credentialsSecretRef": {"name": "sample-s3-credentials"},
        },
    }
    return [secret, registry]


def _start_minio(
    stack: dict[str, Any], env: dict[str, str], progress: Callable[[str], None], host: str = "127.0.0.1"
) -> None:
    import secrets

    from mcpreg_dev.minio import MinioServer, ensure_minio

    if _alive(stack.get("minio_pid")):
        return
    ensure_minio(progress)
    port = free_port(host)
    access_key, secret_key = "mcpreg-dev", secrets.token_urlsafe(18)
    minio_env = dict(env, MINIO_ROOT_USER=access_key, MINIO_ROOT_PASSWORD=secret_key, MINIO_BROWSER="off")
    stack["minio_pid"] = _spawn(
        "minio",
        [sys.executable, "-m", "mcpreg_dev.minio", "serve", "--data-dir", str(dev_dir() / "minio"),
         "--host", host, "--port", str(port)],
        minio_env,
    )  # fmt: skip
    stack["minio_endpoint"] = f"http://{host}:{port}"
    _save_stack(stack)
    _wait(lambda: _http_ok(f"{stack['minio_endpoint']}/minio/health/ready"), 60, "MinIO")
    server = MinioServer(
        binary=Path("minio"), data_dir=dev_dir() / "minio", log_path=dev_dir() / "logs" / "minio.log",
        port=port, access_key=access_key, secret_key=secret_key, host=host,
    )  # fmt: skip
    server.create_bucket(S3_BUCKET)
    manifests = _s3_sample_manifests(stack["minio_endpoint"], access_key, secret_key, stack["git_url"])
    if stack.get("mode") != "real-node":
        manifests[1]["spec"]["api"] = {"enabled": False}
    progress(
        f"applying MCPRegistry {SAMPLE_NAMESPACE}/{S3_SAMPLE_NAME} (stores into MinIO bucket {S3_BUCKET})…"
    )
    _kubectl(stack, "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(manifests))
    _kubectl(
        stack, "wait", f"mcpregistry/{S3_SAMPLE_NAME}", "-n", SAMPLE_NAMESPACE,
        "--for=jsonpath={.status.phase}=Ready", "--timeout=120s",
    )  # fmt: skip


def up(progress: Callable[[str], None], *, with_s3: bool = False) -> dict[str, Any]:
    stack = _load_stack()
    running = stack.get("mode")
    if running and _alive(stack.get("apiserver_pid")):
        mode = str(running)  # keep what runs (its node is ours); `make down` first to switch
    else:
        mode = "real-node" if node_module.node_mode() == "real" else "local-processes"
    if mode == "real-node":
        return _up_in_cluster(stack, progress, with_s3=with_s3)
    progress(f"no real node here ({node_module.unavailable_reason() or 'MCPREG_NODE=kwok'}): "
             "the operator and the registry API run as local processes")  # fmt: skip
    return _up_local(stack, progress, with_s3=with_s3)


def _start_control_plane(stack: dict[str, Any], progress: Callable[[str], None], *, with_node: bool) -> None:
    binaries = ensure_binaries(progress)
    cp_state = dev_dir() / "controlplane"
    if stack.get("apiserver_pid") and _alive(stack.get("apiserver_pid")):
        return
    shutil.rmtree(cp_state, ignore_errors=True)
    node = " and a real node (containerd, kubelet, kube-proxy, CoreDNS)" if with_node else ""
    progress(f"starting etcd, kube-apiserver, kube-controller-manager{node}…")
    control_plane = ControlPlane.create(
        state_dir=cp_state, owner_pid=None, with_node=with_node, progress=progress
    )
    control_plane.start()
    stack.update(
        server=control_plane.server,
        kubeconfig=str(control_plane.admin_kubeconfig),
        kubectl=str(binaries.kubectl),
        control_plane_pids={n: p.pid for n, p in control_plane.processes.items()},
        apiserver_pid=control_plane.processes["kube-apiserver"].pid,
        containerd_address=control_plane.node.containerd_address if control_plane.node else None,
    )
    _save_stack(stack)


def _start_git(stack: dict[str, Any], env: dict[str, str], host: str) -> None:
    """The sample catalogue in a bare repository served by git daemon (on the bridge address when
    the operator runs as a pod, so the pod reaches it)."""
    if _alive(stack.get("git_pid")):
        return
    git_root = dev_dir() / "git"
    shutil.rmtree(git_root, ignore_errors=True)
    repo = create_bare_repo(git_root, "sample-catalog")
    repo.commit(
        {"registry.json": (REPO_ROOT / "examples" / "sample-catalog" / "registry.json").read_bytes()},
        message="Sample catalogue",
    )
    port = free_port(host)
    stack["git_pid"] = _spawn(
        "git-daemon",
        [sys.executable, "-m", "mcpreg_dev.gitserver", "daemon", "--base-path", str(git_root),
         "--host", host, "--port", str(port)],
        env,
    )  # fmt: skip
    stack["git_url"] = f"git://{host}:{port}/sample-catalog.git"
    stack["git_repo"] = str(repo.path)
    _save_stack(stack)
    _wait(lambda: _port_open(port, host), 20, "the sample git server")


def _helm(stack: dict[str, Any], *args: str) -> str:
    helm = ensure_helm()
    helm_home = dev_dir() / "helm"
    env = dict(
        os.environ,
        KUBECONFIG=stack["kubeconfig"],
        HELM_CACHE_HOME=str(helm_home / "cache"),
        HELM_CONFIG_HOME=str(helm_home / "config"),
        HELM_DATA_HOME=str(helm_home / "data"),
    )
    result = subprocess.run([str(helm), *args], capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args[:2])}: {result.stderr.strip()[-800:]}")
    return result.stdout


def _up_in_cluster(
    stack: dict[str, Any], progress: Callable[[str], None], *, with_s3: bool
) -> dict[str, Any]:
    from mcpreg_dev.image import ensure_product_image

    stack["mode"] = "real-node"
    _start_control_plane(stack, progress, with_node=True)
    env = dict(os.environ, KUBECONFIG=stack["kubeconfig"])

    # The product image, built without Docker and imported into the node's containerd.
    image = ensure_product_image(progress)
    progress(f"importing {image.ref} into the node…")
    node_module.import_image(stack["containerd_address"], image.archive)
    stack["image"] = image.ref
    _save_stack(stack)

    _start_git(stack, env, node_module.NODE_IP)

    # The chart, installed by the real helm: CRD, RBAC, the operator Deployment from the image.
    repository, tag = image.ref.rsplit(":", 1)
    progress(f"installing the chart (helm upgrade --install {RELEASE} -n {RELEASE_NAMESPACE})…")
    _helm(
        stack, "upgrade", "--install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
        "--create-namespace", "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never", "--set", "operator.logFormat=plain",
    )  # fmt: skip
    _kubectl(stack, "rollout", "status", f"deployment/{RELEASE}", "-n", RELEASE_NAMESPACE, "--timeout=180s")
    _kubectl(
        stack, "wait", "--for=condition=Established", "crd/mcpregistries.mcpregistry.dev", "--timeout=60s"
    )

    progress(f"applying MCPRegistry {SAMPLE_NAMESPACE}/{SAMPLE_NAME} (syncs from {stack['git_url']})…")
    _kubectl(
        stack, "apply", "--server-side", "-f", "-",
        input=yaml.safe_dump(_sample_manifest(stack["git_url"], in_cluster=True)),
    )  # fmt: skip
    progress("waiting for the sample registry's API pods to be Ready…")
    _kubectl(
        stack, "wait", f"mcpregistry/{SAMPLE_NAME}", "-n", SAMPLE_NAMESPACE,
        "--for=jsonpath={.status.apiStatus.phase}=Ready", "--timeout=240s",
    )  # fmt: skip
    cluster_ip = _kubectl(
        stack, "get", "service", f"{SAMPLE_NAME}-api", "-n", SAMPLE_NAMESPACE, "-o",
        "jsonpath={.spec.clusterIP}:{.spec.ports[0].port}",
    ).strip()  # fmt: skip
    # The Service's ClusterIP, reached from the host through kube-proxy's rules (and the route that
    # keeps the service range on the pod bridge).
    stack["api_url"] = f"http://{cluster_ip}"
    _save_stack(stack)
    _wait(lambda: _http_ok(f"{stack['api_url']}/readiness"), 60, "the registry API through its Service")

    if with_s3:
        _start_minio(stack, env, progress, host=node_module.NODE_IP)
    return stack


def _up_local(stack: dict[str, Any], progress: Callable[[str], None], *, with_s3: bool) -> dict[str, Any]:
    stack["mode"] = "local-processes"
    binaries = ensure_binaries(progress)
    env = dict(os.environ)

    # 1. Control plane (reused when already running).
    del binaries
    _start_control_plane(stack, progress, with_node=False)
    env["KUBECONFIG"] = stack["kubeconfig"]

    # 2. CRD.
    progress("installing the MCPRegistry CRD…")
    _kubectl(stack, "apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
    _kubectl(
        stack, "wait", "--for=condition=Established", "crd/mcpregistries.mcpregistry.dev", "--timeout=60s"
    )

    # 3. Sample git repository served by git daemon.
    _start_git(stack, env, "127.0.0.1")

    # 4. Operator.
    if not _alive(stack.get("operator_pid")):
        progress("starting the operator…")
        stack["operator_pid"] = _spawn("operator", [sys.executable, "-m", "mcpreg_cli.main", "operator"], env)
        _save_stack(stack)

    # 5. Sample MCPRegistry, synced.
    progress(f"applying MCPRegistry {SAMPLE_NAMESPACE}/{SAMPLE_NAME} (syncs from {stack['git_url']})…")
    _kubectl(
        stack, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(_sample_manifest(stack["git_url"]))
    )
    _kubectl(
        stack, "wait", f"mcpregistry/{SAMPLE_NAME}", "-n", SAMPLE_NAMESPACE,
        "--for=jsonpath={.status.phase}=Ready", "--timeout=120s",
    )  # fmt: skip

    # 6. The registry API, with the Deployment's arguments, on localhost.
    if not _alive(stack.get("api_pid")):
        port = stack.get("api_port") or (DEFAULT_API_PORT if _port_free(DEFAULT_API_PORT) else free_port())
        stack["api_pid"] = _spawn(
            "api", api_command(SAMPLE_NAME, SAMPLE_NAMESPACE, port, dev_dir() / "api-config.json"), env
        )
        stack["api_port"] = port
        stack["api_url"] = f"http://127.0.0.1:{port}"
        _save_stack(stack)
    _wait(lambda: _http_ok(f"{stack['api_url']}/readiness"), 60, "the registry API")

    # 7. Optionally MinIO, and a second sample registry stored in it.
    if with_s3:
        _start_minio(stack, env, progress)
    return stack


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _port_free(port: int) -> bool:
    return not _port_open(port)


def down(progress: Callable[[str], None]) -> None:
    stack = _load_stack()
    for key in ("api_pid", "operator_pid", "git_pid", "minio_pid"):
        _stop_pid(stack.get(key))
    record = node_module.read_record()
    if record is not None and not str(record.get("owner_state_dir", "")).startswith(str(dev_dir())):
        record = None  # another environment's node (a test run's): not ours to remove
    if record is not None:
        progress("removing the node: pods, containerd, kubelet, kube-proxy, DNS…")
        node_module.stop_workloads(record)
    for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
        _stop_pid((stack.get("control_plane_pids") or {}).get(name))
    if record is not None:
        progress("removing the pod network and restoring the host's settings…")
        node_module.release_host(record)
    shutil.rmtree(dev_dir(), ignore_errors=True)
    progress("the local environment is stopped and removed")


def env_lines() -> list[str]:
    stack = _load_stack()
    if not stack.get("kubeconfig"):
        raise RuntimeError("nothing is running: start it with `make up` (`python -m mcpreg_dev up`)")
    lines = [f"export KUBECONFIG={stack['kubeconfig']}"]
    kubectl_dir = str(Path(stack["kubectl"]).parent)
    lines.append(f'export PATH="{kubectl_dir}:$PATH"')
    if stack.get("api_url"):
        lines.append(f"export MCPREG_API_URL={stack['api_url']}")
    if stack.get("mode"):
        lines.append(f"# mode: {stack['mode']}")
    return lines
