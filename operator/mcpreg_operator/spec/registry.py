"""``MCPRegistrySpec``, the root CEL rule on ``metadata.name``, and a whole MCPRegistry object."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from mcpreg_operator.spec.api import Api
from mcpreg_operator.spec.base import ResourceModel, object_default
from mcpreg_operator.spec.cel import CelRule, cel_matches, cel_rules, exactly_one_of
from mcpreg_operator.spec.filter import Filter
from mcpreg_operator.spec.identity import MAX_REGISTRY_NAME_LENGTH, REGISTRY_NAME_RE
from mcpreg_operator.spec.named_source import NamedSource, sources_field
from mcpreg_operator.spec.signing import Signing
from mcpreg_operator.spec.source import Source
from mcpreg_operator.spec.status import MCPRegistryStatus
from mcpreg_operator.spec.storage import Storage
from mcpreg_operator.spec.sync_policy import SyncPolicy
from mcpreg_operator.spec.validation import Validation

#: Name of the one source of the `spec.source` form, where a name is needed (status, messages).
SINGLE_SOURCE_NAME = "source"


class MCPRegistrySpec(ResourceModel):
    """Desired state of an MCPRegistry: an organisation's own catalogue of MCP servers."""

    model_config = cel_rules(
        exactly_one_of("source", "sources", message="exactly one of source and sources must be set")
    )

    display_name: str | None = Field(
        default=None, max_length=256, description="Human-readable name of the catalogue."
    )
    source: Source | None = Field(
        default=None,
        description="Where the catalogue data comes from. Exactly one of source and sources must be set.",
    )
    sources: list[NamedSource] | None = sources_field()
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

    @model_validator(mode="after")
    def _one_form(self) -> MCPRegistrySpec:
        # The CRD's rule above refuses this at admission; repeated because everything downstream
        # needs a source, and an object admitted by an older CRD must fail as an invalid spec.
        if (self.source is None) == (self.sources is None):
            raise ValueError("exactly one of source and sources must be set")
        names = [source.name for source in self.sources or ()]
        if len(set(names)) != len(names):  # a list-map's keys are unique at admission too
            raise ValueError(f"sources: names must be unique, got {names}")
        return self

    def named_sources(self) -> list[NamedSource]:
        """Every source with its name, in priority order; the `spec.source` form is one source named
        `SINGLE_SOURCE_NAME` without a filter of its own (`spec.filter` is the registry's)."""
        if self.sources:
            return list(self.sources)
        if self.source is None:
            return []
        return [NamedSource(name=SINGLE_SOURCE_NAME, **dict(self.source))]

    @property
    def single_source(self) -> Source:
        """`spec.source`; only for the one-source form (admission guarantees one of the two forms)."""
        if self.source is None:
            raise ValueError("spec.source is not set (this registry uses spec.sources)")
        return self.source


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
