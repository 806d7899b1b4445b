"""Pure logic of the API workload: generated manifests (the configuration ConfigMap among them), the
API phase from a Deployment's status, and the overall phase derived from sync and API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcpreg.apiconfig import parse_config
from mcpreg_operator.phase import derive_overall
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import ApiPhase, ApiStatus, MCPRegistryStatus, Phase, SyncPhase, SyncStatus
from mcpreg_operator.workload import (
    CONFIG_HASH_ANNOTATION,
    TOKEN_REVIEW_CLUSTER_ROLE_ENV,
    Owner,
    build_manifests,
    build_token_review_binding,
    endpoint,
    observe_deployment,
)

SPEC = {"source": {"type": "git", "git": {"repository": "https://example.com/r.git", "path": "r.json"}}}
S3 = {"bucket": "mcp-registries", "prefix": "cat", "endpoint": "http://m:9000"}
S3_SPEC = {**SPEC, "storage": {"type": "s3", "s3": S3}}


def manifests(spec: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, dict[str, Any]]:
    built = build_manifests(
        owner=Owner(name="reg", uid="u-1"),
        namespace="ns",
        spec=MCPRegistrySpec.model_validate(spec or SPEC),
        data_configmaps=kwargs.pop("data_configmaps", ["reg-data"]),
        **kwargs,
    )
    return {m["kind"]: m for m in built}


def test_every_object_is_owned_and_labelled() -> None:
    objects = manifests()
    assert list(objects) == ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service"]
    for obj in objects.values():
        assert obj["metadata"]["ownerReferences"] == [
            {"apiVersion": "mcpregistry.dev/v1alpha1", "kind": "MCPRegistry", "name": "reg", "uid": "u-1",
             "controller": True, "blockOwnerDeletion": True}
        ]  # fmt: skip
        assert obj["metadata"]["labels"] == {
            "app.kubernetes.io/name": "mcp-registry-api",
            "app.kubernetes.io/instance": "reg",
            "app.kubernetes.io/component": "registry-api",
            "app.kubernetes.io/part-of": "mcp-registry",
            "app.kubernetes.io/managed-by": "mcp-registry-operator",
        }
        assert obj["metadata"]["name"] == ("reg-api-config" if obj["kind"] == "ConfigMap" else "reg-api")


def test_role_grants_only_named_configmaps() -> None:
    role = manifests(data_configmaps=["reg-data", "reg-data-abc-0"])["Role"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["reg-data", "reg-data-abc-0"],
         "verbs": ["get", "list", "watch"]}
    ]  # fmt: skip
    assert manifests(data_configmaps=[])["Role"]["rules"] == []
    # The configuration ConfigMap is mounted by the kubelet: the pods need no API access to it.
    assert "reg-api-config" not in role["rules"][0]["resourceNames"]
    assert manifests(S3_SPEC, data_configmaps=[])["Role"]["rules"] == []


def test_only_pods_reading_configmaps_get_a_token() -> None:
    def automounts(spec: dict[str, Any]) -> bool:
        return bool(manifests(spec)["Deployment"]["spec"]["template"]["spec"]["automountServiceAccountToken"])

    assert automounts(SPEC) is True  # ConfigMap storage: the pods read their data with their token
    assert automounts(S3_SPEC) is False  # S3: no Kubernetes access needed, so no token in the pod
    # Auth mode kubernetes: the pods review their callers' tokens with their own.
    assert automounts({**S3_SPEC, "api": {"auth": {"mode": "kubernetes"}}}) is True


KUBERNETES_AUTH = {**S3_SPEC, "api": {"auth": {"mode": "kubernetes"}}}


def test_auth_mode_kubernetes_adds_access_reviews_to_the_role_and_nothing_else() -> None:
    assert manifests(KUBERNETES_AUTH, data_configmaps=[])["Role"]["rules"] == [
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["localsubjectaccessreviews"],
            "verbs": ["create"],
        }
    ]
    assert manifests({**KUBERNETES_AUTH, "storage": {"type": "configmap"}})["Role"]["rules"][1] == (
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["localsubjectaccessreviews"],
            "verbs": ["create"],
        }
    )


def test_the_token_review_binding_names_the_charts_cluster_role_and_the_api_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_REVIEW_CLUSTER_ROLE_ENV, "release-api-token-review")
    binding = build_token_review_binding(Owner(name="reg", uid="u-1"), "ns")
    assert binding["metadata"]["name"] == "mcpregistry.dev:api-token-review:ns:reg"
    assert "ownerReferences" not in binding["metadata"]  # cluster-scoped: the operator removes it
    assert binding["metadata"]["labels"]["mcpregistry.dev/registry-namespace"] == "ns"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "release-api-token-review"
    }  # fmt: skip
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "reg-api", "namespace": "ns"}]


def test_deployment_is_restricted_and_rolls_on_change() -> None:
    deployment = manifests()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["args"] == ["serve", "--config", "/etc/mcpreg/api/config.json"]
    assert deployment["spec"]["replicas"] == 1
    changed = manifests({**SPEC, "api": {"image": "example.com/other:1"}})["Deployment"]
    key = CONFIG_HASH_ANNOTATION
    assert (
        changed["spec"]["template"]["metadata"]["annotations"][key]
        != deployment["spec"]["template"]["metadata"]["annotations"][key]
    )
    assert "replicas" not in manifests(manage_replicas=False)["Deployment"]["spec"]


def test_the_pods_mount_the_configuration_document() -> None:
    objects = manifests(S3_SPEC)
    config_map, pod = objects["ConfigMap"], objects["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert {"name": "config", "mountPath": "/etc/mcpreg/api", "readOnly": True} in container["volumeMounts"]
    assert {"name": "config", "configMap": {"name": "reg-api-config"}} in pod["volumes"]
    config = parse_config(json.loads(config_map["data"]["config.json"]), "reg-api-config")
    assert (config.registry, config.namespace, config.storage.type) == ("reg", "ns", "s3")
    assert (config.http.host, config.http.port) == ("0.0.0.0", container["ports"][0]["containerPort"])
    assert config.http.limits.drain_seconds == 5
    # Credentials stay in the environment, from the Secret by reference; never in the document.
    assert "AWS_" not in config_map["data"]["config.json"]


def test_a_configuration_change_rolls_the_pods() -> None:
    before = manifests(S3_SPEC)
    moved = {**SPEC, "storage": {"type": "s3", "s3": {**S3, "prefix": "other"}}}
    after = manifests(moved)
    assert json.loads(after["ConfigMap"]["data"]["config.json"])["storage"]["prefix"] == "other"
    assert before["ConfigMap"]["data"] != after["ConfigMap"]["data"]
    template_before, template_after = (m["Deployment"]["spec"]["template"] for m in (before, after))
    assert template_before["spec"] == template_after["spec"]  # only the document changed...
    key = CONFIG_HASH_ANNOTATION
    assert template_before["metadata"]["annotations"][key] != template_after["metadata"]["annotations"][key]
    to_configmaps = manifests()
    assert to_configmaps["ConfigMap"]["data"] != before["ConfigMap"]["data"]
    assert (
        to_configmaps["Deployment"]["spec"]["template"]["metadata"]["annotations"][key]
        != template_before["metadata"]["annotations"][key]
    )


def test_a_new_catalogue_generation_changes_the_role_but_not_the_pods() -> None:
    """Part names derive from the content: a new large catalogue must widen the Role, not restart
    every API pod (the pods reload the data in place)."""
    before = manifests(data_configmaps=["reg-data", "reg-data-1111-0", "reg-data-1111-1"])
    after = manifests(data_configmaps=["reg-data", "reg-data-2222-0", "reg-data-2222-1"])
    assert before["Deployment"]["spec"]["template"] == after["Deployment"]["spec"]["template"]
    assert before["Role"]["rules"][0]["resourceNames"] != after["Role"]["rules"][0]["resourceNames"]


def test_endpoint_shape() -> None:
    assert endpoint("reg", "ns") == "http://reg-api.ns.svc:8080"


def deployment(
    replicas: int,
    ready: int,
    *,
    generation: int = 1,
    observed: int = 1,
    total: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    if total is not None:  # status.replicas: the pods of every ReplicaSet, the old ones included
        extra["replicas"] = total
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": replicas,
            **extra,
        },
    }


@pytest.mark.parametrize(
    ("obj", "phase"),
    [
        (None, "NotStarted"),
        (deployment(1, 0), "Deploying"),
        (deployment(2, 1), "Deploying"),
        (deployment(1, 1), "Ready"),
        (deployment(1, 1, total=1), "Ready"),
        # the new pod is ready but the old ReplicaSet's pod is not gone yet: the rollout is not over
        (deployment(1, 1, total=2), "Deploying"),
        (deployment(1, 1, generation=2, observed=1), "Deploying"),
        (deployment(0, 0), "NotStarted"),
        (
            deployment(1, 0, conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]),
            "Unhealthy",
        ),
    ],
)
def test_api_phase_from_deployment_status(obj: dict[str, Any] | None, phase: str) -> None:
    assert observe_deployment(obj).phase == phase


def status_with(
    sync: SyncPhase | None, api: ApiPhase | None, hash_: str | None = "sha256:x"
) -> MCPRegistryStatus:
    return MCPRegistryStatus(
        sync_status=SyncStatus(phase=sync, last_sync_hash=hash_, server_count=3, message="m")
        if sync
        else None,
        api_status=ApiStatus(phase=api) if api else None,
    )


@pytest.mark.parametrize(
    ("sync", "api", "enabled", "phase", "ready"),
    [
        (None, None, True, Phase.PENDING, "False"),
        (SyncPhase.FAILED, ApiPhase.READY, True, Phase.FAILED, "False"),
        (SyncPhase.COMPLETE, ApiPhase.READY, True, Phase.READY, "True"),
        (SyncPhase.COMPLETE, ApiPhase.DEPLOYING, True, Phase.PENDING, "False"),
        (SyncPhase.COMPLETE, ApiPhase.UNHEALTHY, True, Phase.FAILED, "False"),
        (SyncPhase.COMPLETE, ApiPhase.NOT_STARTED, False, Phase.READY, "True"),
        (SyncPhase.SYNCING, ApiPhase.READY, True, Phase.SYNCING, None),
    ],
)
def test_overall_phase(
    sync: SyncPhase | None, api: ApiPhase | None, enabled: bool, phase: Phase, ready: str | None
) -> None:
    status = status_with(sync, api)
    derive_overall(status, api_enabled=enabled, generation=4)
    assert status.phase is phase
    condition = status.condition("Ready")
    if ready is None:
        assert condition is None  # a routine sync leaves Ready as it was
    else:
        assert condition is not None and condition.status == ready and condition.observed_generation == 4
