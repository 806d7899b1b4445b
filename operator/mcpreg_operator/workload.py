"""The registry API workload of one MCPRegistry: ServiceAccount, Role, RoleBinding, the ConfigMap of the
API's configuration document, the optional NetworkPolicy, Deployment and Service, built as plain
manifests (pure functions, unit-tested) and kept in place by server-side apply.

Server-side apply with a field manager of our own and `force` makes reconciliation idempotent and
restores drift in one request per object: an unchanged object is not rewritten (its resourceVersion
stays), an edited or deleted one is put back.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcpreg.labels import API_APP, API_COMPONENT, INSTANCE, NAME, OPERATOR, object_labels
from mcpreg_operator.api_config import (
    API_CONFIG_DIR,
    API_CONFIG_KEY,
    API_CONFIG_PATH,
    API_PORT,
    render_api_config,
)
from mcpreg_operator.spec.api_auth import AuthMode
from mcpreg_operator.spec.identity import API_VERSION, KIND
from mcpreg_operator.spec.network_policy import LabelSelector, NetworkPolicy, NetworkPolicyPeer
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.storage import StorageType
from mcpreg_operator.storage_factory import api_storage_env

FIELD_MANAGER = OPERATOR
# On cluster-scoped objects of a registry (which cannot carry an ownerReference to it): its namespace.
REGISTRY_NAMESPACE_LABEL = "mcpregistry.dev/registry-namespace"
CONFIG_HASH_ANNOTATION = "mcpregistry.dev/config-hash"
# Set on the Deployment by whoever scales it (an HPA, a person): the operator then leaves replicas alone.
EXTERNAL_REPLICAS_ANNOTATION = "mcpregistry.dev/replicas-managed-externally"
DEFAULT_API_IMAGE_ENV = "MCPREG_API_IMAGE"
FALLBACK_API_IMAGE = "ghcr.io/mcp-registry-operator/mcp-registry-operator:0.1.0"


def default_api_image() -> str:
    """The operator's configured default image for the API (the operator's own image in the chart)."""
    return os.environ.get(DEFAULT_API_IMAGE_ENV) or FALLBACK_API_IMAGE


def api_name(registry: str) -> str:
    return f"{registry}-api"


def api_config_name(registry: str) -> str:
    return f"{registry}-api-config"


def endpoint(registry: str, namespace: str) -> str:
    return f"http://{api_name(registry)}.{namespace}.svc:{API_PORT}"


@dataclass(frozen=True)
class Owner:
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def labels(registry: str) -> dict[str, str]:
    return object_labels(registry, app=API_APP, component=API_COMPONENT)


def selector(registry: str) -> dict[str, str]:
    # Only labels that never change: a Deployment's selector is immutable.
    return {NAME: API_APP, INSTANCE: registry}


def _metadata(name: str, namespace: str, owner: Owner) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels(owner.name),
        "ownerReferences": [owner.reference()],
    }


def api_args() -> list[str]:
    """The API container's arguments: everything else is in the mounted configuration document."""
    return ["serve", "--config", API_CONFIG_PATH]


def build_config_map(owner: Owner, namespace: str, spec: MCPRegistrySpec) -> dict[str, Any]:
    """The API's configuration document, rendered from the spec (mounted into the pods by the kubelet:
    the pods need no Kubernetes API access to it)."""
    document = render_api_config(
        owner.name, namespace, spec.storage, source=spec.source, cors=spec.api.cors, auth=spec.api.auth
    ).document()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(api_config_name(owner.name), namespace, owner),
        "data": {API_CONFIG_KEY: json.dumps(document, indent=2, sort_keys=True) + "\n"},
    }


