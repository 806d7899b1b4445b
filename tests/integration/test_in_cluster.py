"""The product as its users run it, on the real node: the chart installed by the real helm, the
operator as a pod from the product's image with the chart's ServiceAccount, registries syncing from a
git server the pods reach on the bridge, registry API pods behind their Services answering in-cluster
clients by DNS name, and the API pod's own token confined to its data.

Every request goes to the pod bridge (10.244.0.0/24), a ClusterIP (kept on the bridge) or loopback.
The session's own operator process (fixtures/operator.py) leaves the `ic-*` namespaces alone, and the
chart's operator watches only this module's registry namespace, so the two never meet.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fixtures.kube import Kube, wait_until
from fixtures.operator import Registries
from mcpreg_dev.binaries import ensure_helm
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer, create_bare_repo
from mcpreg_dev.gitsigning import GpgSigner, SshSigner, sign_tip
from mcpreg_dev.minio import MinioServer
from mcpreg_dev.node import NODE_IP

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "mcp-registry-operator"
SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", REPO.parent / "shared" / "data"))
SNAPSHOT = SHARED / "toolhive" / "registry-2026-02-18.json"
RELEASE = "ic"

# The pods' security context: what the restricted Pod Security Standard asks.
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@dataclass
class InCluster:
    kube: Kube
    image: str
    operator_ns: str
    registry_ns: str
    client_ns: str
    git: GitDaemonServer
    git_root: Path
    registries: Registries

    def repo(self, name: str) -> BareRepo:
        return create_bare_repo(self.git_root, f"{name}-{uuid.uuid4().hex[:6]}")

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kube.kubectl(*args, "-o", "json").stdout)

    def api_pods(self, registry: str, *, ready_only: bool = False) -> list[dict[str, Any]]:
        pods = self.kubectl_json(
            "get", "pods", "-n", self.registry_ns, "-l", f"app.kubernetes.io/instance={registry}"
        )["items"]
        pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if ready_only:
            pods = [p for p in pods if pod_ready(p)]
        return pods

    def client_pod(self, name: str, script: str) -> dict[str, Any]:
        """A pod of the product's image in the client namespace (not the registry's) that runs
        `script` with python3, restricted like the product's own pods."""
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": self.client_ns},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
                "containers": [
                    {
                        "name": "client",
                        "image": self.image,
                        "imagePullPolicy": "Never",
                        "command": ["python3", "-u", "-c", script],
                        "securityContext": RESTRICTED,
                    }
                ],
            },
        }

    def start_client(self, name: str, script: str) -> None:
        self.kube.apply(self.client_pod(name, script))

    def run_client(self, name: str, script: str, *, timeout: float = 120) -> str:
        """Run `script` in a client pod to its end; its standard output."""
        self.start_client(name, script)
        try:
            wait_until(
                lambda: self.pod_phase(name) in ("Succeeded", "Failed"),
                timeout=timeout,
                interval=0.5,
                what=f"client pod {name} to finish",
            )
            logs = self.kube.kubectl("logs", "-n", self.client_ns, name).stdout
            assert self.pod_phase(name) == "Succeeded", f"client pod {name} failed:\n{logs}"
            return logs
        finally:
            self.kube.kubectl("delete", "pod", "-n", self.client_ns, name, "--wait=false", check=False)

    def pod_phase(self, name: str) -> str:
        try:
            pod = self.kube.core.read_namespaced_pod(name, self.client_ns)
        except ApiException as exc:
            if exc.status == 404:
                return "Missing"
            raise
        return str(pod.status.phase)


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def api_ready(status: dict[str, Any], replicas: int = 1) -> bool:
    api = status.get("apiStatus") or {}
    return (
        status.get("phase") == "Ready"
        and api.get("phase") == "Ready"
        and api.get("readyReplicas") == replicas
    )


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a ClusterIP or pod IP)
        return json.loads(response.read())


