"""Keep one MCPRegistry's API workload as the spec says, and report its real state.

`reconcile` applies what changed (or drifted) and returns an `ApiReport`; `apply_api_report` (pure)
turns that report into `apiStatus` and the APIReady condition, so the controller can apply it to
whichever version of status it finally writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes_asyncio import client

from mcpreg.kube import (
    CLUSTER_ROLE_BINDINGS,
    CONFIGMAPS,
    DEPLOYMENTS,
    HORIZONTAL_POD_AUTOSCALERS,
    NETWORK_POLICIES,
    ROLE_BINDINGS,
    ROLES,
    SERVICE_ACCOUNTS,
    SERVICES,
    ForbiddenError,
    KubeClient,
    NotFoundError,
    Resource,
)
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import ApiPhase, ApiStatus, ConditionStatus, ConditionType, MCPRegistryStatus
from mcpreg_operator.workload import (
    EXTERNAL_REPLICAS_ANNOTATION,
    FIELD_MANAGER,
    Owner,
    api_config_name,
    api_name,
    build_manifests,
    build_role,
    endpoint,
    observe_deployment,
    reviews_tokens,
    token_review_binding_name,
)

log = logging.getLogger(__name__)

_RESOURCES: dict[str, Resource] = {
    "ServiceAccount": SERVICE_ACCOUNTS,
    "Role": ROLES,
    "RoleBinding": ROLE_BINDINGS,
    "ClusterRoleBinding": CLUSTER_ROLE_BINDINGS,
    "ConfigMap": CONFIGMAPS,
    "NetworkPolicy": NETWORK_POLICIES,
    "Deployment": DEPLOYMENTS,
    "Service": SERVICES,
}
# Deleted in this order when the API is disabled: the pods first, their configuration and permissions last.
_DELETE_ORDER = (
    "Deployment",
    "Service",
    "NetworkPolicy",
    "ConfigMap",
    "RoleBinding",
    "Role",
    "ServiceAccount",
)

_REASONS = {
    ApiPhase.NOT_STARTED: "APINotStarted",
    ApiPhase.DEPLOYING: "APIDeploying",
    ApiPhase.UNHEALTHY: "APIUnhealthy",
}


@dataclass(frozen=True)
class ApiReport:
    """What one pass found the API workload to be."""

    phase: ApiPhase
    ready_replicas: int
    message: str
    endpoint: str | None = None
    disabled: bool = False


def apply_api_report(status: MCPRegistryStatus, report: ApiReport, *, generation: int, now: datetime) -> None:
    """`apiStatus` and the APIReady condition from `report`, in place (pure apart from `status`)."""
    previous = status.api_status or ApiStatus()
    ready_since = previous.ready_since if previous.phase is ApiPhase.READY else None
    if report.phase is ApiPhase.READY and ready_since is None:
        ready_since = now
    status.api_status = ApiStatus(
        phase=report.phase,
        endpoint=report.endpoint if report.phase is ApiPhase.READY else None,
        ready_replicas=report.ready_replicas,
        ready_since=ready_since if report.phase is ApiPhase.READY else None,
        message=report.message,
    )
    if report.disabled:
        condition = (ConditionStatus.FALSE, "APIDisabled", report.message)
    elif report.phase is ApiPhase.READY:
        condition = (ConditionStatus.TRUE, "APIReady", report.message)
    else:
        condition = (ConditionStatus.FALSE, _REASONS[report.phase], report.message)
    status.set_condition(ConditionType.API_READY, *condition, observed_generation=generation, at=now)


async def delete_token_review_binding(kube: KubeClient, namespace: str, registry: str) -> bool:
    """Remove the registry's token-review ClusterRoleBinding (auth mode kubernetes), which no
    ownerReference can collect. False when there was none, or when the operator may not manage such
    bindings (a chart without them: it cannot have made one either)."""
    try:
        return await kube.delete(CLUSTER_ROLE_BINDINGS, "", token_review_binding_name(registry, namespace))
    except (NotFoundError, ForbiddenError):
        return False


@dataclass
class ApiReconciler:
    api: client.ApiClient
    namespace: str
    owner: Owner
    applied_hash: str | None = None  # of the last manifests applied; None forces an apply
    ready_generation: int | None = None  # Deployment generation last seen Ready
    _dirty: bool = field(default=True)

    @property
    def kube(self) -> KubeClient:
        return KubeClient(self.api)

    def mark_dirty(self) -> None:
        """An owned object changed behind our back (or might have): apply again on the next pass."""
        self._dirty = True

    # --- applying -----------------------------------------------------------------------------

    async def _apply(self, manifest: dict[str, Any]) -> None:
        await self.kube.apply(
            _RESOURCES[manifest["kind"]], self.namespace, manifest, field_manager=FIELD_MANAGER
        )

    async def allow_reading(self, spec: MCPRegistrySpec, current: Sequence[str], new: Sequence[str]) -> None:
        """Before a new catalogue generation is published: let the API pods read its parts as well as
        the current ones, so a pod following the head never meets a part it may not read. The next
        pass narrows the Role to what is published."""
        if not spec.api.enabled:
            return
        self._dirty = True  # the Role now differs from the applied manifests
        await self._apply(build_role(self.owner, self.namespace, [*current, *new]))

    async def _replicas_managed_elsewhere(self, deployment: dict[str, Any] | None) -> bool:
        annotations = ((deployment or {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get(EXTERNAL_REPLICAS_ANNOTATION) == "true":
            return True
        try:
            hpas, _ = await self.kube.list(HORIZONTAL_POD_AUTOSCALERS, self.namespace)
        except ForbiddenError:
            return False  # not allowed to look: manage replicas as the spec says
        target = api_name(self.owner.name)
        return any(
            ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == "Deployment"
            and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == target
            for h in hpas
        )

    async def _read_deployment(self) -> dict[str, Any] | None:
        return await self.kube.get(DEPLOYMENTS, self.namespace, api_name(self.owner.name))

    async def _delete_all(self) -> bool:
        """Remove the workload (spec.api.enabled: false). Returns whether anything was deleted."""
        deleted = False
        for kind in _DELETE_ORDER:
            name = api_config_name(self.owner.name) if kind == "ConfigMap" else api_name(self.owner.name)
            deleted = await self.kube.delete(_RESOURCES[kind], self.namespace, name) or deleted
        return await delete_token_review_binding(self.kube, self.namespace, self.owner.name) or deleted

    # --- one pass -----------------------------------------------------------------------------

    async def reconcile(self, spec: MCPRegistrySpec, data_configmaps: Sequence[str]) -> ApiReport:
        """Apply what changed (or drifted), then report the API's real state."""
        if not spec.api.enabled:
            if self._dirty or self.applied_hash != "disabled":
                self._dirty = False  # before the work, as when applying
                await self._delete_all()
                self.applied_hash, self.ready_generation = "disabled", None
            return ApiReport(ApiPhase.NOT_STARTED, 0, "spec.api.enabled is false", disabled=True)

        deployment = await self._read_deployment()
        manage_replicas = not await self._replicas_managed_elsewhere(deployment)
        manifests = build_manifests(
            owner=self.owner,
            namespace=self.namespace,
            spec=spec,
            data_configmaps=data_configmaps,
            manage_replicas=manage_replicas,
        )
        digest = hashlib.sha256(json.dumps(manifests, sort_keys=True).encode()).hexdigest()
        if self._dirty or digest != self.applied_hash or deployment is None:
            # Cleared before applying, not after: a change reported while we apply (someone edits an
            # object we already applied in this pass) must lead to another apply.
            self._dirty = False
            try:
                for manifest in manifests:
                    await self._apply(manifest)
                if not spec.api.network_policy.enabled:
                    # Turned off (or never on): none may stay behind, or it would keep filtering.
                    await self.kube.delete(NETWORK_POLICIES, self.namespace, api_name(self.owner.name))
                if not reviews_tokens(spec):  # the mode changed (or never was kubernetes)
                    await delete_token_review_binding(self.kube, self.namespace, self.owner.name)
            except BaseException:
                self._dirty = True
                raise
            self.applied_hash = digest
            deployment = await self._read_deployment()

        observation = observe_deployment(deployment)
        phase = ApiPhase(observation.phase)
        generation_now = int(((deployment or {}).get("metadata") or {}).get("generation") or 0)
        message = observation.message
        if phase is ApiPhase.READY:
            self.ready_generation = generation_now
        elif phase is ApiPhase.DEPLOYING and self.ready_generation == generation_now:
            # Same rollout that was Ready, now with fewer ready pods: the pods failed, nobody changed them.
            phase = ApiPhase.UNHEALTHY
            message = f"pods stopped being ready: {observation.message}"
        return ApiReport(
            phase=phase,
            ready_replicas=observation.ready_replicas,
            message=message,
            endpoint=endpoint(self.owner.name, self.namespace) if phase is ApiPhase.READY else None,
        )
