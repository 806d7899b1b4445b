"""``spec.api``: the registry API Deployment and Service, and the compute resources of its pods."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool, StrictStr, WithJsonSchema

from mcpreg_operator.spec.base import JsonInt, ResourceModel, object_default
from mcpreg_operator.spec.identity import MAX_API_REPLICAS

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


class Api(ResourceModel):
    """The registry API Deployment and Service the operator runs for this MCPRegistry."""

    enabled: StrictBool = Field(
        default=True,
        description="Run the registry API (Deployment and Service <name>-api). false removes them.",
    )
    replicas: JsonInt = Field(
        default=1,
        ge=0,
        le=MAX_API_REPLICAS,
        description=(
            f"Number of API pods (0 to {MAX_API_REPLICAS}). Not enforced while an HPA manages the Deployment."
        ),
        json_schema_extra={"format": "int32"},
    )
    image: str = Field(
        default="",
        max_length=512,
        pattern=r"^[^\x00-\x20\x7f]*$",
        description="Container image of the registry API. Empty uses the operator's own configured image.",
    )
    resources: ResourceRequirements = object_default(
        ResourceRequirements, "Compute resources (requests and limits) of the API container."
    )