@pytest.fixture(scope="module")
def ic(
    kube: Kube, crd: str, product_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InCluster]:
    if not kube.real_node:
        if os.environ.get("MCPREG_NODE") == "real":
            pytest.fail("MCPREG_NODE=real but the session's cluster has no real node")
        pytest.skip("no real node on this machine (see the `node:` line of the test header)")
    suffix = uuid.uuid4().hex[:6]
    namespaces = (f"ic-op-{suffix}", f"ic-reg-{suffix}", f"ic-client-{suffix}")
    for name in namespaces:
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    git_root = tmp_path_factory.mktemp("ic-git")
    git = GitDaemonServer(git_root, host=NODE_IP).start()  # on the bridge: the operator pod reaches it
    helm = ensure_helm()
    repository, tag = product_image.rsplit(":", 1)
    env = dict(
        os.environ,
        KUBECONFIG=str(kube.kubeconfig),
        HELM_CACHE_HOME=str(git_root.parent / "helm-cache"),
        HELM_CONFIG_HOME=str(git_root.parent / "helm-config"),
        HELM_DATA_HOME=str(git_root.parent / "helm-data"),
    )
    install = subprocess.run(
        [
            str(helm), "install", RELEASE, str(CHART), "--namespace", namespaces[0], "--skip-crds",
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", "image.pullPolicy=Never", "--set", "operator.logFormat=plain",
            "--set-json", f'watchNamespaces=["{namespaces[1]}"]',
        ],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    try:
        kube.kubectl(
            "wait", "pod", "-n", namespaces[0], "-l", f"app.kubernetes.io/instance={RELEASE}",
            "--for=condition=Ready", "--timeout=120s",
        )  # fmt: skip
        yield InCluster(
            kube=kube,
            image=product_image,
            operator_ns=namespaces[0],
            registry_ns=namespaces[1],
            client_ns=namespaces[2],
            git=git,
            git_root=git_root,
            registries=Registries(kube=kube, namespace=namespaces[1]),
        )
    finally:
        logs = kube.kubectl(
            "logs", "-n", namespaces[0], "-l", f"app.kubernetes.io/instance={RELEASE}", "--tail=200",
            check=False,
        )  # fmt: skip
        (git_root.parent / "operator-pod.log").write_text(logs.stdout + logs.stderr)
        subprocess.run(
            [str(helm), "uninstall", RELEASE, "--namespace", namespaces[0]],
            capture_output=True, env=env, timeout=120,
        )  # fmt: skip
        for name in namespaces:
            kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
        git.stop()


def git_registry(ic: InCluster, name: str, *, path: str = "registry.json", **api: Any) -> BareRepo:
    repo = ic.repo(name)
    repo.commit({"registry.json": SNAPSHOT.read_bytes()})
    spec: dict[str, Any] = {
        "source": {"type": "git", "git": {"repository": ic.git.url(repo), "path": path}},
        "syncPolicy": {"interval": "1h"},
    }
    if api:
        spec["api"] = api
    ic.registries.create(name, spec)
    return repo


@pytest.fixture(scope="module")
def web(ic: InCluster) -> dict[str, Any]:
    """A registry with two API replicas, synced and Ready, shared by the tests below."""
    git_registry(ic, "web", replicas=2)
    return ic.registries.wait("web", lambda s: api_ready(s, 2), timeout=180, what="API Ready (2 replicas)")


def test_api_pods_become_ready_only_once_the_catalogue_is_loaded(ic: InCluster) -> None:
    # The first sync fails (no such file): the API Deployment exists, its pod runs, but it has nothing to
    # serve, so its readiness probe keeps it out of the Service.
    repo = git_registry(ic, "gated", path="missing.json")
    ic.registries.wait(
        "gated",
        lambda s: any(
            c["type"] == "SourceAvailable" and c["status"] == "False" for c in s.get("conditions", [])
        ),
        timeout=60,
        what="the failed first sync",
    )
    [pod] = wait_until(
        lambda: [
            p
            for p in ic.api_pods("gated")
            if p["status"].get("podIP") and p["status"].get("phase") == "Running"
        ],
        timeout=120,
        interval=0.5,
        what="the API pod running",
    )
    time.sleep(8)  # more than one readiness period (5 s)
    [pod] = ic.api_pods("gated")
    assert not pod_ready(pod)
    try:
        get_json(f"http://{pod['status']['podIP']}:8080/readiness")
        raise AssertionError("/readiness answered 200 with no catalogue loaded")
    except urllib.error.HTTPError as exc:
        assert exc.code == 503
        assert json.loads(exc.read())["status"] == "not ready"
    status = ic.registries.get("gated")["status"]
    assert status["apiStatus"]["phase"] != "Ready" and not status["apiStatus"].get("endpoint")

    ic.registries.patch("gated", {"spec": {"source": {"git": {"path": "registry.json"}}}})
    obj = ic.registries.wait("gated", api_ready, timeout=120, what="API Ready after the fix")
    assert obj["status"]["syncStatus"]["revision"] == repo.resolve("main")
    assert obj["status"]["apiStatus"]["endpoint"] == f"http://gated-api.{ic.registry_ns}.svc:8080"
    assert all(pod_ready(p) for p in ic.api_pods("gated"))


CLIENT_SCRIPT = """
import json, socket, sys, urllib.request
endpoint = sys.argv[1] if len(sys.argv) > 1 else {endpoint!r}
out = {{}}
with urllib.request.urlopen(endpoint + "/v0.1/servers?limit=100", timeout=10) as r:
    out["v01"] = len(json.load(r)["servers"])
with urllib.request.urlopen(endpoint + "/api/v1/registry", timeout=10) as r:
    doc = json.load(r)
    out["toolhive"] = len(doc["servers"]) + len(doc.get("remote_servers") or {{}})
out["address"] = socket.gethostbyname(endpoint.split("//")[1].split(":")[0])
with open("/etc/resolv.conf") as f:
    out["resolv"] = f.read()
with open("/proc/net/route") as f:
    out["routes"] = [line.split()[1] for line in f.read().splitlines()[1:]]
try:
    socket.getaddrinfo("example.com", 443)
    out["outside_name"] = "resolved"
except socket.gaierror as exc:
    out["outside_name"] = "refused: " + str(exc)
print(json.dumps(out))
"""


def test_the_operator_pod_verifies_signed_commits_with_the_images_tools(
    ic: InCluster, tmp_path: Path
) -> None:
    # gpgv and ssh-keygen run inside the operator's pod (non-root, read-only root filesystem): an SSH
    # and an OpenPGP signer are trusted, a commit by each syncs, an unsigned one is refused.
    ssh, gpg = SshSigner.create(tmp_path / "ssh"), GpgSigner.create(tmp_path / "gpg")
    keys = {**ssh.trusted_keys(), **gpg.trusted_keys()}
    ic.kube.core.create_namespaced_secret(
        ic.registry_ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="signers"),
            data={key: base64.b64encode(value).decode() for key, value in keys.items()},
        ),
    )
    repo = ic.repo("signed")
    repo.commit({"registry.json": SNAPSHOT.read_bytes()})
    source = {"repository": ic.git.url(repo), "verify": {"secretRef": {"name": "signers"}}}
    ic.registries.create(
        "signed", {"source": {"type": "git", "git": source}, "syncPolicy": {"interval": "1h"}}
    )
    refused = ic.registries.wait(
        "signed",
        lambda s: any(c.get("reason") == "SourceVerificationFailed" for c in s.get("conditions", [])),
        timeout=90,
        what="the unsigned commit refused",
    )
    assert "is not signed" in refused["status"]["message"]
    for signer in (ssh, gpg):
        signed = sign_tip(repo, signer)
        ic.registries.trigger("signed")
        ic.registries.wait(
            "signed",
            lambda s, want=signed: (
                s.get("syncStatus", {}).get("revision") == want
                and s.get("syncStatus", {}).get("phase") == "Complete"
            ),
            timeout=90,
            what=f"the commit signed by {signer.fingerprint} synced",
        )


