"""The local control plane is the real thing: admission-time CEL validation, the status subresource,
watches, garbage collection by kube-controller-manager, RBAC and TokenRequest, and clean teardown."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from fixtures.kube import Kube, wait_until
from mcpreg_dev.binaries import KUBERNETES
from mcpreg_dev.controlplane import ControlPlane, cleanup_stale_runs, runs_dir

pytestmark = pytest.mark.integration

GROUP = "test.mcpregistry.dev"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                                "x-kubernetes-validations": [
                                    {"rule": "self.min <= self.max", "message": "min must not exceed max"}
                                ],
                            },
                            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widget_crd(kube: Kube) -> str:
    kube.apply(WIDGET_CRD)

    def established() -> bool:
        crd = kube.apiextensions.read_custom_resource_definition(f"widgets.{GROUP}")
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    wait_until(established, what="Widget CRD established")
    return "widgets"


def _widget(name: str, lo: int, hi: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"min": lo, "max": hi},
    }


def test_version_reports_the_pinned_kubernetes(control_plane: ControlPlane) -> None:
    assert control_plane.version()["gitVersion"] == KUBERNETES.version


def test_cel_rule_rejects_a_bad_object_at_admission(kube: Kube, namespace: str, widget_crd: str) -> None:
    kube.custom.create_namespaced_custom_object(GROUP, "v1", namespace, widget_crd, _widget("good", 1, 2))
    with pytest.raises(ApiException) as refused:
        kube.custom.create_namespaced_custom_object(GROUP, "v1", namespace, widget_crd, _widget("bad", 3, 2))
    assert refused.value.status == 422
    assert "min must not exceed max" in refused.value.body
    # kubectl users see the same message.
    result = kube.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(_widget("bad", 5, 1)), check=False
    )
    assert result.returncode != 0
    assert "min must not exceed max" in result.stderr


def test_status_subresource_ignores_status_in_main_resource_update(
    kube: Kube, namespace: str, widget_crd: str
) -> None:
    body = _widget("w", 1, 2) | {"status": {"phase": "FromCreate"}}
    created = kube.custom.create_namespaced_custom_object(GROUP, "v1", namespace, widget_crd, body)
    assert "status" not in created  # status on create is dropped too
    created["status"] = {"phase": "Sneaky"}
    created["spec"]["max"] = 9
    updated = kube.custom.replace_namespaced_custom_object(GROUP, "v1", namespace, widget_crd, "w", created)
    assert updated["spec"]["max"] == 9
    assert "status" not in updated
    patched = kube.custom.patch_namespaced_custom_object_status(
        GROUP, "v1", namespace, widget_crd, "w", {"status": {"phase": "Real"}}
    )
    assert patched["status"] == {"phase": "Real"}
    assert patched["metadata"]["generation"] == updated["metadata"]["generation"]  # status does not bump it


def test_watch_sees_added_modified_deleted(kube: Kube, namespace: str) -> None:
    events: list[tuple[str, str]] = []
    seen_delete = threading.Event()
    ready = threading.Event()

    def watcher() -> None:
        w = watch.Watch()
        ready.set()
        for event in w.stream(kube.core.list_namespaced_config_map, namespace, timeout_seconds=30):
            events.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                seen_delete.set()
                w.stop()

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    ready.wait(5)
    # The watch starts from "now"; give its request a moment to reach the apiserver.
    wait_until(lambda: thread.is_alive(), what="watch thread running")
    time.sleep(0.5)
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"), data={"a": "1"})
    kube.core.create_namespaced_config_map(namespace, cm)
    kube.core.patch_namespaced_config_map("watched", namespace, {"data": {"a": "2"}})
    kube.core.delete_namespaced_config_map("watched", namespace)
    assert seen_delete.wait(20), f"no DELETED event; saw {events}"
    assert [t for t, n in events if n == "watched"] == ["ADDED", "MODIFIED", "DELETED"]


def test_garbage_collector_deletes_owned_configmap(kube: Kube, namespace: str) -> None:
    owner = kube.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, block_owner_deletion=True
    )
    kube.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owned", owner_references=[reference])),
    )
    kube.core.delete_namespaced_config_map("owner", namespace)

    def owned_gone() -> bool:
        try:
            kube.core.read_namespaced_config_map("owned", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_until(owned_gone, timeout=60, what="garbage collection of the owned ConfigMap")


def test_restricted_identity_is_limited_by_rbac(kube: Kube, namespace: str, tmp_path: Path) -> None:
    kube.rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="cm-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
        ),
    )
    kube.rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="cm-reader"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="cm-reader"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
        ),
    )
    kube.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="visible"), data={"k": "v"})
    )
    kubeconfig = kube.service_account_kubeconfig(namespace, "reader", tmp_path / "reader.kubeconfig")
    restricted = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))

    assert restricted.read_namespaced_config_map("visible", namespace).data == {"k": "v"}
    assert [c.metadata.name for c in restricted.list_namespaced_config_map(namespace).items].count(
        "visible"
    ) == 1
    for forbidden in (
        lambda: restricted.list_namespaced_secret(namespace),
        lambda: restricted.list_namespaced_config_map("default"),
        lambda: restricted.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="nope"))
        ),
    ):
        with pytest.raises(ApiException) as denied:
            forbidden()
        assert denied.value.status == 403
    whoami = kube.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig)
    assert (
        json.loads(whoami.stdout)["status"]["userInfo"]["username"]
        == f"system:serviceaccount:{namespace}:reader"
    )


def test_kubectl_create_token(kube: Kube, namespace: str) -> None:
    kube.core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata={"name": "tok"}))
    token = kube.kubectl("create", "token", "tok", "-n", namespace).stdout.strip()
    assert token.count(".") == 2  # a signed JWT
    review = client.AuthenticationV1Api(kube.api_client).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    assert review.status.authenticated
    assert review.status.user.username == f"system:serviceaccount:{namespace}:tok"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_stop_leaves_no_processes_ports_or_files() -> None:
    cp = ControlPlane.create(with_controller_manager=False)
    cp.start()
    pids = [p.pid for p in cp.processes.values()]
    ports = [cp.etcd_port, cp.apiserver_port]
    assert cp.state_dir.is_dir()
    cp.stop()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert all(_port_free(p) for p in ports)
    assert not cp.state_dir.exists()


def test_leftovers_of_a_crashed_run_are_cleaned(tmp_path: Path) -> None:
    # A run whose owner died: a real process still running with the state dir in its command line.
    state_dir = runs_dir() / "cp-crashed-test"
    state_dir.mkdir(parents=True, exist_ok=True)
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", str(state_dir)], start_new_session=True
    )
    dead_owner = subprocess.Popen(["true"])
    dead_owner.wait()
    (state_dir / "state.json").write_text(
        json.dumps({"owner_pid": dead_owner.pid, "pids": {"etcd": orphan.pid}})
    )
    removed = cleanup_stale_runs()
    assert state_dir in removed
    assert orphan.wait(timeout=15) is not None
    assert not state_dir.exists()


def test_runs_of_a_live_owner_are_left_alone() -> None:
    state_dir = runs_dir() / "cp-alive-test"
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        (state_dir / "state.json").write_text(json.dumps({"owner_pid": os.getpid(), "pids": {}}))
        assert state_dir not in cleanup_stale_runs()
        assert state_dir.is_dir()
    finally:
        (state_dir / "state.json").unlink()
        state_dir.rmdir()
