"""Pydantic models of ToolHive's registry format (`toolhive-legacy-registry.schema.json`).

The models follow the JSON Schema field for field: the same required fields, enums, patterns, lengths
and `additionalProperties: false` (extra="forbid"), so that whatever they accept also passes the real
schema. Optional fields default to None and are left out when serialising, which keeps a round trip
byte-for-byte faithful to what the author wrote (an explicit `secret: false` stays, an absent one stays
absent).
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from mcpreg.catalog.fieldtypes import (
    AllowedHostString,
    DateTimeString,
    HostnameString,
    Port,
    UriString,
    unique_list_validator,
)

# Strict: a catalogue that says "stars": "12" or "required": "yes" is wrong, not something to coerce.
_MODEL_CONFIG = ConfigDict(extra="forbid", strict=True, frozen=True)


class _ToolHiveObject(BaseModel):
    """Base of every ToolHive object: the schema has no nullable fields, so null is refused.

    pydantic would otherwise accept `"secret": null` for an optional field; the real schema does not,
    and a converted or served copy would carry the null on.
    """

    model_config = _MODEL_CONFIG

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, data: Any) -> Any:
        if type(data) is dict and None in data.values():
            nulls = ", ".join(repr(key) for key, value in data.items() if value is None)
            raise ValueError(f"fields must not be null (found null in {nulls})")
        return data


SERVER_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]+[a-z0-9]$"
GROUP_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"
TAG_PATTERN = r"^[a-z0-9][a-z0-9_-]*[a-z0-9]$"
# JSON Schema's \w is ASCII-only; spelled out because Python's and Rust's \w also match Unicode letters.
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
ENV_VAR_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
HEADER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]*$"
MOUNT_PATH_PATTERN = r"^(/[^/\x00]+)+/?$"
IMAGE_PATTERN = (
    r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*"
    r"(:([a-zA-Z0-9][a-zA-Z0-9._-]*))?$"
)
REGISTRY_VERSION_PATTERN = r"^\d+\.\d+\.\d+$"

ServerName = Annotated[str, StringConstraints(pattern=SERVER_NAME_PATTERN)]
Tier = Literal["Official", "Community"]
Status = Literal["Active", "Deprecated"]
ContainerTransport = Literal["stdio", "sse", "streamable-http"]
RemoteTransport = Literal["sse", "streamable-http"]

ToolList = Annotated[
    list[Annotated[str, StringConstraints(pattern=TOOL_NAME_PATTERN)]],
    Field(min_length=1),
    unique_list_validator(),
]
TagList = Annotated[
    list[Annotated[str, StringConstraints(pattern=TAG_PATTERN)]],
    Field(min_length=1),
    unique_list_validator(),
]
MountPathList = Annotated[
    list[Annotated[str, StringConstraints(pattern=MOUNT_PATH_PATTERN)]], unique_list_validator()
]
Description = Annotated[str, StringConstraints(min_length=10, max_length=500)]
ShortDescription = Annotated[str, StringConstraints(min_length=5, max_length=200)]


NameT = TypeVar("NameT")


class _Setting(_ToolHiveObject, Generic[NameT]):
    """A value the user may have to give the server: an environment variable or an HTTP header."""

    name: NameT
    description: ShortDescription
    required: bool
    secret: bool | None = None
    default: str | None = None


class EnvVar(_Setting[Annotated[str, StringConstraints(pattern=ENV_VAR_NAME_PATTERN)]]):
    """An environment variable the server reads."""


class Header(_Setting[Annotated[str, StringConstraints(pattern=HEADER_NAME_PATTERN)]]):
    """An HTTP header a remote server expects (usually for authentication)."""

    choices: Annotated[list[str], unique_list_validator()] | None = None


HostT = TypeVar("HostT")


class OutboundRules(BaseModel, Generic[HostT]):
    """Where a server may connect: the same rules in ToolHive's format and in its publisher extension
    of server.json, whose host pattern is looser (`HostT`)."""

    model_config = _MODEL_CONFIG

    allow_host: Annotated[list[HostT], unique_list_validator()] | None = None
    allow_port: Annotated[list[Port], unique_list_validator()] | None = None
    insecure_allow_all: bool | None = None


class OutboundPermissions(_ToolHiveObject, OutboundRules[AllowedHostString]):
    """ToolHive's outbound rules (no nulls, its own host pattern)."""


OutboundT = TypeVar("OutboundT")


class NetworkRules(BaseModel, Generic[OutboundT]):
    """The network part of a server's permissions (only outbound rules so far), in either form."""

    model_config = _MODEL_CONFIG

    outbound: OutboundT | None = None