def test_client_in_another_namespace_reads_the_endpoint_by_dns(ic: InCluster, web: dict[str, Any]) -> None:
    endpoint = web["status"]["apiStatus"]["endpoint"]
    assert endpoint == f"http://web-api.{ic.registry_ns}.svc:8080"
    out = json.loads(
        ic.run_client("reader", CLIENT_SCRIPT.format(endpoint=endpoint)).strip().splitlines()[-1]
    )
    servers = web["status"]["syncStatus"]["serverCount"]
    assert out["v01"] == min(servers, 100) and out["toolhive"] == servers
    service = ic.kube.core.read_namespaced_service("web-api", ic.registry_ns)
    assert out["address"] == service.spec.cluster_ip  # the DNS name is the Service's ClusterIP
    # Cluster DNS only, and no way off the machine: no default route (00000000), outside names refused.
    assert f"nameserver {NODE_IP}" in out["resolv"]
    assert "00000000" not in out["routes"] and out["routes"], out["routes"]
    assert out["outside_name"].startswith("refused"), out["outside_name"]


def test_from_the_host_through_the_service(ic: InCluster, web: dict[str, Any]) -> None:
    service = ic.kube.core.read_namespaced_service("web-api", ic.registry_ns)
    base = f"http://{service.spec.cluster_ip}:8080"
    body = get_json(f"{base}/v0.1/servers?limit=5")
    assert len(body["servers"]) == 5 and body["metadata"]["nextCursor"]
    assert get_json(f"{base}/readiness")["status"] == "ready"


