"""The fault-injection suite: real faults against a running operator, each followed by the same
invariants (issue 12).

Every test runs an operator of its own, watching one `f-*` namespace, whose connection to the API
server goes through a real HTTP fault proxy (`mcpreg_dev.httpfault`) and whose git traffic can go
through Toxiproxy (`mcpreg_dev.faultproxy`). After each fault ends:
- status converges to the truth within CONVERGE_S (the time is printed: `FAULT <kind>: …`);
- storage holds exactly the last successful sync (the head ConfigMap's hash is status's);
- during the fault the last good catalogue stays stored, and status never claims data it lacks;
- every owned object is owned by its registry, and the operator process is alive and logged no
  traceback.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fixtures.faults import FaultProxyFactory
from fixtures.kube import Kube, fresh_namespace, wait_until
from fixtures.operator import OperatorProcess, Registries
from integration.test_chart import EXPECTED_RULES
from integration.test_operator_s3 import put_secret, s3_storage
from integration.test_operator_sync import SNAPSHOTS, expected_count, git_spec, is_ready_with
from mcpreg.storage.configmap_layout import parse_head_annotations
from mcpreg_dev.controlplane import ControlPlane
from mcpreg_dev.faultproxy import Proxy, Stream, ToxiproxyAPI
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer
from mcpreg_dev.httpfault import HTTPFaultProxy
from mcpreg_dev.minio import MinioServer
from mcpreg_dev.node import NODE_IP
from mcpreg_dev.samples import replicated_toolhive

pytestmark = pytest.mark.integration

CONVERGE_S = 30.0
FAULT_S = 8.0  # how long each fault lasts
GIT_TIMEOUT_S = 6  # the faulty operator's git limit: "slow" means slower than this
S3_TIMEOUT_S = 3  # and its S3 read limit (per attempt, of 4)


def converged_in(
    registries: Registries, name: str, predicate: Callable[[dict[str, Any]], bool], kind: str
) -> float:
    started = time.monotonic()
    registries.wait(name, predicate, timeout=CONVERGE_S, what=f"converged after {kind}")
    elapsed = time.monotonic() - started
    print(f"FAULT {kind}: converged {elapsed:.1f} s after the fault ended")
    return elapsed


def stored_hash(kube: Kube, namespace: str, name: str) -> str | None:
    try:
        head = kube.core.read_namespaced_config_map(f"{name}-data", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return parse_head_annotations(kube.core.api_client.sanitize_for_serialization(head)).content_hash


def check_invariants(kube: Kube, registries: Registries, name: str, operator: OperatorProcess) -> None:
    obj = registries.get(name)
    status = obj["status"]
    assert stored_hash(kube, registries.namespace, name) == status["syncStatus"]["lastSyncHash"]
    owned = kube.core.list_namespaced_config_map(
        registries.namespace, label_selector=f"app.kubernetes.io/instance={name}"
    ).items
    for cm in owned:
        assert [r.uid for r in cm.metadata.owner_references or []] == [obj["metadata"]["uid"]], (
            cm.metadata.name
        )
    assert operator_alive_without_traceback(operator)


def operator_alive_without_traceback(operator: OperatorProcess) -> bool:
    assert operator.process is not None and operator.process.poll() is None, "the operator died"
    assert "Traceback" not in operator.log_text(), operator.log_text()[-3000:]
    return True


@pytest.fixture
def fault_namespace(kube: Kube) -> Iterator[str]:
    with fresh_namespace(kube, "f-") as name:
        yield name


@pytest.fixture
def api_proxy(kube: Kube, control_plane: ControlPlane, tmp_path: Path) -> Iterator[HTTPFaultProxy]:
    assert control_plane.pki is not None
    proxy = HTTPFaultProxy.for_kubeconfig(kube.kubeconfig, control_plane.pki, tmp_path / "httpfault")
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def start_operator(kubeconfig: Path, namespace: str, log: Path, image: str) -> OperatorProcess:
    proc = OperatorProcess(
        kubeconfig=kubeconfig,
        log_path=log,
        extra_env={
            "MCPREG_API_IMAGE": image,
            "MCPREG_GIT_TIMEOUT_SECONDS": str(GIT_TIMEOUT_S),
            "MCPREG_S3_TIMEOUT_SECONDS": str(S3_TIMEOUT_S),
        },
        extra_args=["--namespace", namespace],
    )
    proc.start()
    return proc


@pytest.fixture
def faulty_operator(
    crd: str, api_proxy: HTTPFaultProxy, fault_namespace: str, tmp_path: Path, product_image: str
) -> Iterator[OperatorProcess]:
    kubeconfig = api_proxy.write_kubeconfig(tmp_path / "operator.kubeconfig")
    proc = start_operator(kubeconfig, fault_namespace, tmp_path / "operator.log", product_image)
    yield proc
    proc.stop()


@pytest.fixture
def fregistries(kube: Kube, fault_namespace: str, faulty_operator: OperatorProcess) -> Registries:
    return Registries(kube=kube, namespace=fault_namespace)


def end_toxics(proxy: Proxy) -> None:
    """Remove the proxy's toxics and let traffic through again. Disabled first, and with a patient
    client: Toxiproxy removes a toxic only after the connections it holds gave up writing (5 s each)."""
    proxy.disable()
    Proxy(ToxiproxyAPI(proxy.api.base_url, timeout=60.0), proxy.name, proxy.listen).clear_toxics()
    proxy.enable()


def catalogue(count: int) -> bytes:
    return json.dumps(replicated_toolhive(json.loads(SNAPSHOTS[-1].read_bytes()), count)).encode()


def served(kube: Kube, spec: dict[str, Any]) -> dict[str, Any]:
    """On a real node, two API replicas (polled during the fault by `polled`); elsewhere no API."""
    return {**spec, "api": {"replicas": 2}} if kube.real_node else no_api(spec)


@contextmanager
def polled(kube: Kube, registries: Registries, name: str, image: str) -> Iterator[None]:
    """On a real node: once `name`'s two API replicas are Ready, an in-cluster client polls them for
    the duration of the block, and not one of its requests may fail. Elsewhere: nothing."""
    if not kube.real_node:
        yield
        return
    obj = registries.wait(
        name,
        lambda s: (
            (s.get("apiStatus") or {}).get("phase") == "Ready" and s["apiStatus"].get("readyReplicas") == 2
        ),
        timeout=180,
        what="API Ready with 2 replicas",
    )
    pod = f"poller-{name}"
    script = POLLER.format(endpoint=obj["status"]["apiStatus"]["endpoint"], seconds=900)
    kube.apply(poller_pod(registries.namespace, image, script, pod))
    try:
        wait_until(
            lambda: poll_counts(kube, registries.namespace, pod)["ok"] > 20, timeout=60, what="polling"
        )
        yield
        time.sleep(2)
        counts = poll_counts(kube, registries.namespace, pod)
        assert counts["failed"] == 0, counts
        print(f"FAULT {name}: the in-cluster client got {counts['ok']} answers, none failed")
    finally:
        kube.kubectl("delete", "pod", "-n", registries.namespace, pod, "--wait=false", check=False)


def no_api(spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "api": {"enabled": False}}


# --- the API server misbehaving ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "429", "reset"])
def test_api_server_errors_between_operator_and_api_server(
    kind: str,
    fregistries: Registries,
    kube: Kube,
    api_proxy: HTTPFaultProxy,
    faulty_operator: OperatorProcess,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
) -> None:
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    fregistries.create("apifault", no_api(git_spec(git_daemon.url(bare_repo))))
    good = fregistries.wait("apifault", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)["status"]
    bare_repo.commit({"registry.json": SNAPSHOTS[-1].read_bytes()})
    if kind == "500":
        api_proxy.fail(500, times=None, percent=60, watch=False, message="etcdserver: request timed out")
    elif kind == "429":
        api_proxy.fail(429, times=None, watch=False, retry_after=1)
    else:
        api_proxy.reset_connections(times=None, percent=60)
        api_proxy.drop_connections()  # the watches too
    fregistries.trigger("apifault")
    deadline = time.monotonic() + FAULT_S
    while time.monotonic() < deadline:
        # Storage only ever holds a complete generation: the old one or the new one.
        assert stored_hash(kube, fregistries.namespace, "apifault") is not None
        time.sleep(0.5)
    api_proxy.clear()
    fregistries.trigger("apifault")
    converged_in(fregistries, "apifault", is_ready_with(expected_count(SNAPSHOTS[-1])), f"apiserver-{kind}")
    check_invariants(kube, fregistries, "apifault", faulty_operator)
    assert (
        fregistries.get("apifault")["status"]["syncStatus"]["lastSyncHash"]
        != good["syncStatus"]["lastSyncHash"]
    )


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_control_plane_restarted_under_a_running_operator(
    component: str,
    fregistries: Registries,
    kube: Kube,
    control_plane: ControlPlane,
    faulty_operator: OperatorProcess,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
) -> None:
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    fregistries.create("restart", no_api(git_spec(git_daemon.url(bare_repo))))
    fregistries.wait("restart", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    bare_repo.commit({"registry.json": SNAPSHOTS[-1].read_bytes()})
    fregistries.trigger("restart")
    control_plane.restart(component, down_seconds=5)
    fregistries.trigger("restart")
    converged_in(fregistries, "restart", is_ready_with(expected_count(SNAPSHOTS[-1])), f"{component}-restart")
    check_invariants(kube, fregistries, "restart", faulty_operator)


# --- git misbehaving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["down", "slow", "cut", "reset"])
def test_git_down_slow_or_cut_mid_transfer(
    kind: str,
    fregistries: Registries,
    kube: Kube,
    faulty_operator: OperatorProcess,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    fault_proxy: FaultProxyFactory,
) -> None:
    proxy = fault_proxy(f"127.0.0.1:{git_daemon.port}")
    url = git_daemon.url(bare_repo).replace(f"127.0.0.1:{git_daemon.port}", proxy.listen)
    bare_repo.commit({"registry.json": catalogue(3000)})
    fregistries.create("gitfault", no_api(git_spec(url)))
    good = fregistries.wait("gitfault", is_ready_with(3000), timeout=60)["status"]
    bare_repo.commit({"registry.json": catalogue(3001)})
    if kind == "down":
        proxy.disable()
    elif kind == "slow":
        # ~500 bytes/s in small slices: the pack takes minutes, beyond the git timeout. (A latency
        # toxic would do too, but Toxiproxy removes one only after the delayed data has drained.)
        proxy.slicer(10, 0, 20_000)
    elif kind == "cut":
        proxy.limit_data(64 * 1024)  # the pack is far larger: cut mid-transfer
    else:
        proxy.reset_peer()  # every connection reset (TCP RST)
    fregistries.trigger("gitfault")
    failed = fregistries.wait(
        "gitfault", lambda s: s.get("phase") == "Failed", timeout=GIT_TIMEOUT_S * 4, what="failed"
    )["status"]
    assert failed["syncStatus"]["lastSyncHash"] == good["syncStatus"]["lastSyncHash"]
    assert stored_hash(kube, fregistries.namespace, "gitfault") == good["syncStatus"]["lastSyncHash"]
    assert "still serving the last good catalogue" in failed["message"]
    synced = next(c for c in failed["conditions"] if c["type"] == "Synced")
    assert synced["reason"] == "SourceUnreachable", synced
    end_toxics(proxy)
    fregistries.trigger("gitfault")
    converged_in(fregistries, "gitfault", is_ready_with(3001), f"git-{kind}")
    check_invariants(kube, fregistries, "gitfault", faulty_operator)


# --- Kubernetes refusing the operator ------------------------------------------------------------------


def test_a_resource_quota_leaves_no_room_for_the_data_configmaps(
    fregistries: Registries,
    kube: Kube,
    faulty_operator: OperatorProcess,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    product_image: str,
) -> None:
    namespace = fregistries.namespace
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    fregistries.create("quota", served(kube, git_spec(git_daemon.url(bare_repo))))
    good = fregistries.wait("quota", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=180)["status"]
    with polled(kube, fregistries, "quota", product_image):
        existing = len(kube.core.list_namespaced_config_map(namespace).items)
        kube.core.create_namespaced_resource_quota(
            namespace,
            client.V1ResourceQuota(
                metadata=client.V1ObjectMeta(name="no-room"),
                spec=client.V1ResourceQuotaSpec(hard={"count/configmaps": str(existing)}),
            ),
        )
        wait_until(
            lambda: kube.core.read_namespaced_resource_quota("no-room", namespace).status.hard or None,
            timeout=30,
            what="quota observed",
        )
        # Large enough to be split over several ConfigMaps: the new parts need room the quota denies.
        bare_repo.commit({"registry.json": catalogue(6000)})
        fregistries.trigger("quota")
        failed = fregistries.wait("quota", lambda s: s.get("phase") == "Failed", timeout=60, what="failed")[
            "status"
        ]
        synced = next(c for c in failed["conditions"] if c["type"] == "Synced")
        assert synced["reason"] == "KubernetesForbidden" and "quota" in synced["message"], synced
        assert stored_hash(kube, namespace, "quota") == good["syncStatus"]["lastSyncHash"]
        kube.core.delete_namespaced_resource_quota("no-room", namespace)
        fregistries.trigger("quota")
        converged_in(fregistries, "quota", is_ready_with(6000), "resource-quota")
    check_invariants(kube, fregistries, "quota", faulty_operator)


def _grant(kube: Kube, namespace: str, name: str) -> None:
    rules = [
        client.V1PolicyRule(api_groups=[group], resources=[resource], verbs=sorted(verbs))
        for (group, resource), verbs in EXPECTED_RULES.items()
    ]
    kube.rbac.create_namespaced_role(
        namespace, client.V1Role(metadata=client.V1ObjectMeta(name=name), rules=rules)
    )
    kube.rbac.create_namespaced_role_binding(namespace, _binding(namespace, name))


def _binding(namespace: str, name: str) -> client.V1RoleBinding:
    return client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=name),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=namespace)],
    )


def test_rbac_revoked_while_running(
    kube: Kube,
    crd: str,
    fault_namespace: str,
    tmp_path: Path,
    product_image: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
) -> None:
    """The operator runs as a ServiceAccount with the chart's namespaced rules; its RoleBinding is
    deleted while it runs, then restored."""
    namespace = fault_namespace
    kubeconfig = kube.service_account_kubeconfig(namespace, "operator", tmp_path / "operator.kubeconfig")
    discovery = f"{namespace}-discovery"
    kube.rbac.create_cluster_role(
        client.V1ClusterRole(
            metadata=client.V1ObjectMeta(name=discovery),
            rules=[
                client.V1PolicyRule(
                    api_groups=["apiextensions.k8s.io"],
                    resources=["customresourcedefinitions"],
                    verbs=["list", "watch"],
                )
            ],
        )
    )
    kube.rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=discovery),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=discovery
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="operator", namespace=namespace)],
        )
    )
    _grant(kube, namespace, "operator")
    operator = start_operator(kubeconfig, namespace, tmp_path / "operator.log", product_image)
    registries = Registries(kube=kube, namespace=namespace)
    try:
        bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
        registries.create("revoked", served(kube, git_spec(git_daemon.url(bare_repo))))
        good = registries.wait("revoked", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=180)["status"]
        with polled(kube, registries, "revoked", product_image):
            kube.rbac.delete_namespaced_role_binding("operator", namespace)
            bare_repo.commit({"registry.json": SNAPSHOTS[-1].read_bytes()})
            registries.trigger("revoked")
            time.sleep(FAULT_S)
            assert stored_hash(kube, namespace, "revoked") == good["syncStatus"]["lastSyncHash"]
            assert operator.process is not None and operator.process.poll() is None
            kube.rbac.create_namespaced_role_binding(namespace, _binding(namespace, "operator"))
            registries.trigger("revoked")
            converged_in(registries, "revoked", is_ready_with(expected_count(SNAPSHOTS[-1])), "rbac-revoked")
        check_invariants(kube, registries, "revoked", operator)
    finally:
        operator.stop()
        kube.rbac.delete_cluster_role_binding(discovery)
        kube.rbac.delete_cluster_role(discovery)


# --- hands on the registry's objects -------------------------------------------------------------------


def test_source_configmap_deleted_then_restored(
    fregistries: Registries, kube: Kube, faulty_operator: OperatorProcess, product_image: str
) -> None:
    namespace = fregistries.namespace

    def source(data: bytes) -> client.V1ConfigMap:
        return client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="catalogue"), data={"registry.json": data.decode()}
        )

    kube.core.create_namespaced_config_map(namespace, source(SNAPSHOTS[0].read_bytes()))
    spec = {"source": {"type": "configmap", "configMap": {"name": "catalogue", "key": "registry.json"}}}
    fregistries.create("cmsource", served(kube, spec))
    good = fregistries.wait("cmsource", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=180)["status"]
    with polled(kube, fregistries, "cmsource", product_image):
        kube.core.delete_namespaced_config_map("catalogue", namespace)
        failed = fregistries.wait("cmsource", lambda s: s.get("phase") == "Failed", timeout=CONVERGE_S)[
            "status"
        ]
        assert (
            next(c for c in failed["conditions"] if c["type"] == "SourceAvailable")["reason"]
            == "SourceNotFound"
        )
        assert stored_hash(kube, namespace, "cmsource") == good["syncStatus"]["lastSyncHash"]
        kube.core.create_namespaced_config_map(namespace, source(SNAPSHOTS[-1].read_bytes()))
        # No trigger: the source ConfigMap's own event brings the sync.
        converged_in(
            fregistries, "cmsource", is_ready_with(expected_count(SNAPSHOTS[-1])), "source-configmap-deleted"
        )
    check_invariants(kube, fregistries, "cmsource", faulty_operator)


def test_data_configmaps_edited_or_deleted_by_hand_are_repaired(
    fregistries: Registries,
    kube: Kube,
    faulty_operator: OperatorProcess,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
) -> None:
    namespace = fregistries.namespace
    bare_repo.commit({"registry.json": catalogue(6000)})
    fregistries.create("hands", no_api(git_spec(git_daemon.url(bare_repo))))
    status = fregistries.wait("hands", is_ready_with(6000), timeout=120)["status"]
    parts = status["storageRef"]["configMaps"][1:]
    assert parts, "the catalogue must be split for this test"
    kube.core.delete_namespaced_config_map(parts[0], namespace)
    wait_until(
        lambda: parts[0] in [c.metadata.name for c in kube.core.list_namespaced_config_map(namespace).items],
        timeout=CONVERGE_S,
        what="deleted part restored",
    )
    print("FAULT data-part-deleted: restored")

    def edit_head() -> bool:
        head = kube.core.read_namespaced_config_map("hands-data", namespace)
        head.metadata.annotations["mcpregistry.dev/content-hash"] = "sha256:" + "0" * 64
        try:
            kube.core.replace_namespaced_config_map("hands-data", namespace, head)
        except ApiException as exc:
            if exc.status == 409:  # the operator was still repairing the part: edit the newer head
                return False
            raise
        return True

    wait_until(edit_head, timeout=CONVERGE_S, what="the head edited by hand")
    wait_until(
        lambda: stored_hash(kube, namespace, "hands") == status["syncStatus"]["lastSyncHash"],
        timeout=CONVERGE_S,
        what="edited head repaired",
    )
    print("FAULT data-head-edited: repaired")
    check_invariants(kube, fregistries, "hands", faulty_operator)


def test_registries_created_and_deleted_in_a_loop_while_syncing(
    fregistries: Registries,
    kube: Kube,
    faulty_operator: OperatorProcess,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    product_image: str,
) -> None:
    namespace = fregistries.namespace
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    spec = no_api(git_spec(git_daemon.url(bare_repo)))
    # A registry of the same namespace keeps serving (and is polled, on a real node) meanwhile.
    fregistries.create("watched", served(kube, git_spec(git_daemon.url(bare_repo))))
    rng = random.Random(12)
    live: list[str] = []
    with polled(kube, fregistries, "watched", product_image):
        for index in range(100):
            name = f"loop-{index}"
            fregistries.create(name, spec)
            live.append(name)
            if len(live) > 5 or rng.random() < 0.5:
                victim = live.pop(rng.randrange(len(live)))
                fregistries.delete(victim)
            time.sleep(rng.uniform(0.0, 0.2))
        for name in live:
            fregistries.wait(name, is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
            check_invariants(kube, fregistries, name, faulty_operator)
            fregistries.delete(name)
    check_invariants(kube, fregistries, "watched", faulty_operator)
    fregistries.delete("watched")

    def gone() -> bool:
        left = kube.custom.list_namespaced_custom_object(
            "mcpregistry.dev", "v1alpha1", namespace, "mcpregistries"
        )
        maps = kube.core.list_namespaced_config_map(
            namespace, label_selector="app.kubernetes.io/managed-by=mcp-registry-operator"
        )
        return not left["items"] and not maps.items

    wait_until(gone, timeout=60, what="every registry and its ConfigMaps gone")
    assert faulty_operator.process is not None and faulty_operator.process.poll() is None
    assert "Traceback" not in faulty_operator.log_text()


# --- the registry API keeps serving through the faults (real node) --------------------------------------

POLLER = """
import json, time, urllib.request
endpoint, seconds = {endpoint!r}, {seconds}
ok = failed = 0
errors = []
deadline, last = time.time() + seconds, 0.0
while time.time() < deadline:
    try:
        with urllib.request.urlopen(endpoint + "/v0.1/servers?limit=1", timeout=5) as response:
            json.load(response)
        ok += 1
    except Exception as exc:
        failed += 1
        errors.append(f"{{time.time():.3f}} {{type(exc).__name__}}: {{exc}}"[:200])
    if time.time() - last >= 1:
        print(json.dumps({{"ok": ok, "failed": failed, "errors": errors[-5:]}}), flush=True)
        last = time.time()
    time.sleep(0.02)
