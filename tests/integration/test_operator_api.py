"""The operator runs each registry's API: owned ServiceAccount, Role, RoleBinding, configuration
ConfigMap, Deployment and Service; drift restored; honest apiStatus driven by the real Deployment status
(pods made Ready by kube-scheduler + kwok on a fake node); the API process with the Deployment's
arguments and configuration document and the API pod's own ServiceAccount token serves the catalogue and
is refused everything else."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from fixtures.kube import Kube, wait_until
from fixtures.operator import Registries
from mcpreg.apiconfig import parse_config
from mcpreg_dev.controlplane import free_port
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.workload import Owner, build_manifests

pytestmark = pytest.mark.integration

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SNAPSHOT = SHARED / "toolhive" / "registry-2026-02-18.json"


def make_registry(
    registries: Registries, repo: BareRepo, daemon: GitDaemonServer, name: str, **api: Any
) -> None:
    repo.commit({"registry.json": SNAPSHOT.read_bytes()})
    spec: dict[str, Any] = {
        "source": {"type": "git", "git": {"repository": daemon.url(repo), "path": "registry.json"}},
    }
    if api:
        spec["api"] = api
    registries.create(name, spec)


def api_ready(status: dict[str, Any]) -> bool:
    return status.get("phase") == "Ready" and (status.get("apiStatus") or {}).get("phase") == "Ready"


def not_found(read: Any) -> bool:
    try:
        read()
    except ApiException as exc:
        return exc.status == 404
    return False


def api_document(kube: Kube, namespace: str, registry: str) -> dict[str, Any]:
    """The configuration document in the API's ConfigMap, as the pods read it."""
    config_map = kube.core.read_namespaced_config_map(f"{registry}-api-config", namespace)
    document = json.loads(config_map.data["config.json"])
    assert isinstance(document, dict)
    return document


def test_workload_is_created_owned_restricted_and_ready(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    make_registry(registries, bare_repo, git_daemon, "web")
    obj = registries.wait("web", api_ready, timeout=90, what="API Ready")
    status = obj["status"]
    assert status["apiStatus"]["endpoint"] == f"http://web-api.{namespace}.svc:8080"
    assert status["apiStatus"]["readyReplicas"] == 1 and status["apiStatus"]["readySince"].endswith("Z")
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "SourceAvailable": "True",
        "DataValid": "True",
        "Synced": "True",
        "APIReady": "True",
        "Ready": "True",
    }
    uid = obj["metadata"]["uid"]

    deployment = kube.apps.read_namespaced_deployment("web-api", namespace)
    service = kube.core.read_namespaced_service("web-api", namespace)
    account = kube.core.read_namespaced_service_account("web-api", namespace)
    role = kube.rbac.read_namespaced_role("web-api", namespace)
    binding = kube.rbac.read_namespaced_role_binding("web-api", namespace)
    config_map = kube.core.read_namespaced_config_map("web-api-config", namespace)
    for made in (deployment, service, account, role, binding, config_map):
        owner = made.metadata.owner_references[0]
        assert (owner.kind, owner.name, owner.uid, owner.controller) == ("MCPRegistry", "web", uid, True)
        assert made.metadata.labels["app.kubernetes.io/managed-by"] == "mcp-registry-operator"
        assert made.metadata.labels["app.kubernetes.io/instance"] == "web"
        assert made.metadata.labels["app.kubernetes.io/component"] == "registry-api"

    # The API pod reads only its own data ConfigMaps.
    [rule] = role.rules
    assert rule.resources == ["configmaps"] and sorted(rule.verbs) == ["get", "list", "watch"]
    assert set(rule.resource_names) == set(status["storageRef"]["configMaps"])
    assert "web-api-config" not in rule.resource_names  # mounted by the kubelet, not read by the pods

    # The pods run the configuration document, mounted read-only from the ConfigMap.
    document = parse_config(api_document(kube, namespace, "web"), "web-api-config")
    assert (document.registry, document.namespace, document.storage.type) == ("web", namespace, "configmap")
    assert (document.http.host, document.http.port, document.http.limits.drain_seconds) == (
        "0.0.0.0",
        8080,
        5,
    )

    pod = deployment.spec.template.spec
    container = pod.containers[0]
    assert pod.service_account_name == "web-api"
    assert container.args == ["serve", "--config", "/etc/mcpreg/api/config.json"]
    [mount] = [m for m in container.volume_mounts if m.name == "config"]
    assert (mount.mount_path, mount.read_only) == ("/etc/mcpreg/api", True)
    [volume] = [v for v in pod.volumes if v.name == "config"]
    assert volume.config_map.name == "web-api-config"
    assert pod.security_context.run_as_non_root is True
    assert container.security_context.read_only_root_filesystem is True
    assert container.security_context.allow_privilege_escalation is False
    assert container.security_context.capabilities.drop == ["ALL"]
    assert container.security_context.seccomp_profile.type == "RuntimeDefault"
    assert container.readiness_probe.http_get.path == "/readiness"
    assert container.liveness_probe.http_get.path == "/health"
    assert "mcpregistry.dev/config-hash" in deployment.spec.template.metadata.annotations
    assert service.spec.type == "ClusterIP"
    assert [(p.name, p.port) for p in service.spec.ports] == [("http", 8080)]
    printed = kube.kubectl("get", "mcpreg", "web", "-n", namespace).stdout
    assert f"http://web-api.{namespace}.svc:8080" in printed


