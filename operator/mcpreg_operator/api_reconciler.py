"""Keep one MCPRegistry's API workload as the spec says, and report its real state in `apiStatus`."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from mcpreg_operator.spec import (
    ApiPhase,
    ApiStatus,
    ConditionStatus,
    ConditionType,
    MCPRegistrySpec,
    MCPRegistryStatus,
)
from mcpreg_operator.workload import (
    EXTERNAL_REPLICAS_ANNOTATION,
    FIELD_MANAGER,
    Owner,
    api_name,
    build_manifests,
    endpoint,
    observe_deployment,
)

log = logging.getLogger(__name__)

APPLY = "application/apply-patch+yaml"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class ApiReconciler:
    api: client.ApiClient
    namespace: str
    owner: Owner
    applied_hash: str | None = None  # of the last manifests applied; None forces an apply
    ready_generation: int | None = None  # Deployment generation last seen Ready
    _dirty: bool = field(default=True)

    def mark_dirty(self) -> None:
        """An owned object changed behind our back (or might have): apply again on the next pass."""
        self._dirty = True

    # --- applying -----------------------------------------------------------------------------

    async def _apply(self, manifest: dict[str, Any]) -> None:
        kind = manifest["kind"]
        name = manifest["metadata"]["name"]
        kwargs: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY}
        core, apps, rbac = (
            client.CoreV1Api(self.api),
            client.AppsV1Api(self.api),
            client.RbacAuthorizationV1Api(self.api),
        )
        if kind == "ServiceAccount":
            await core.patch_namespaced_service_account(name, self.namespace, manifest, **kwargs)
        elif kind == "Service":
            await core.patch_namespaced_service(name, self.namespace, manifest, **kwargs)
        elif kind == "Deployment":
            await apps.patch_namespaced_deployment(name, self.namespace, manifest, **kwargs)
        elif kind == "Role":
            await rbac.patch_namespaced_role(name, self.namespace, manifest, **kwargs)
        elif kind == "RoleBinding":
            await rbac.patch_namespaced_role_binding(name, self.namespace, manifest, **kwargs)
        else:  # pragma: no cover - build_manifests makes only the kinds above
            raise ValueError(f"unexpected kind {kind}")

    async def _replicas_managed_elsewhere(self, deployment: dict[str, Any] | None) -> bool:
        annotations = ((deployment or {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get(EXTERNAL_REPLICAS_ANNOTATION) == "true":
            return True
        try:
            hpas = await client.AutoscalingV2Api(self.api).list_namespaced_horizontal_pod_autoscaler(
                self.namespace
            )
        except ApiException as exc:
            if exc.status == 403:
                return False  # not allowed to look: manage replicas as the spec says
            raise
        return any(
            h.spec.scale_target_ref.kind == "Deployment"
            and h.spec.scale_target_ref.name == api_name(self.owner.name)
            for h in hpas.items
        )

    async def _read_deployment(self) -> dict[str, Any] | None:
        try:
            raw = await client.AppsV1Api(self.api).read_namespaced_deployment(
                api_name(self.owner.name), self.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        result: dict[str, Any] = self.api.sanitize_for_serialization(raw)
        return result

    async def _delete_all(self) -> bool:
        """Remove the workload (spec.api.enabled: false). Returns whether anything was deleted."""
        name = api_name(self.owner.name)
        core, apps, rbac = (
            client.CoreV1Api(self.api),
            client.AppsV1Api(self.api),
            client.RbacAuthorizationV1Api(self.api),
        )
        deleted = False
        for delete in (
            apps.delete_namespaced_deployment,
            core.delete_namespaced_service,
            rbac.delete_namespaced_role_binding,
            rbac.delete_namespaced_role,
            core.delete_namespaced_service_account,
        ):
            try:
                await delete(name, self.namespace)
                deleted = True
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return deleted

    # --- one pass -----------------------------------------------------------------------------

    async def reconcile(
        self,
        spec: MCPRegistrySpec,
        status: MCPRegistryStatus,
        data_configmaps: Sequence[str],
        generation: int,
    ) -> None:
        """Apply what changed (or drifted), then record the API's real state in `status`."""
        if not spec.api.enabled:
            if self._dirty or self.applied_hash != "disabled":
                self._dirty = False  # before the work, as when applying
                await self._delete_all()
                self.applied_hash, self.ready_generation = "disabled", None
            status.api_status = ApiStatus(
                phase=ApiPhase.NOT_STARTED, ready_replicas=0, message="spec.api.enabled is false"
            )
            status.set_condition(
                ConditionType.API_READY, ConditionStatus.FALSE, "APIDisabled",
                "the registry API is disabled (spec.api.enabled: false)", observed_generation=generation,
            )  # fmt: skip
            return

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
            except BaseException:
                self._dirty = True
                raise
            self.applied_hash = digest
            deployment = await self._read_deployment()

        observation = observe_deployment(deployment)
        previous = status.api_status or ApiStatus()
        phase = ApiPhase(observation.phase)
        generation_now = int(((deployment or {}).get("metadata") or {}).get("generation") or 0)
        if phase is ApiPhase.READY:
            self.ready_generation = generation_now
        elif phase is ApiPhase.DEPLOYING and self.ready_generation == generation_now:
            # Same rollout that was Ready, now with fewer ready pods: the pods failed, nobody changed them.
            phase = ApiPhase.UNHEALTHY
        ready_since = previous.ready_since if previous.phase is ApiPhase.READY else None
        if phase is ApiPhase.READY and ready_since is None:
            ready_since = _now()
        status.api_status = ApiStatus(
            phase=phase,
            endpoint=endpoint(self.owner.name, self.namespace) if phase is ApiPhase.READY else None,
            ready_replicas=observation.ready_replicas,
            ready_since=ready_since,
            message=(
                f"pods stopped being ready: {observation.message}"
                if phase is ApiPhase.UNHEALTHY and observation.phase != "Unhealthy"
                else observation.message
            ),
        )
        if phase is ApiPhase.READY:
            status.set_condition(
                ConditionType.API_READY, ConditionStatus.TRUE, "APIReady", observation.message,
                observed_generation=generation,
            )  # fmt: skip
        else:
            reason = {
                "NotStarted": "APINotStarted",
                "Deploying": "APIDeploying",
                "Unhealthy": "APIUnhealthy",
            }[phase.value]
            status.set_condition(
                ConditionType.API_READY, ConditionStatus.FALSE, reason, status.api_status.message or "",
                observed_generation=generation,
            )  # fmt: skip
