"""``spec.api.auth``: who may read the registry API. Anonymous by default (as before); `kubernetes`
lets Kubernetes decide: a bearer token the API server accepts (TokenReview, bound to an audience),
authorized by RBAC (a SubjectAccessReview of verb `get` on `mcpregistries/catalog` named after the
registry, in its namespace). See docs/api-auth.md."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mcpreg_operator.spec.base import JsonInt, ResourceModel, object_default


class AuthMode(StrEnum):
    """How the registry API authenticates its callers."""

    ANONYMOUS = "anonymous"
    KUBERNETES = "kubernetes"


class KubernetesAuth(ResourceModel):
    """Bearer tokens checked by the Kubernetes API server (TokenReview) and authorized by RBAC."""

    audience: str = Field(
        default="",
        max_length=253,
        pattern=r"^[^\x00-\x20\x7f]*$",
        description=(
            "The audience tokens must be issued for (TokenRequest `audiences`, a projected token's "
            "`audience`). Empty: mcpregistry.dev/<namespace>/<name>, one per registry."
        ),
    )
    cache_ttl_seconds: JsonInt = Field(
        default=10,
        ge=1,
        le=300,
        description=(
            "How long each API pod reuses a token's review and authorization decision, in seconds: "
            "also how long a revoked token or a removed RoleBinding may still be honoured."
        ),
        json_schema_extra={"format": "int32"},
    )


class ApiAuth(ResourceModel):
    """Who may read the registry API. /health and /readiness always answer without credentials."""

    mode: AuthMode = Field(
        default=AuthMode.ANONYMOUS,
        description=(
            "anonymous: anyone reaching the Service reads (the default); kubernetes: a bearer token the "
            "Kubernetes API server accepts for the audience below, whose subject RBAC allows verb get on "
            "mcpregistries/catalog with this registry's name, in its namespace."
        ),
    )
    kubernetes: KubernetesAuth = object_default(
        KubernetesAuth, "Settings of mode kubernetes (ignored in the other modes)."
    )
