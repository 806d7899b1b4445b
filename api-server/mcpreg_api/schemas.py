"""The shapes of every response body, as pydantic models.

They are the one source of the OpenAPI document's schemas and what the tests decode responses with.
Hot paths do not build them: responses are precomputed bytes (see `snapshot`) that these models
describe. `extra="allow"` marks the places where a catalogue carries more than the API promises
(server.json has many optional fields; `_meta` may carry publisher extensions).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from mcpreg.catalog.provenance import PROVENANCE_META_KEY, EntriesManifest, ProvenanceBlock

OFFICIAL_META_KEY = "io.modelcontextprotocol.registry/official"

Status = Literal["active", "deprecated", "deleted"]


class ServerJSON(BaseModel):
    """A server.json document (schema 2025-12-11); only the fields every entry has are spelled out."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Annotated[str | SkipJsonSchema[None], Field(alias="$schema")] = None
    name: Annotated[str, Field(description="Server name in reverse-DNS form, e.g. io.github.acme/weather")]
    version: Annotated[str, Field(description="Version of this server entry")]
    description: str | SkipJsonSchema[None] = None
    title: str | SkipJsonSchema[None] = None


class OfficialMeta(BaseModel):
    """Registry facts about one server version."""

    model_config = ConfigDict(extra="allow")

    status: Status
    publishedAt: AwareDatetime | SkipJsonSchema[None] = None
    updatedAt: AwareDatetime | SkipJsonSchema[None] = None
    isLatest: bool


class ResponseMeta(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    official: Annotated[OfficialMeta, Field(alias=OFFICIAL_META_KEY)]
    provenance: Annotated[
        ProvenanceBlock | SkipJsonSchema[None],
        Field(
            alias=PROVENANCE_META_KEY,
            description="Where to verify this entry (our extension; only when the catalogue is signed): "
            "its digest, the generation, the key, and the signed entries manifest that names the digest",
        ),
    ] = None


class ServerResponse(BaseModel):
    """One server version: `{"server": server.json, "_meta": {...official...}}`."""

    model_config = ConfigDict(populate_by_name=True)

    server: ServerJSON
    meta: Annotated[ResponseMeta, Field(alias="_meta")]


class ListMetadata(BaseModel):
    nextCursor: Annotated[
        str | SkipJsonSchema[None],
        Field(
            description="Opaque cursor for the next page; absent on the last page. Pass it back unchanged."
        ),
    ] = None
    count: Annotated[int, Field(ge=0, description="Number of entries in this page")]


class ServerListResponse(BaseModel):
    servers: list[ServerResponse]
    metadata: ListMetadata


class ProblemDetail(BaseModel):
    location: Annotated[str, Field(description="Where the problem is, e.g. query.limit or path.name")]
    message: str
    value: str | SkipJsonSchema[None] = None


class Problem(BaseModel):
    """An error (RFC 9457 problem details)."""

    title: str
    status: Annotated[int, Field(ge=400, le=599)]
    detail: str
    errors: list[ProblemDetail] | SkipJsonSchema[None] = None


class ToolHiveRegistry(BaseModel):
    """The whole catalogue in ToolHive's registry format (latest version of each server)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Annotated[str | SkipJsonSchema[None], Field(alias="$schema")] = None
    version: str
    last_updated: str
    servers: dict[str, dict[str, Any]]
    remote_servers: dict[str, dict[str, Any]]
    groups: list[dict[str, Any]] | SkipJsonSchema[None] = None


class Health(BaseModel):
    status: Literal["ok"]


class CatalogInfo(BaseModel):
    contentHash: str
    revision: str
    servers: Annotated[int, Field(ge=0, description="Distinct server names")]
    entries: Annotated[int, Field(ge=0, description="Server versions")]
    loadedAt: AwareDatetime
    storedAt: AwareDatetime


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    detail: str | SkipJsonSchema[None] = None
    catalog: CatalogInfo | SkipJsonSchema[None] = None


class VersionInfo(BaseModel):
    version: Annotated[str, Field(description="Version of the mcpreg registry API server")]
    api_versions: list[str]
    catalog: CatalogInfo | SkipJsonSchema[None] = None


class InfoRegistry(BaseModel):
    name: Annotated[str, Field(description="The MCPRegistry's name")]
    namespace: Annotated[str, Field(description="Its Kubernetes namespace")]


class InfoSource(BaseModel):
    """Where the catalogue is read from (fields of other source types are absent)."""

    type: Literal["git", "configmap", "file"]
    repository: str | SkipJsonSchema[None] = None
    ref: Annotated[str | SkipJsonSchema[None], Field(description="Branch, tag or commit followed")] = None
    path: str | SkipJsonSchema[None] = None
    configMap: str | SkipJsonSchema[None] = None
    key: str | SkipJsonSchema[None] = None


class InfoGeneration(BaseModel):
    contentHash: Annotated[str, Field(description="sha256: of the stored generation")]
    storedAt: AwareDatetime
    loadedAt: AwareDatetime


class InfoCounts(BaseModel):
    servers: Annotated[int, Field(ge=0, description="Distinct server names")]
    versions: Annotated[int, Field(ge=0, description="Server versions, deleted ones included")]
    active: Annotated[int, Field(ge=0)]
    deprecated: Annotated[int, Field(ge=0)]
    deleted: Annotated[int, Field(ge=0)]


class InfoServer(BaseModel):
    version: Annotated[str, Field(description="Version of the mcpreg registry API server")]


class InfoSigning(BaseModel):
    keyId: Annotated[str, Field(description="sha256: of the public key's DER (SubjectPublicKeyInfo)")]
    keyUrl: Annotated[str, Field(description="Path of the public key (PEM) that signed this generation")]
    documents: Annotated[
        dict[str, str], Field(description="Each signed document's path → the path of its signature")
    ]


class RegistryInfo(BaseModel):
    """`GET /v0.1/x/dev.mcpregistry/info`: this registry, its source and the generation served."""

    model_config = ConfigDict(extra="allow")  # fields may be added

    registry: Annotated[InfoRegistry | None, Field(description="null when serving a local file")]
    source: Annotated[InfoSource | None, Field(description="null when not known")]
    revision: Annotated[str, Field(description="Source revision of the generation (a git commit, ...)")]
    generation: InfoGeneration
    counts: InfoCounts
    server: InfoServer
    signing: Annotated[InfoSigning | None, Field(description="null when the catalogue is not signed")] = None


ALL_MODELS: tuple[type[BaseModel], ...] = (
    ServerJSON,
    OfficialMeta,
    ResponseMeta,
    ServerResponse,
    ListMetadata,
    ServerListResponse,
    ProblemDetail,
    Problem,
    ToolHiveRegistry,
    Health,
    CatalogInfo,
    Readiness,
    VersionInfo,
    RegistryInfo,
    ProvenanceBlock,
    EntriesManifest,
)