TOKEN_SCRIPT = """
import json, ssl, sys, urllib.error, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
token = open(sa + "/token").read()
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
def status(path):
    url = "https://kubernetes.default.svc" + path
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
print(json.dumps({name: status(path) for name, path in json.loads(sys.argv[1]).items()}))
"""


def test_api_pod_token_reads_its_data_and_nothing_else(ic: InCluster, web: dict[str, Any]) -> None:
    data = web["status"]["storageRef"]["configMaps"]
    ic.kube.core.create_namespaced_config_map(
        ic.registry_ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="not-yours"), data={"k": "v"})
    )
    ic.kube.core.create_namespaced_secret(
        ic.registry_ns,
        client.V1Secret(metadata=client.V1ObjectMeta(name="secret-stuff"), string_data={"k": "v"}),
    )
    ns = ic.registry_ns
    checks = {
        "data": f"/api/v1/namespaces/{ns}/configmaps/{data[0]}",
        "other_configmap": f"/api/v1/namespaces/{ns}/configmaps/not-yours",
        "secret": f"/api/v1/namespaces/{ns}/secrets/secret-stuff",
        "other_namespace": f"/api/v1/namespaces/{ic.client_ns}/configmaps/kube-root-ca.crt",
        "list_secrets": f"/api/v1/namespaces/{ns}/secrets",
    }
    pod = ic.api_pods("web", ready_only=True)[0]["metadata"]["name"]
    result = ic.kube.kubectl(
        "exec", "-n", ns, pod, "--", "python3", "-c", TOKEN_SCRIPT, json.dumps(checks)
    ).stdout
    statuses = json.loads(result.strip().splitlines()[-1])
    assert statuses == {
        "data": 200,
        "other_configmap": 403,
        "secret": 403,
        "other_namespace": 403,
        "list_secrets": 403,
    }