def test_generated_objects_pass_server_side_dry_run(kube: Kube, namespace: str, crd: str) -> None:
    spec = MCPRegistrySpec.model_validate(
        {
            "source": {"type": "git", "git": {"repository": "https://example.com/r.git", "path": "r.json"}},
            "api": {
                "replicas": 2,
                "image": "example.com/mcpreg:1",
                "resources": {"limits": {"memory": "128Mi"}},
            },
        }
    )
    manifests = build_manifests(
        owner=Owner(name="dry", uid="00000000-0000-0000-0000-000000000001"),
        namespace=namespace,
        spec=spec,
        data_configmaps=["dry-data"],
    )
    result = kube.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump_all(manifests),
    )
    assert result.stdout.count("(server dry run)") == len(manifests)


def test_drift_is_restored(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    make_registry(registries, bare_repo, git_daemon, "drift")
    registries.wait("drift", api_ready, timeout=90, what="API Ready")

    kube.core.delete_namespaced_service("drift-api", namespace)
    wait_until(
        lambda: not not_found(lambda: kube.core.read_namespaced_service("drift-api", namespace)),
        timeout=30,
        what="Service restored",
    )

    kube.apps.patch_namespaced_deployment("drift-api", namespace, {"spec": {"replicas": 3}})
    wait_until(
        lambda: kube.apps.read_namespaced_deployment("drift-api", namespace).spec.replicas == 1,
        timeout=30,
        what="replicas restored to the spec's 1",
    )

    kube.rbac.patch_namespaced_role(
        "drift-api", namespace, {"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
    )
    wait_until(
        lambda: kube.rbac.read_namespaced_role("drift-api", namespace).rules[0].resources == ["configmaps"],
        timeout=30,
        what="Role restored",
    )

    rendered = api_document(kube, namespace, "drift")
    edited = {**rendered, "http": {**rendered["http"], "cacheMaxAgeSeconds": 1}}
    kube.core.patch_namespaced_config_map(
        "drift-api-config", namespace, {"data": {"config.json": json.dumps(edited)}}
    )
    wait_until(
        lambda: api_document(kube, namespace, "drift") == rendered, timeout=30, what="configuration restored"
    )
    kube.core.delete_namespaced_config_map("drift-api-config", namespace)
    wait_until(
        lambda: not not_found(lambda: api_document(kube, namespace, "drift")),
        timeout=30,
        what="configuration ConfigMap recreated",
    )
    assert api_document(kube, namespace, "drift") == rendered
    registries.wait("drift", api_ready, timeout=60, what="API Ready again")


def test_replicas_left_alone_when_managed_externally(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    make_registry(registries, bare_repo, git_daemon, "scaled")
    registries.wait("scaled", api_ready, timeout=90, what="API Ready")
    # As documented: hand replicas over first (the annotation, or an HPA), then scale.
    kube.apps.patch_namespaced_deployment(
        "scaled-api",
        namespace,
        {"metadata": {"annotations": {"mcpregistry.dev/replicas-managed-externally": "true"}}},
    )

    def operator_owns_replicas() -> bool:
        deployment = kube.apps.read_namespaced_deployment("scaled-api", namespace)
        for entry in deployment.metadata.managed_fields or []:
            if entry.manager == "mcp-registry-operator" and "f:replicas" in json.dumps(entry.fields_v1 or {}):
                return True
        return False

    wait_until(
        lambda: not operator_owns_replicas(), timeout=30, what="the operator to let go of spec.replicas"
    )
    kube.apps.patch_namespaced_deployment("scaled-api", namespace, {"spec": {"replicas": 2}})
    obj = registries.wait(
        "scaled", lambda s: (s.get("apiStatus") or {}).get("readyReplicas") == 2, timeout=60
    )
    assert obj["status"]["apiStatus"]["phase"] == "Ready"
    assert kube.apps.read_namespaced_deployment("scaled-api", namespace).spec.replicas == 2


def test_spec_change_rolls_and_disable_removes_then_restores(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    product_image: str,
) -> None:
    make_registry(registries, bare_repo, git_daemon, "toggle")
    registries.wait("toggle", api_ready, timeout=90, what="API Ready")
    before = kube.apps.read_namespaced_deployment("toggle-api", namespace).spec.template.metadata.annotations
    # Another name of the same image (a real node must be able to run it: nothing can be pulled here).
    renamed = f"{product_image.rsplit(':', 1)[0]}:rolled"
    if kube.control_plane.node is not None:
        tagged = kube.control_plane.node.ctr("images", "tag", "--force", product_image, renamed)
        assert tagged.returncode == 0, tagged.stderr
    registries.patch("toggle", {"spec": {"api": {"image": renamed, "replicas": 2}}})
    wait_until(
        lambda: (
            kube.apps.read_namespaced_deployment("toggle-api", namespace)
            .spec.template.spec.containers[0]
            .image
            == renamed
        ),
        timeout=30,
        what="new image applied",
    )
    after = kube.apps.read_namespaced_deployment("toggle-api", namespace).spec.template.metadata.annotations
    assert after["mcpregistry.dev/config-hash"] != before["mcpregistry.dev/config-hash"]
    registries.wait("toggle", lambda s: api_ready(s) and s["apiStatus"]["readyReplicas"] == 2, timeout=90)

    registries.patch("toggle", {"spec": {"api": {"enabled": False}}})
    obj = registries.wait(
        "toggle", lambda s: (s.get("apiStatus") or {}).get("phase") == "NotStarted", timeout=30
    )
    assert "endpoint" not in obj["status"]["apiStatus"]
    assert obj["status"]["phase"] == "Ready"  # the catalogue is synced; no API was asked for
    wait_until(
        lambda: not_found(lambda: kube.apps.read_namespaced_deployment("toggle-api", namespace)),
        timeout=30,
        what="Deployment removed",
    )
    assert not_found(lambda: kube.core.read_namespaced_service("toggle-api", namespace))
    assert not_found(lambda: kube.rbac.read_namespaced_role("toggle-api", namespace))
    assert not_found(lambda: kube.core.read_namespaced_config_map("toggle-api-config", namespace))

    registries.patch("toggle", {"spec": {"api": {"enabled": True}}})
    registries.wait("toggle", api_ready, timeout=90, what="API Ready after re-enabling")


def test_workload_is_garbage_collected(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    make_registry(registries, bare_repo, git_daemon, "gcapi")
    registries.wait("gcapi", api_ready, timeout=90, what="API Ready")
    registries.delete("gcapi")
    for read in (
        lambda: kube.apps.read_namespaced_deployment("gcapi-api", namespace),
        lambda: kube.core.read_namespaced_service("gcapi-api", namespace),
        lambda: kube.core.read_namespaced_service_account("gcapi-api", namespace),
        lambda: kube.rbac.read_namespaced_role("gcapi-api", namespace),
        lambda: kube.core.read_namespaced_config_map("gcapi-api-config", namespace),
    ):
        wait_until(
            functools.partial(not_found, read), timeout=90, what="garbage collection of the API workload"
        )


def test_api_with_deployment_args_and_pod_token_serves_and_is_confined(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    tmp_path: Path,
) -> None:
    make_registry(registries, bare_repo, git_daemon, "confined")
    obj = registries.wait("confined", api_ready, timeout=90, what="API Ready")
    deployment = kube.apps.read_namespaced_deployment("confined-api", namespace)
    args = list(deployment.spec.template.spec.containers[0].args)
    assert args == ["serve", "--config", "/etc/mcpreg/api/config.json"]
    # The pod's own configuration document, where the kubelet would mount it, on loopback here.
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(api_document(kube, namespace, "confined")))
    port = free_port()
    args = [*args[:2], str(config_file), "--host", "127.0.0.1", "--port", str(port)]
    # The pod's own identity: a token of the Deployment's ServiceAccount.
    kubeconfig = kube.service_account_kubeconfig(
        namespace, deployment.spec.template.spec.service_account_name, tmp_path / "api.kubeconfig"
    )
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    process = subprocess.Popen(
        [sys.executable, "-m", "mcpreg_cli.main", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def listed() -> int | None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/v0.1/servers?limit=100", timeout=2
                ) as r:
                    return int(json.loads(r.read())["metadata"]["count"])
            except OSError:
                return None

        assert wait_until(listed, timeout=30, what="the API serving the synced catalogue") == min(
            100, obj["status"]["syncStatus"]["serverCount"]
        )
    finally:
        process.terminate()
        process.wait(10)
    restricted = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    for forbidden in (
        lambda: restricted.list_namespaced_config_map(namespace),
        lambda: restricted.read_namespaced_secret("anything", namespace),
        lambda: restricted.list_namespaced_pod(namespace),
        lambda: restricted.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="nope"))
        ),
    ):
        with pytest.raises(ApiException) as denied:
            forbidden()
        assert denied.value.status == 403