# Auth mode kubernetes: the API pods ask whether a caller may read with a LocalSubjectAccessReview,
# namespaced, so their own Role grants it (in this namespace only). TokenReview has no namespaced form:
# the chart's ClusterRole grants only that, bound to each such registry's ServiceAccount by a
# ClusterRoleBinding the operator keeps (`build_token_review_binding`).
ACCESS_REVIEW_RULE: dict[str, Any] = {
    "apiGroups": ["authorization.k8s.io"],
    "resources": ["localsubjectaccessreviews"],
    "verbs": ["create"],
}
TOKEN_REVIEW_CLUSTER_ROLE_ENV = "MCPREG_API_TOKEN_REVIEW_CLUSTER_ROLE"  # noqa: S105 (a name)
FALLBACK_TOKEN_REVIEW_CLUSTER_ROLE = "mcp-registry-operator-api-token-review"  # noqa: S105


def token_review_cluster_role() -> str:
    """The chart's ClusterRole allowing `create` on tokenreviews, and nothing else."""
    return os.environ.get(TOKEN_REVIEW_CLUSTER_ROLE_ENV) or FALLBACK_TOKEN_REVIEW_CLUSTER_ROLE


def token_review_binding_name(registry: str, namespace: str) -> str:
    # Cluster-scoped, so the namespace is part of the name; RBAC names may contain ':'.
    return f"mcpregistry.dev:api-token-review:{namespace}:{registry}"


def reviews_tokens(spec: MCPRegistrySpec) -> bool:
    return spec.api.enabled and spec.api.auth.mode is AuthMode.KUBERNETES


def build_role(
    owner: Owner, namespace: str, data_configmaps: Sequence[str], *, access_reviews: bool = False
) -> dict[str, Any]:
    """The API pods' Role: only the registry's own data ConfigMaps, by name, so they read nothing else;
    with `access_reviews` (auth mode kubernetes) also the creation of LocalSubjectAccessReviews."""
    rules: list[dict[str, Any]] = []
    if data_configmaps:
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": sorted(set(data_configmaps)),
                "verbs": ["get", "list", "watch"],
            }
        )
    if access_reviews:
        rules.append(dict(ACCESS_REVIEW_RULE))
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(api_name(owner.name), namespace, owner),
        "rules": rules,
    }


