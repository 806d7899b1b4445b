"""Pure logic of the API workload: generated manifests, the API phase from a Deployment's status, and
the overall phase derived from sync and API."""

from __future__ import annotations

from typing import Any

import pytest

from mcpreg_operator.phase import derive_overall
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import ApiPhase, ApiStatus, MCPRegistryStatus, Phase, SyncPhase, SyncStatus
from mcpreg_operator.workload import (
    CONFIG_HASH_ANNOTATION,
    Owner,
    build_manifests,
    endpoint,
    observe_deployment,
)

SPEC = {"source": {"type": "git", "git": {"repository": "https://example.com/r.git", "path": "r.json"}}}


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
    assert list(objects) == ["ServiceAccount", "Role", "RoleBinding", "Deployment", "Service"]
    for obj in objects.values():
        assert obj["metadata"]["ownerReferences"] == [
            {"apiVersion": "mcpregistry.dev/v1alpha1", "kind": "MCPRegistry", "name": "reg", "uid": "u-1",
             "controller": True, "blockOwnerDeletion": True}
        ]  # fmt: skip
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "reg"
        assert obj["metadata"]["name"] == "reg-api"


def test_role_grants_only_named_configmaps() -> None:
    role = manifests(data_configmaps=["reg-data", "reg-data-abc-0"])["Role"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["reg-data", "reg-data-abc-0"],
         "verbs": ["get", "list", "watch"]}
    ]  # fmt: skip
    assert manifests(data_configmaps=[])["Role"]["rules"] == []


def test_deployment_is_restricted_and_rolls_on_change() -> None:
    deployment = manifests()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["args"][:3] == ["serve", "--registry", "reg"]
    assert deployment["spec"]["replicas"] == 1
    changed = manifests({**SPEC, "api": {"image": "example.com/other:1"}})["Deployment"]
    key = CONFIG_HASH_ANNOTATION
    assert (
        changed["spec"]["template"]["metadata"]["annotations"][key]
        != deployment["spec"]["template"]["metadata"]["annotations"][key]
    )
    assert "replicas" not in manifests(manage_replicas=False)["Deployment"]["spec"]


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
    replicas: int, ready: int, *, generation: int = 1, observed: int = 1, **extra: Any
) -> dict[str, Any]:
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