print(json.dumps({{"ok": ok, "failed": failed, "errors": errors[-10:], "done": True}}), flush=True)
"""


def poller_pod(namespace: str, image: str, script: str, name: str = "poller") -> dict[str, Any]:
    restricted = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
            "containers": [
                {
                    "name": "poller",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-u", "-c", script],
                    "securityContext": restricted,
                }
            ],
        },
    }


def poll_counts(kube: Kube, namespace: str, name: str = "poller") -> dict[str, Any]:
    """The poller's latest cumulative counts (zeros until its container has started)."""
    result = kube.kubectl("logs", "-n", namespace, name, check=False)
    lines = result.stdout.strip().splitlines() if result.returncode == 0 else []
    return dict(json.loads(lines[-1])) if lines else {"ok": 0, "failed": 0, "errors": []}


def api_ready(replicas: int, count: int) -> Callable[[dict[str, Any]], bool]:
    ready_with = is_ready_with(count)

    def check(status: dict[str, Any]) -> bool:
        api = status.get("apiStatus") or {}
        return ready_with(status) and api.get("phase") == "Ready" and api.get("readyReplicas") == replicas

    return check


def test_the_api_keeps_serving_through_the_faults(
    fregistries: Registries,
    kube: Kube,
    control_plane: ControlPlane,
    api_proxy: HTTPFaultProxy,
    faulty_operator: OperatorProcess,
    product_image: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    fault_proxy: FaultProxyFactory,
) -> None:
    """Two API replicas on the real node and an in-cluster client polling them, while the operator
    side suffers one fault after another: not one request may fail, and status converges after each."""
    if not kube.real_node:
        if os.environ.get("MCPREG_NODE") == "real":
            pytest.fail("MCPREG_NODE=real but the session's cluster has no real node")
        pytest.skip("needs API pods on a real node (see the `node:` line of the test header)")
    namespace = fregistries.namespace
    git = fault_proxy(f"127.0.0.1:{git_daemon.port}")
    url = git_daemon.url(bare_repo).replace(f"127.0.0.1:{git_daemon.port}", git.listen)
    count = 3000
    bare_repo.commit({"registry.json": catalogue(count)})
    fregistries.create("served", {**git_spec(url), "api": {"replicas": 2}})
    obj = fregistries.wait("served", api_ready(2, count), timeout=180, what="API Ready with 2 replicas")
    endpoint = obj["status"]["apiStatus"]["endpoint"]
    kube.apply(poller_pod(namespace, product_image, POLLER.format(endpoint=endpoint, seconds=900)))
    wait_until(lambda: poll_counts(kube, namespace)["ok"] > 20, timeout=60, what="the poller polling")

    def new_catalogue() -> int:
        nonlocal count
        count += 1
        bare_repo.commit({"registry.json": catalogue(count)})
        return count

    def after(kind: str, *, trigger: bool = True) -> None:
        if trigger:
            fregistries.trigger("served")
        converged_in(fregistries, "served", api_ready(2, count), kind)
        time.sleep(2)  # the API pods reload the new catalogue
        counts = poll_counts(kube, namespace)
        assert counts["failed"] == 0, (kind, counts)
        print(f"FAULT {kind}: {counts['ok']} requests answered so far, none failed")

    try:
        new_catalogue()
        api_proxy.fail(500, times=None, percent=60, watch=False)
        fregistries.trigger("served")
        time.sleep(FAULT_S)
        api_proxy.clear()
        after("served/apiserver-500")

        new_catalogue()
        api_proxy.fail(429, times=None, watch=False, retry_after=1)
        fregistries.trigger("served")
        time.sleep(FAULT_S)
        api_proxy.clear()
        after("served/apiserver-429")

        new_catalogue()
        api_proxy.reset_connections(times=None, percent=60)
        api_proxy.drop_connections()
        fregistries.trigger("served")
        time.sleep(FAULT_S)
        api_proxy.clear()
        after("served/apiserver-reset")

        new_catalogue()
        fregistries.trigger("served")
        control_plane.restart("kube-apiserver", down_seconds=5)
        after("served/kube-apiserver-restart")

        new_catalogue()
        control_plane.restart("etcd", down_seconds=5)
        after("served/etcd-restart")

        for kind, start in (
            ("down", git.disable),
            ("slow", lambda: git.slicer(10, 0, 20_000)),
            ("cut", lambda: git.limit_data(64 * 1024)),
        ):
            new_catalogue()
            start()
            fregistries.trigger("served")
            fregistries.wait("served", lambda s: s.get("phase") == "Failed", timeout=GIT_TIMEOUT_S * 4)
            end_toxics(git)
            after(f"served/git-{kind}")

        # Other registries of the namespace created and deleted in a loop meanwhile.
        for index in range(30):
            fregistries.create(f"churn-{index}", no_api(git_spec(git_daemon.url(bare_repo))))
            if index >= 3:
                fregistries.delete(f"churn-{index - 3}")
        for index in range(27, 30):
            fregistries.delete(f"churn-{index}")
        after("served/registries-churn")

        kube.core.delete_namespaced_config_map("served-data", namespace)
        after("served/data-head-deleted", trigger=False)

        new_catalogue()
        fregistries.trigger("served")
        pods = kube.core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/instance=served")
        kube.core.delete_namespaced_pod(pods.items[0].metadata.name, namespace)  # during the reload
        after("served/api-pod-deleted-during-reload", trigger=False)

        assert control_plane.node is not None
        new_catalogue()
        control_plane.node.restart_kubelet(down_seconds=5)
        after("served/kubelet-restart")

        for _ in range(3):
            new_catalogue()
            fregistries.trigger("served")
            time.sleep(random.uniform(0.0, 1.5))
            faulty_operator.kill()
            faulty_operator.start()
        after("served/operator-sigkill")
        counts = poll_counts(kube, namespace)
        assert counts["failed"] == 0 and counts["ok"] > 500, counts
        check_invariants(kube, fregistries, "served", faulty_operator)
    finally:
        kube.kubectl("delete", "pod", "-n", namespace, "poller", "--wait=false", check=False)