def build_token_review_binding(owner: Owner, namespace: str) -> dict[str, Any]:
    """The ClusterRoleBinding letting this registry's API ServiceAccount create TokenReviews (auth mode
    kubernetes). Cluster-scoped, it cannot be owned by the MCPRegistry: the operator deletes it when the
    mode changes, the API is disabled or the registry is deleted; labels name the registry."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": token_review_binding_name(owner.name, namespace),
            "labels": {**labels(owner.name), REGISTRY_NAMESPACE_LABEL: namespace},
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": token_review_cluster_role(),
        },
        "subjects": [{"kind": "ServiceAccount", "name": api_name(owner.name), "namespace": namespace}],
    }


# No peers listed: the pods of the registry's own namespace (a podSelector alone stays in it).
_OWN_NAMESPACE = NetworkPolicyPeer(pod_selector=LabelSelector())


def build_network_policy(owner: Owner, namespace: str, policy: NetworkPolicy) -> dict[str, Any]:
    """The API pods' NetworkPolicy: ingress only from the listed peers, to the listed ports. Egress is
    left alone (the pods talk to the API server or S3)."""
    peers = policy.allowed_from or [_OWN_NAMESPACE]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(api_name(owner.name), namespace, owner),
        "spec": {
            "podSelector": {"matchLabels": selector(owner.name)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [peer.model_dump(mode="json", exclude_defaults=True) for peer in peers],
                    "ports": [{"protocol": "TCP", "port": port} for port in sorted(set(policy.ports))],
                }
            ],
        },
    }


def build_manifests(
    *,
    owner: Owner,
    namespace: str,
    spec: MCPRegistrySpec,
    data_configmaps: Sequence[str],
    manage_replicas: bool = True,
) -> list[dict[str, Any]]:
    """Every object of the workload, in apply order (identity, permissions and configuration before
    the pods)."""
    name = api_name(owner.name)
    image = spec.api.image or default_api_image()
    resources = spec.api.resources.model_dump(mode="json", by_alias=True, exclude_none=True)
    service_account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(name, namespace, owner),
    }
    role = build_role(owner, namespace, data_configmaps, access_reviews=reviews_tokens(spec))
    config_map = build_config_map(owner, namespace, spec)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(name, namespace, owner),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
    container: dict[str, Any] = {
        "name": "registry-api",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": api_args(),
        # S3 storage: its credentials by Secret reference (storage_factory); never in the document,
        # which names everything else (the namespace too).
        "env": api_storage_env(spec),
        "ports": [{"name": "http", "containerPort": API_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/readiness", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": API_CONFIG_DIR, "readOnly": True},
            # The root filesystem is read-only; Python and aiohttp may still want a scratch /tmp.
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
        ],
    }
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "serviceAccountName": name,
        # The API reads its data ConfigMaps with this identity, and reviews callers' tokens with it (auth
        # mode kubernetes); from S3 and anonymous it needs no Kubernetes access at all, so its pods get
        # no token to lose.
        "automountServiceAccountToken": spec.storage.type is StorageType.CONFIGMAP or reviews_tokens(spec),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": config_map["metadata"]["name"]}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    # A change of anything the pods run with (their spec, their configuration document) rolls them.
    # The data is not part of it: the pods follow the head ConfigMap and reload a new catalogue in
    # place, so the part names (derived from the content) change only the Role, never the pods.
    runs_with = {"pod": pod_spec, "config": config_map["data"]}
    config_hash = hashlib.sha256(json.dumps(runs_with, sort_keys=True).encode()).hexdigest()[:16]
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(owner.name)},
        "revisionHistoryLimit": 3,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {"labels": labels(owner.name), "annotations": {CONFIG_HASH_ANNOTATION: config_hash}},
            "spec": pod_spec,
        },
    }
    if manage_replicas:
        deployment_spec["replicas"] = spec.api.replicas
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, namespace, owner),
        "spec": deployment_spec,
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, owner),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(owner.name),
            "ports": [{"name": "http", "port": API_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    # The policy before the pods, so that they never run unprotected when it is asked for.
    network_policy = (
        [build_network_policy(owner, namespace, spec.api.network_policy)]
        if spec.api.network_policy.enabled
        else []
    )
    token_review = [build_token_review_binding(owner, namespace)] if reviews_tokens(spec) else []
    return [service_account, role, binding, config_map, *token_review, *network_policy, deployment, service]


@dataclass(frozen=True)
class ApiObservation:
    """What the Deployment says about the API right now."""

    phase: str  # NotStarted | Deploying | Ready | Unhealthy
    ready_replicas: int
    desired_replicas: int
    message: str


def observe_deployment(deployment: Mapping[str, Any] | None) -> ApiObservation:
    """The API phase from a Deployment's real status (as the deployment controller reports it)."""
    if deployment is None:
        return ApiObservation("NotStarted", 0, 0, "the API Deployment does not exist yet")
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    ready = int(status.get("readyReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    # status.replicas counts the pods of every ReplicaSet, old ones included: until it is back to
    # `desired` a pod of the previous template (perhaps never ready) still sits behind the Service.
    total = int(status["replicas"]) if status.get("replicas") is not None else desired
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return ApiObservation(
            "Unhealthy", ready, desired, f"the API rollout is stuck: {progressing.get('message', '')}".strip()
        )
    if desired == 0:
        return ApiObservation("NotStarted", 0, 0, "the API is scaled to 0 replicas")
    if observed >= generation and available >= 1 and updated >= desired and ready >= desired:
        if total > desired:
            left = total - desired
            message = f"rolling out: {left} replica(s) of the previous version left"
            return ApiObservation("Deploying", ready, desired, message)
        return ApiObservation("Ready", ready, desired, f"{ready}/{desired} replicas ready")
    return ApiObservation("Deploying", ready, desired, f"rolling out: {ready}/{desired} replicas ready")
