"""Pydantic models of the official MCP `server.json` (schema 2025-12-11) and its list wrappings.

`server.schema.json` leaves objects open (no `additionalProperties: false`), so these models accept
and ignore fields they do not know; the catalogue keeps the author's original JSON for serving, and
these models only decide whether it is valid. ToolHive's publisher extension (what ToolHive's client
reads from `_meta`) is modelled too, from `publisher-provided.schema.json`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from mcpreg.catalog.fieldtypes import (
    DateTimeString,
    KeptAllowedHostString,
    Port,
    UriString,
    unique_list_validator,
)
from mcpreg.catalog.toolhive_models import NetworkRules, OutboundRules, ProvenanceFacts

SERVER_SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
PUBLISHER_PROVIDED_KEY = "io.modelcontextprotocol.registry/publisher-provided"
OFFICIAL_META_KEY = "io.modelcontextprotocol.registry/official"
STACKLOK_NAMESPACE = "io.github.stacklok"
# Our own publisher namespace, for ToolHive facts server.json has no field for (see convert.py).
MCPREG_NAMESPACE = "dev.mcpregistry"

SERVER_NAME_PATTERN = r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$"
HTTP_URL_PATTERN = r"^https?://[^\s]+$"
# The schema's wording: "Version ranges are rejected (e.g., '^1.2.3', '~1.2.3', '>=1.2.3', '1.x', '1.*')".
_VERSION_RANGE = re.compile(r"^[\^~<>=]|[<>=]=?\s*\d|\|\||(^|\.)[xX*](\.|$)|\s-\s")


class _OpenObject(BaseModel):
    """Base of the server.json objects: open, as the schema leaves them (unknown fields ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, populate_by_name=True)


def _reject_version_range(value: str) -> str:
    if _VERSION_RANGE.search(value):
        raise ValueError(f"must be a specific version, not a range (got {value!r})")
    return value


class Input(_OpenObject):
    description: str | None = None
    isRequired: bool | None = None
    isSecret: bool | None = None
    format: Literal["string", "number", "boolean", "filepath"] | None = None
    default: str | None = None
    placeholder: str | None = None
    value: str | None = None
    choices: list[str] | None = None


class InputWithVariables(Input):
    variables: dict[str, Input] | None = None


class KeyValueInput(InputWithVariables):
    """A header or environment variable."""

    name: str


class PositionalArgument(InputWithVariables):
    type: Literal["positional"]
    valueHint: str | None = None
    isRepeated: bool | None = None

    @model_validator(mode="after")
    def _needs_value_or_hint(self) -> PositionalArgument:
        if self.valueHint is None and self.value is None:
            raise ValueError("a positional argument needs a value or a valueHint")
        return self


class NamedArgument(InputWithVariables):
    type: Literal["named"]
    name: str
    isRepeated: bool | None = None


Argument = Annotated[PositionalArgument | NamedArgument, Field(discriminator="type")]


class StdioTransport(_OpenObject):
    type: Literal["stdio"]


class StreamableHttpTransport(_OpenObject):
    type: Literal["streamable-http"]
    url: Annotated[str, StringConstraints(pattern=HTTP_URL_PATTERN)]
    headers: list[KeyValueInput] | None = None


class SseTransport(_OpenObject):
    type: Literal["sse"]
    url: Annotated[str, StringConstraints(pattern=HTTP_URL_PATTERN)]
    headers: list[KeyValueInput] | None = None


LocalTransport = Annotated[
    StdioTransport | StreamableHttpTransport | SseTransport, Field(discriminator="type")
]


class RemoteTransport(_OpenObject):
    """A remote endpoint: streamable-http or sse, with optional URL template variables."""

    type: Literal["streamable-http", "sse"]
    url: Annotated[str, StringConstraints(pattern=HTTP_URL_PATTERN)]
    headers: list[KeyValueInput] | None = None
    variables: dict[str, Input] | None = None


class Package(_OpenObject):
    """An installable artefact: npm, pypi, oci, nuget, mcpb, …"""

    registryType: str
    registryBaseUrl: UriString | None = None
    identifier: str
    version: Annotated[str, StringConstraints(min_length=1)] | None = None
    fileSha256: Annotated[str, StringConstraints(pattern=r"^[a-f0-9]{64}$")] | None = None
    runtimeHint: str | None = None
    transport: LocalTransport
    runtimeArguments: list[Argument] | None = None
    packageArguments: list[Argument] | None = None
    environmentVariables: list[KeyValueInput] | None = None

    @field_validator("version")
    @classmethod
    def _specific_version(cls, value: str | None) -> str | None:
        if value == "latest":
            raise ValueError("must be a specific version, not 'latest'")
        return None if value is None else _reject_version_range(value)


class Repository(_OpenObject):
    url: UriString
    source: str
    id: str | None = None
    subfolder: str | None = None


class Icon(_OpenObject):
    src: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*$", max_length=255)]
    mimeType: Literal["image/png", "image/jpeg", "image/jpg", "image/svg+xml", "image/webp"] | None = None
    sizes: list[Annotated[str, StringConstraints(pattern=r"^(\d+x\d+|any)$")]] | None = None
    theme: Literal["light", "dark"] | None = None