# --- MinIO misbehaving -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["down", "slow", "cut", "reset"])
def test_minio_down_slow_cut_or_reset(
    kind: str,
    fregistries: Registries,
    kube: Kube,
    faulty_operator: OperatorProcess,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    fault_proxy: FaultProxyFactory,
    minio: MinioServer,
    bucket: str,
    product_image: str,
) -> None:
    namespace = fregistries.namespace
    # On a real node the API pods read the bucket too, through the same proxy: it listens on the bridge.
    proxy = fault_proxy(
        f"{minio.host}:{minio.port}", listen=f"{NODE_IP if kube.real_node else '127.0.0.1'}:0"
    )
    put_secret(kube, namespace, minio.access_key, minio.secret_key)
    storage = s3_storage(minio, bucket)
    storage["s3"]["endpoint"] = f"http://{proxy.listen}"
    bare_repo.commit({"registry.json": catalogue(2000)})
    fregistries.create("s3fault", served(kube, {**git_spec(git_daemon.url(bare_repo)), "storage": storage}))
    good = fregistries.wait("s3fault", is_ready_with(2000), timeout=180)["status"]
    with polled(kube, fregistries, "s3fault", product_image):
        [pointer_key] = [k for k in minio.keys(bucket) if k.endswith("/current.json")]

        def pointer() -> bytes:
            return bytes(minio.client().get_object(Bucket=bucket, Key=pointer_key)["Body"].read())

        before = pointer()
        bare_repo.commit({"registry.json": catalogue(2001)})
        if kind == "down":
            proxy.disable()
        elif kind == "slow":
            proxy.timeout(0)  # nothing answers any more: beyond the operator's S3 read timeout
        elif kind == "cut":
            proxy.limit_data(32 * 1024, stream=Stream.UPSTREAM)  # the upload is far larger: cut mid-way
        else:
            proxy.reset_peer()
        fregistries.trigger("s3fault")
        failed = fregistries.wait("s3fault", lambda s: s.get("phase") == "Failed", timeout=90)["status"]
        assert failed["syncStatus"]["lastSyncHash"] == good["syncStatus"]["lastSyncHash"]
        assert "still serving the last good catalogue" in failed["message"]
        # The pointer to the current generation is untouched: readers still get the last good one.
        assert pointer() == before
        end_toxics(proxy)
        fregistries.trigger("s3fault")
        converged_in(fregistries, "s3fault", is_ready_with(2001), f"minio-{kind}")
    assert operator_alive_without_traceback(faulty_operator)
