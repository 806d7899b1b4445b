"""The labels of everything the operator creates, in one place: storage ConfigMaps and the API workload.

Kubernetes' recommended `app.kubernetes.io/*` labels; the operator finds its own objects by
`managed-by` + `instance` (the MCPRegistry's name), and the API Deployment's selector uses only labels
that never change, since a selector is immutable.
"""

from __future__ import annotations

from collections.abc import Mapping

DOMAIN = "mcpregistry.dev"

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"

OPERATOR = "mcp-registry-operator"  # the value of managed-by, and the operator's field manager
PRODUCT = "mcp-registry"  # the value of part-of

CATALOG_APP = "mcp-registry"
CATALOG_COMPONENT = "catalog-data"
API_APP = "mcp-registry-api"
API_COMPONENT = "registry-api"


def object_labels(registry: str, *, app: str, component: str) -> dict[str, str]:
    """The labels of one object the operator creates for the MCPRegistry `registry`."""
    return {
        NAME: app,
        INSTANCE: registry,
        COMPONENT: component,
        PART_OF: PRODUCT,
        MANAGED_BY: OPERATOR,
    }


def is_managed(labels: Mapping[str, str]) -> bool:
    return labels.get(MANAGED_BY) == OPERATOR