class OfficialMeta(_OpenObject):
    """`_meta["io.modelcontextprotocol.registry/official"]` of a list response entry."""

    status: Literal["active", "deprecated", "deleted"] | None = None
    statusMessage: str | None = None
    publishedAt: DateTimeString | None = None
    updatedAt: DateTimeString | None = None
    isLatest: bool | None = None


class ServerResponseMeta(_OpenObject):
    official: OfficialMeta | None = Field(default=None, alias=OFFICIAL_META_KEY)


# --- ToolHive's publisher extension (publisher-provided.schema.json) -----------------------------------


class _ExtObject(BaseModel):
    """Base of the publisher extension's objects: closed (`additionalProperties: false`)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ExtPermissions(_ExtObject):
    name: str | None = None
    network: NetworkRules[OutboundRules[KeptAllowedHostString]] | None = None
    read: Annotated[list[str], unique_list_validator()] | None = None
    write: Annotated[list[str], unique_list_validator()] | None = None
    privileged: bool | None = None


class ExtKubernetesMetadata(_ExtObject):
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    image: str | None = None
    transport: Literal["stdio", "sse", "streamable-http", "http"] | None = None


class ExtMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)  # numbers may be written as 12.0 here

    stars: Annotated[float, Field(ge=0)] | None = None
    pulls: Annotated[float, Field(ge=0)] | None = None
    last_updated: DateTimeString | None = None
    kubernetes: ExtKubernetesMetadata | None = None


class ExtEnvVar(_ExtObject):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    description: str | None = None
    required: bool | None = None
    secret: bool | None = None
    default: str | None = None


class StacklokExtensions(_ExtObject):
    """What ToolHive's client reads for one package or remote, keyed by image reference or URL."""

    status: Literal["active", "deprecated", "Active", "Deprecated"]
    tier: Literal["Official", "Community"] | None = None
    tools: (
        Annotated[
            list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]], unique_list_validator()
        ]
        | None
    ) = None
    tags: (
        Annotated[
            list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*[a-z0-9]$")]],
            unique_list_validator(),
        ]
        | None
    ) = None
    tool_definitions: list[dict[str, Any]] | None = None
    metadata: ExtMetadata | None = None
    permissions: ExtPermissions | None = None
    args: list[str] | None = None
    provenance: ProvenanceFacts[dict[str, Any]] | None = None
    docker_tags: Annotated[list[str], unique_list_validator()] | None = None
    proxy_port: Port | None = None
    oauth_config: dict[str, Any] | None = None
    env_vars: list[ExtEnvVar] | None = None
    custom_metadata: dict[str, Any] | None = None


class PreservedToolHiveFields(_ExtObject):
    """Our own publisher block (`dev.mcpregistry`): ToolHive facts server.json has no field for."""

    description: str | None = None
    name: str | None = None
    target_port: Port | None = None


class PublisherProvided(BaseModel):
    """`_meta["io.modelcontextprotocol.registry/publisher-provided"]`: publisher namespaces.

    ToolHive's block and ours have a schema; any other publisher's block only has to be an object.
    """

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, populate_by_name=True)

    stacklok: dict[str, StacklokExtensions] | None = Field(default=None, alias=STACKLOK_NAMESPACE)
    mcpreg: PreservedToolHiveFields | None = Field(default=None, alias=MCPREG_NAMESPACE)

    @model_validator(mode="after")
    def _other_namespaces_are_objects(self) -> PublisherProvided:
        for namespace, block in (self.model_extra or {}).items():
            if not isinstance(block, dict):
                raise ValueError(f"publisher namespace {namespace!r} must hold an object")
        return self


class ServerMeta(_OpenObject):
    """The `_meta` of a server.json: only the publisher-provided part has a required shape."""

    publisher_provided: PublisherProvided | None = Field(default=None, alias=PUBLISHER_PROVIDED_KEY)


class ServerDetail(_OpenObject):
    """One server.json (schema 2025-12-11)."""

    schema_url: UriString | None = Field(default=None, alias="$schema")
    name: Annotated[str, StringConstraints(min_length=3, max_length=200, pattern=SERVER_NAME_PATTERN)]
    title: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    description: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    version: Annotated[str, StringConstraints(max_length=255)]
    websiteUrl: UriString | None = None
    repository: Repository | None = None
    icons: list[Icon] | None = None
    packages: list[Package] | None = None
    remotes: list[RemoteTransport] | None = None
    meta: ServerMeta | None = Field(default=None, alias="_meta")

    @field_validator("version")
    @classmethod
    def _specific_version(cls, value: str) -> str:
        return _reject_version_range(value)


# --- document wrappers ----------------------------------------------------------------------------------


class RegistryMeta(_OpenObject):
    last_updated: DateTimeString


class WrappedRegistry(_OpenObject):
    """`{"$schema", "version", "meta": {"last_updated"}, "data": {...}}` (upstream-registry.schema.json).

    Only the envelope is checked here; the servers inside are validated one by one so that problems
    are reported with the entry they belong to.
    """

    schema_url: str | None = Field(default=None, alias="$schema")
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    meta: RegistryMeta
    data: dict[str, Any]


class WrappedGroup(_OpenObject):
    name: str
    description: str
    servers: list[Any]
