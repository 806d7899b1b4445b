"""Auth mode `kubernetes`: the Kubernetes API server decides.

A token is reviewed with a TokenReview for the registry's audience (so only tokens issued for this
registry pass), and its subject authorized with a LocalSubjectAccessReview in the registry's namespace:
verb `get` on `mcpregistries/catalog` named after the registry, which a RoleBinding grants. Both go
through the project's Kubernetes client (`mcpreg.kube`, asynchronous); each decision is cached by the
token's digest for a few seconds, so a client making many requests costs two reviews per TTL.
"""

from __future__ import annotations

from typing import Any

from mcpreg.apiconfig import (
    CATALOG_GROUP,
    CATALOG_RESOURCE,
    CATALOG_SUBRESOURCE,
    CATALOG_VERB,
    KubernetesAuthConfig,
)
from mcpreg.kube import LOCAL_SUBJECT_ACCESS_REVIEWS, TOKEN_REVIEWS, KubeClient, KubeError
from mcpreg_api.auth.bearer import well_formed
from mcpreg_api.auth.cache import TtlCache, token_key
from mcpreg_api.auth.decision import (
    MALFORMED,
    Caller,
    Decision,
    ReviewFailed,
    from_access_review,
    from_token_review,
)
from mcpreg_api.metrics import ApiMetrics


def needed_permission(namespace: str, registry: str) -> str:
    """What a caller needs, in words a person writing a RoleBinding can use."""
    return (
        f"verb {CATALOG_VERB} on {CATALOG_RESOURCE}/{CATALOG_SUBRESOURCE} ({CATALOG_GROUP}) "
        f"with resourceName {registry} in namespace {namespace}"
    )


class KubernetesAuthenticator:
    def __init__(
        self,
        kube: KubeClient,
        config: KubernetesAuthConfig,
        *,
        namespace: str,
        registry: str,
        metrics: ApiMetrics,
    ) -> None:
        self.kube = kube
        self.audience = config.audience
        self.namespace = namespace
        self.registry = registry
        self.metrics = metrics
        self.cache: TtlCache[Decision] = TtlCache(config.cache_ttl_seconds, config.cache_max_entries)
        self._needs = needed_permission(namespace, registry)

    async def decide(self, token: str) -> Decision:
        """Whether `token` may read; raises ReviewFailed when the API server could not say."""
        return await self.cache.get_or_compute(token_key(token), lambda: self._review(token))

    async def _create(self, kind: str, resource: Any, namespace: str, body: dict[str, Any]) -> Any:
        try:
            answer = await self.kube.create(resource, namespace, body)
        except KubeError as exc:
            self.metrics.auth_reviews.labels(kind, "failed").inc()
            raise ReviewFailed(f"the {body['kind']} failed: {exc}") from exc
        return answer.get("status")

    async def _review(self, token: str) -> Decision:
        if not well_formed(token):
            return MALFORMED
        token_status = await self._create(
            "token",
            TOKEN_REVIEWS,
            "",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token, "audiences": [self.audience]},
            },
        )
        caller = from_token_review(token_status, self.audience)
        if isinstance(caller, Decision):
            self.metrics.auth_reviews.labels("token", caller.outcome).inc()
            return caller
        self.metrics.auth_reviews.labels("token", "authenticated").inc()
        access_status = await self._create(
            "access",
            LOCAL_SUBJECT_ACCESS_REVIEWS,
            self.namespace,
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "LocalSubjectAccessReview",
                "metadata": {"namespace": self.namespace},
                "spec": self._access_spec(caller),
            },
        )
        decision = from_access_review(access_status, caller, self._needs)
        self.metrics.auth_reviews.labels("access", decision.outcome).inc()
        return decision

    def _access_spec(self, caller: Caller) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "user": caller.username,
            "groups": list(caller.groups),
            "resourceAttributes": {
                "namespace": self.namespace,
                "verb": CATALOG_VERB,
                "group": CATALOG_GROUP,
                "resource": CATALOG_RESOURCE,
                "subresource": CATALOG_SUBRESOURCE,
                "name": self.registry,
            },
        }
        if caller.uid:
            spec["uid"] = caller.uid
        if caller.extra:
            spec["extra"] = {key: list(values) for key, values in caller.extra}
        return spec