class NetworkPermissions(_ToolHiveObject, NetworkRules[OutboundPermissions]):
    """ToolHive's network permissions (no nulls)."""


class Permissions(_ToolHiveObject):
    """What the container may touch: network destinations and host paths."""

    network: NetworkPermissions | None = None
    read: MountPathList | None = None
    write: MountPathList | None = None
    privileged: bool | None = None


class Metadata(_ToolHiveObject):
    """Popularity figures gathered by the catalogue's maintainers."""

    last_updated: DateTimeString | None = None
    pulls: Annotated[int, Field(ge=0)] | None = None
    stars: Annotated[int, Field(ge=0)] | None = None


class VerifiedAttestation(_ToolHiveObject):
    predicate_type: UriString | None = None
    predicate: Any = None


AttestationT = TypeVar("AttestationT")


class ProvenanceFacts(BaseModel, Generic[AttestationT]):
    """Supply-chain facts used to verify the image's signature: the same fields in ToolHive's registry
    format and in its publisher extension of server.json, which differ only in `attestation`."""

    model_config = _MODEL_CONFIG

    cert_issuer: UriString | None = None
    repository_uri: UriString | None = None
    repository_ref: str | None = None
    runner_environment: str | None = None
    signer_identity: str | None = None
    sigstore_url: HostnameString | None = None
    attestation: AttestationT | None = None


class Provenance(_ToolHiveObject, ProvenanceFacts[VerifiedAttestation]):
    """ToolHive's provenance (no nulls, a typed attestation)."""


class ContainerServer(_ToolHiveObject):
    """A server ToolHive runs from a container image (an entry of `servers`)."""

    name: str | None = None
    description: Description
    tier: Tier
    status: Status
    transport: ContainerTransport
    tools: ToolList
    image: Annotated[str, StringConstraints(pattern=IMAGE_PATTERN)]
    target_port: Port | None = None
    proxy_port: Port | None = None
    args: list[str] | None = None
    env_vars: list[EnvVar] | None = None
    permissions: Permissions | None = None
    provenance: Provenance | None = None
    docker_tags: Annotated[list[str], unique_list_validator()] | None = None
    metadata: Metadata | None = None
    repository_url: UriString | None = None
    tags: TagList | None = None
    custom_metadata: dict[str, Any] | None = None


class OAuthConfig(_ToolHiveObject):
    """How a client authenticates to a remote server."""

    issuer: UriString | None = None
    authorize_url: UriString | None = None
    token_url: UriString | None = None
    client_id: str | None = None
    scopes: list[str] | None = None
    use_pkce: bool | None = None
    oauth_params: dict[str, str] | None = None
    callback_port: Port | None = None
    resource: str | None = None


class RemoteServer(_ToolHiveObject):
    """A server reached over HTTP at a URL (an entry of `remote_servers`)."""

    name: str | None = None
    url: UriString
    description: Description
    tier: Tier
    status: Status
    transport: RemoteTransport
    tools: ToolList
    headers: list[Header] | None = None
    oauth_config: OAuthConfig | None = None
    env_vars: list[EnvVar] | None = None
    metadata: Metadata | None = None
    repository_url: UriString | None = None
    tags: TagList | None = None
    custom_metadata: dict[str, Any] | None = None


ToolHiveServer = ContainerServer | RemoteServer


class Group(_ToolHiveObject):
    """Servers meant to be deployed together."""

    name: Annotated[str, StringConstraints(pattern=GROUP_NAME_PATTERN, min_length=1, max_length=100)]
    description: Description
    servers: dict[ServerName, ContainerServer] | None = None
    remote_servers: dict[ServerName, RemoteServer] | None = None


class ToolHiveRegistry(BaseModel):
    """The whole ToolHive registry document.

    The schema leaves the top level open (no `additionalProperties: false`), so unknown top-level keys
    are kept (extra="allow") and written back unchanged.
    """

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, populate_by_name=True)

    schema_url: str | None = Field(default=None, alias="$schema")
    version: Annotated[str, StringConstraints(pattern=REGISTRY_VERSION_PATTERN)]
    last_updated: DateTimeString
    servers: dict[ServerName, ContainerServer]
    remote_servers: dict[ServerName, RemoteServer] | None = None
    groups: list[Group] | None = None


def dump_toolhive(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a ToolHive model: absent optional fields stay absent."""
    return model.model_dump(mode="python", by_alias=True, exclude_none=True)
