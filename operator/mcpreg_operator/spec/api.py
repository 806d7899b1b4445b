"""``spec.api``: the registry API Deployment and Service, and the compute resources of its pods."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool, StrictStr, WithJsonSchema

from mcpreg.apiconfig import CORS_ANY_ORIGIN, CORS_ORIGIN_RE
from mcpreg_operator.spec.api_auth import ApiAuth
from mcpreg_operator.spec.base import JsonInt, JsonInt32, NoSpaceStr, ResourceModel, object_default
from mcpreg_operator.spec.cel import CelRule, cel_rules
from mcpreg_operator.spec.identity import MAX_API_REPLICAS
from mcpreg_operator.spec.network_policy import NetworkPolicy

# Kubernetes resource.Quantity, exactly as controller-gen emits it for ResourceRequirements.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

# int-or-string with the quantity pattern, in the shape the API server expects for Quantity fields.
Quantity = Annotated[
    JsonInt | StrictStr,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
            "description": "A Kubernetes quantity, e.g. 100m, 0.5, 64Mi or 1.",
        }
    ),
]


class ResourceRequirements(ResourceModel):
    """Compute resources of the registry API container (requests and limits, as in a Pod)."""

    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Maximum resources, by resource name (cpu, memory, ephemeral-storage, ...).",
    )
    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Minimum resources the scheduler reserves, by resource name (cpu, memory, ...).",
    )


_Origin = Annotated[
    str,
    Field(
        max_length=253,
        pattern=rf"^(\*|{CORS_ORIGIN_RE})$",
        description="'*' (any page), or an origin: scheme, host and optional port, e.g. https://vscode.dev.",
    ),
]


class Cors(ResourceModel):
    """Which web pages may read the registry API from a browser (CORS), e.g. MCP clients in an IDE."""

    model_config = cel_rules(
        CelRule(
            # has(): the API server also checks the rules against the bare default `{}`
            rule=(
                "!has(self.allowCredentials) || !self.allowCredentials || "
                "(has(self.allowedOrigins) && !('*' in self.allowedOrigins))"
            ),
            message="allowCredentials needs an explicit list of allowedOrigins: browsers refuse '*'",
            reason="FieldValueForbidden",
            field_path=".allowCredentials",
        ),
        CelRule(
            rule=(
                "!has(self.allowedOrigins) || !('*' in self.allowedOrigins) || size(self.allowedOrigins) == 1"
            ),
            message="allowedOrigins: '*' already allows every origin; list it alone",
            reason="FieldValueInvalid",
            field_path=".allowedOrigins",
        ),
    )

    allowed_origins: list[_Origin] = Field(
        default_factory=lambda: [CORS_ANY_ORIGIN],
        max_length=64,
        description=(
            "Origins whose pages may read the API: ['*'] (the default: any page, for a registry anyone "
            "may read), a list of origins, or [] to send no CORS headers at all."
        ),
        json_schema_extra={"default": [CORS_ANY_ORIGIN]},
    )
    allow_credentials: StrictBool = Field(
        default=False,
        description=(
            "Also answer credentialed requests (cookies, Authorization). Needs an explicit allowedOrigins "
            "list; each answer then names the caller's origin."
        ),
    )
    max_age_seconds: JsonInt32 = Field(
        default=600,
        ge=0,
        le=86400,
        description="How long a browser may reuse a preflight answer, in seconds.",
    )


class Api(ResourceModel):
    """The registry API Deployment and Service the operator runs for this MCPRegistry."""

    enabled: StrictBool = Field(
        default=True,
        description="Run the registry API (Deployment and Service <name>-api). false removes them.",
    )
    replicas: JsonInt32 = Field(
        default=1,
        ge=0,
        le=MAX_API_REPLICAS,
        description=(
            f"Number of API pods (0 to {MAX_API_REPLICAS}). Not enforced while an HPA manages the Deployment."
        ),
    )
    image: NoSpaceStr = Field(
        default="",
        max_length=512,
        description="Container image of the registry API. Empty uses the operator's own configured image.",
    )
    resources: ResourceRequirements = object_default(
        ResourceRequirements, "Compute resources (requests and limits) of the API container."
    )
    cors: Cors = object_default(Cors, "Which web pages may read the API from a browser (CORS).")
    network_policy: NetworkPolicy = object_default(
        NetworkPolicy, "An optional NetworkPolicy letting only chosen pods reach the API."
    )
    auth: ApiAuth = object_default(
        ApiAuth, "Who may read the API: anonymous (the default) or Kubernetes tokens and RBAC."
    )