def test_pod_loss_is_reported_then_recovered_and_three_replicas_share_requests(
    ic: InCluster, web: dict[str, Any]
) -> None:
    victim = ic.api_pods("web", ready_only=True)[0]["metadata"]["name"]
    ic.kube.kubectl("delete", "pod", "-n", ic.registry_ns, victim, "--wait=false")

    def degraded_status() -> dict[str, Any] | None:
        status: dict[str, Any] = ic.registries.get("web").get("status") or {}
        return status if (status.get("apiStatus") or {}).get("readyReplicas", 2) < 2 else None

    degraded = wait_until(degraded_status, timeout=30, interval=0.1, what="fewer ready replicas reported")
    assert degraded["apiStatus"]["phase"] != "Ready" or degraded["apiStatus"]["readyReplicas"] < 2
    ic.registries.wait("web", lambda s: api_ready(s, 2), timeout=120, what="Ready again with 2 replicas")

    ic.registries.patch("web", {"spec": {"api": {"replicas": 3}}})
    ic.registries.wait("web", lambda s: api_ready(s, 3), timeout=120, what="3 replicas ready")
    wait_until(lambda: len(ic.api_pods("web", ready_only=True)) == 3, timeout=60, what="3 ready pods")
    service = ic.kube.core.read_namespaced_service("web-api", ic.registry_ns)
    marker = uuid.uuid4().hex
    # Wait until kube-proxy has all three endpoints, then spread fresh connections over them.
    wait_until(
        lambda: (
            len(
                [
                    e
                    for s in ic.kubectl_json(
                        "get",
                        "endpointslices",
                        "-n",
                        ic.registry_ns,
                        "-l",
                        "kubernetes.io/service-name=web-api",
                    )["items"]
                    for e in s.get("endpoints") or []
                    if (e.get("conditions") or {}).get("ready")
                ]
            )
            == 3
        ),
        timeout=60,
        what="3 ready endpoints",
    )
    time.sleep(2)
    for i in range(90):
        get_json(f"http://{service.spec.cluster_ip}:8080/v0.1/servers?limit=1&search={marker}{i}")
    time.sleep(2.5)  # the access log is flushed every second
    per_pod = {}
    for pod in ic.api_pods("web", ready_only=True):
        name = pod["metadata"]["name"]
        logs = ic.kube.kubectl("logs", "-n", ic.registry_ns, name).stdout
        per_pod[name] = logs.count(marker)
    assert sum(per_pod.values()) == 90, per_pod
    assert len(per_pod) == 3 and all(count > 0 for count in per_pod.values()), per_pod
    ic.registries.patch("web", {"spec": {"api": {"replicas": 2}}})
    ic.registries.wait("web", lambda s: api_ready(s, 2), timeout=120, what="back to 2 replicas")


POLL_SCRIPT = """
import json, sys, time, urllib.request
endpoint, wanted, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
ok = failed = 0
errors = []
first_seen = None
deadline = time.time() + seconds
while time.time() < deadline:
    try:
        with urllib.request.urlopen(endpoint + "/v0.1/servers?limit=100&search=" + wanted, timeout=5) as r:
            names = [s["server"]["name"] for s in json.load(r)["servers"]]
        ok += 1
        if first_seen is None and any(wanted in n for n in names):
            first_seen = time.time()
    except Exception as exc:
        failed += 1
        errors.append(f"{time.time():.3f} {type(exc).__name__}: {exc}"[:200])
    time.sleep(0.02)
print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:10], "first_seen": first_seen}))
"""


