"""``MCPRegistrySpec``, the root CEL rule on ``metadata.name``, and a whole MCPRegistry object."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mcpreg_operator.spec.api import Api
from mcpreg_operator.spec.base import ResourceModel, object_default
from mcpreg_operator.spec.cel import CelRule, cel_matches
from mcpreg_operator.spec.filter import Filter
from mcpreg_operator.spec.identity import MAX_REGISTRY_NAME_LENGTH, REGISTRY_NAME_RE
from mcpreg_operator.spec.signing import Signing
from mcpreg_operator.spec.source import Source
from mcpreg_operator.spec.status import MCPRegistryStatus
from mcpreg_operator.spec.storage import Storage
from mcpreg_operator.spec.sync_policy import SyncPolicy
from mcpreg_operator.spec.validation import Validation


class MCPRegistrySpec(ResourceModel):
    """Desired state of an MCPRegistry: an organisation's own catalogue of MCP servers."""

    display_name: str | None = Field(
        default=None, max_length=256, description="Human-readable name of the catalogue."
    )
    source: Source = Field(description="Where the catalogue data comes from.")
    sync_policy: SyncPolicy | None = Field(
        default=None,
        description=(
            "Automatic sync schedule. Omit for manual-only syncing (annotation mcpregistry.dev/sync-trigger)."
        ),
    )
    filter: Filter | None = Field(
        default=None, description="Which servers to keep. Omit to keep all of them."
    )
    validation: Validation = object_default(
        Validation,
        "What a sync does with entries that cannot be served: skip them (the default) or fail the sync.",
    )
    storage: Storage = object_default(
        Storage, "Where the processed catalogue is stored. Defaults to ConfigMaps."
    )
    api: Api = object_default(Api, "The in-cluster registry API serving the catalogue.")
    signing: Signing | None = Field(
        default=None,
        description=(
            "Sign the served catalogue documents (the ToolHive document and the upstream server list) "
            "with a private key from a Secret; the API serves each signature beside its document and "
            "the public key. Omit to serve unsigned documents."
        ),
    )


#: Root-level CEL rule; the CRD generator places it on the resource's root schema.
REGISTRY_NAME_RULE = CelRule(
    rule=f"size(self.metadata.name) <= {MAX_REGISTRY_NAME_LENGTH} && "
    + cel_matches("self.metadata.name", REGISTRY_NAME_RE),
    message=(
        f"metadata.name must be a DNS-1035 label of at most {MAX_REGISTRY_NAME_LENGTH} characters "
        "(lowercase letters, digits and '-', starting with a letter), so that the '<name>-api' Service "
        "name is valid"
    ),
    reason="FieldValueInvalid",
)


class RegistryMetadata(BaseModel):
    """The part of ObjectMeta the operator reads; everything else is kept as-is."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str | None = None


class MCPRegistry(BaseModel):
    """A whole MCPRegistry object, e.g. from a manifest or an API response."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    api_version: Literal["mcpregistry.dev/v1alpha1"]
    kind: Literal["MCPRegistry"]
    metadata: RegistryMetadata
    spec: MCPRegistrySpec
    status: MCPRegistryStatus | None = None