def test_catalogue_change_and_rollout_drop_no_request(ic: InCluster, web: dict[str, Any]) -> None:
    repo_url = web["spec"]["source"]["git"]["repository"]
    repo = BareRepo(path=ic.git_root / repo_url.rsplit("/", 1)[1], name=repo_url.rsplit("/", 1)[1])
    endpoint = web["status"]["apiStatus"]["endpoint"]
    catalogue = json.loads(SNAPSHOT.read_text())
    new_name = f"zz-new-{uuid.uuid4().hex[:6]}"
    template = next(iter(catalogue["servers"].values()))
    catalogue["servers"][new_name] = dict(template, description="added while clients poll")
    ic.start_client(
        "poller",
        POLL_SCRIPT.replace(
            "sys.argv[1], sys.argv[2], float(sys.argv[3])", f"{endpoint!r}, {new_name!r}, 50.0"
        ),
    )
    wait_until(lambda: ic.pod_phase("poller") == "Running", timeout=60, what="the poller running")
    time.sleep(3)
    # 1. A new commit and a manual sync: the new server must appear in-cluster.
    commit = repo.commit({"registry.json": json.dumps(catalogue)})
    triggered = time.time()
    ic.registries.trigger("web")
    ic.registries.wait("web", lambda s: (s.get("syncStatus") or {}).get("revision") == commit, timeout=30)
    # 2. A rollout of the API pods (a spec.api change), with clients still polling.
    ic.registries.patch("web", {"spec": {"api": {"resources": {"requests": {"cpu": "20m"}}}}})
    wait_until(
        lambda: (
            any(
                (c.get("resources") or {}).get("requests", {}).get("cpu") == "20m"
                for p in ic.api_pods("web", ready_only=True)
                for c in p["spec"]["containers"]
            )
            and len(ic.api_pods("web")) == 2
            and all(pod_ready(p) for p in ic.api_pods("web"))
        ),
        timeout=120,
        interval=0.5,
        what="the rollout to finish",
    )
    wait_until(
        lambda: ic.pod_phase("poller") in ("Succeeded", "Failed"), timeout=90, interval=1, what="poller done"
    )
    logs = ic.kube.kubectl("logs", "-n", ic.client_ns, "poller").stdout
    ic.kube.kubectl("delete", "pod", "-n", ic.client_ns, "poller", "--wait=false", check=False)
    result = json.loads(logs.strip().splitlines()[-1])
    assert result["failed"] == 0, result
    assert result["ok"] > 200, result
    assert result["first_seen"] is not None, result
    visible_after = result["first_seen"] - triggered
    print(f"new server visible in-cluster {visible_after:.2f}s after the sync trigger")
    assert visible_after < 15, visible_after


def test_s3_storage_read_by_api_pods_from_minio_on_the_pod_network(
    ic: InCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    minio = MinioServer.create(tmp_path_factory.mktemp("ic-minio"), host=NODE_IP)
    minio.start()
    try:
        bucket = "ic-" + uuid.uuid4().hex[:8]
        minio.create_bucket(bucket)
        ic.kube.core.create_namespaced_secret(
            ic.registry_ns,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="s3-creds"),
                string_data={
                    "AWS_ACCESS_KEY_ID": minio.access_key,
                    "AWS_SECRET_ACCESS_KEY": minio.secret_key,
                },
            ),
        )
        repo = ic.repo("s3")
        repo.commit({"registry.json": SNAPSHOT.read_bytes()})
        ic.registries.create(
            "objects",
            {
                "source": {"type": "git", "git": {"repository": ic.git.url(repo), "path": "registry.json"}},
                "storage": {
                    "type": "s3",
                    "s3": {
                        "bucket": bucket,
                        "endpoint": minio.endpoint,
                        "region": "us-east-1",
                        "forcePathStyle": True,
                        "credentialsSecretRef": {"name": "s3-creds"},
                    },
                },
            },
        )
        obj = ic.registries.wait("objects", api_ready, timeout=180, what="S3-backed API Ready")
        out = json.loads(
            ic.run_client("s3-reader", CLIENT_SCRIPT.format(endpoint=obj["status"]["apiStatus"]["endpoint"]))
            .strip()
            .splitlines()[-1]
        )
        assert out["toolhive"] == obj["status"]["syncStatus"]["serverCount"]
        ic.registries.delete("objects")
        wait_until(lambda: not ic.registries.exists("objects"), timeout=60, what="deletion (finalizer)")
    finally:
        minio.stop()
