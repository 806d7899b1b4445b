"""The registry API server's configuration: one document, written by the operator, read by `mcpreg serve`.

The operator renders it from an MCPRegistry's spec into the ConfigMap `<registry>-api-config`, mounted
into the API pods; `mcpreg serve --config FILE` reads it (or builds it from its convenience flags) and
runs from it alone. Nothing secret goes in it: S3 credentials reach the API pods as environment variables
from the Secret, by reference.

    {"apiVersion": "mcpregistry.dev/v1alpha1", "kind": "ApiServerConfig",
     "registry": "company", "namespace": "team-a",
     "storage": {"type": "s3", "bucket": "mcp-registries", "prefix": "catalogues",
                 "endpoint": "http://minio.storage:9000", "forcePathStyle": true},
     "http": {"host": "0.0.0.0", "port": 8080, "limits": {"drainSeconds": 5}}}

Fields are camelCase on the wire; an unknown field is an error naming it (a typo in a hand-written file
must not be ignored), and every omitted field has the default shown by `ApiServerConfig` itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from mcpreg.storage.s3_config import S3Settings

API_VERSION = "mcpregistry.dev/v1alpha1"
KIND = "ApiServerConfig"


class _ConfigModel(BaseModel):
    # camelCase on the wire, snake_case in Python; an unknown field is an error, not ignored.
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True, extra="forbid", frozen=True
    )


# --- storage: where the catalogue is read from --------------------------------------------------------


class ConfigMapStorageConfig(_ConfigModel):
    """The ConfigMaps the operator stored for `registry` in `namespace` (head `<registry>-data` and
    its parts), read and watched through the Kubernetes API with the pod's ServiceAccount."""

    type: Literal["configmap"] = "configmap"


class PresignConfig(_ConfigModel):
    """Answer `GET /api/v1/registry` with a 302 to a presigned S3 download instead of the bytes."""

    enabled: bool = False
    ttl_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)  # S3's longest presigned lifetime


class S3StorageConfig(_ConfigModel):
    """The objects the operator stored for `registry` under `<prefix>/<namespace>/<registry>/` in an
    S3-compatible bucket. Reading needs no encryption settings: S3 decrypts SSE-S3 and SSE-KMS objects
    for any reader allowed to."""

    type: Literal["s3"]
    bucket: str = Field(min_length=1, max_length=63)
    prefix: str = ""
    endpoint: str = ""  # empty: AWS
    region: str = ""  # empty: the client's default
    force_path_style: bool = False
    poll_interval_seconds: float = Field(default=10.0, gt=0)  # how often the head pointer is checked
    presign: PresignConfig = PresignConfig()

    @model_validator(mode="after")
    def _addressable(self) -> S3StorageConfig:
        self.settings()  # S3Settings holds the rules on bucket and prefix; its ValueError names the field
        return self

    def settings(self) -> S3Settings:
        """How to reach the bucket: the one mapping from this configuration to the storage layer."""
        return S3Settings(
            bucket=self.bucket,
            prefix=self.prefix,
            endpoint=self.endpoint,
            region=self.region,
            force_path_style=self.force_path_style,
        )


class FileStorageConfig(_ConfigModel):
    """A local catalogue file (ToolHive or upstream format), re-read when it changes: for local use."""

    type: Literal["file"]
    path: str = Field(min_length=1)
    poll_interval_seconds: float = Field(default=1.0, gt=0)


StorageConfig = Annotated[
    ConfigMapStorageConfig | S3StorageConfig | FileStorageConfig, Field(discriminator="type")
]
STORAGE_TYPES = ("configmap", "s3", "file")


# --- http: how the API answers ------------------------------------------------------------------------


class HttpLimits(_ConfigModel):
    """Bounds on what a client may send and how long it may take (aiohttp enforces the first three).

    A request line longer than `max_line_size`, a header longer than `max_field_size` or more than
    `max_headers` headers are refused (400/431) before any handler runs. `keepalive_timeout_seconds`
    closes a connection that has not completed a request within that time of opening or of its previous
    response - idle, or dribbling its headers byte by byte (aiohttp does not reset it on partial input),
    so a slow client cannot hold connections open. Handlers never wait on anything (every answer is
    precomputed), so they need no time limit of their own. `shutdown_timeout_seconds` is how long
    requests in flight may take to finish on shutdown. `drain_seconds` is how long the server keeps
    answering after SIGTERM before it closes its listener, with `/readiness` at 503 and every response
    closing its connection: a Service routes new requests elsewhere once its endpoints are updated,
    which takes a moment after a pod is told to stop (0: close at once, for local use).
    """

    max_line_size: int = Field(default=16384, ge=1)  # every parameter at its documented maximum, encoded
    max_field_size: int = Field(default=8190, ge=1)
    max_headers: int = Field(default=64, ge=1)
    keepalive_timeout_seconds: float = Field(default=20.0, gt=0)
    shutdown_timeout_seconds: float = Field(default=10.0, ge=0)
    drain_seconds: float = Field(default=0.0, ge=0)


class AccessLogConfig(_ConfigModel):
    """One JSON line per request on stdout (see `mcpreg_api.accesslog`), buffered for at most
    `flush_interval_seconds` (0: each line written at once)."""

    enabled: bool = True
    flush_interval_seconds: float = Field(default=1.0, ge=0)


CORS_ANY_ORIGIN = "*"
# An origin as browsers send it: scheme, host and optional port; no path, no trailing slash.
CORS_ORIGIN_RE = r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?"


class CorsConfig(_ConfigModel):
    """Which web pages (origins) may read the API from a browser, e.g. an MCP client inside an IDE.

    `allowed_origins`: `*` (any page; the default, right for a registry anyone may read) or a list of
    origins such as `https://vscode.dev`; an empty list turns CORS off (browsers then refuse cross-origin
    reads). `allow_credentials`: answer credentialed requests (cookies, Authorization) too; browsers
    refuse that with `*`, so it requires an explicit list, and each answer names the caller's origin.
    `max_age_seconds`: how long a browser may reuse a preflight answer.
    """

    allowed_origins: tuple[str, ...] = Field(default=(CORS_ANY_ORIGIN,), max_length=64)
    allow_credentials: bool = False
    max_age_seconds: int = Field(default=600, ge=0, le=86400)

    @model_validator(mode="after")
    def _consistent(self) -> CorsConfig:
        for origin in self.allowed_origins:
            if origin != CORS_ANY_ORIGIN and not re.fullmatch(CORS_ORIGIN_RE, origin):
                raise ValueError(
                    f"allowedOrigins: {origin!r} is not '*' or an origin such as https://example.com "
                    "(scheme, host and optional port; no path)"
                )
        if CORS_ANY_ORIGIN in self.allowed_origins and len(self.allowed_origins) > 1:
            raise ValueError("allowedOrigins: '*' already allows every origin; list it alone")
        if self.allow_credentials and CORS_ANY_ORIGIN in self.allowed_origins:
            raise ValueError("allowCredentials needs an explicit list of allowedOrigins: browsers refuse '*'")
        return self

    @property
    def any_origin(self) -> bool:
        return CORS_ANY_ORIGIN in self.allowed_origins


class HttpConfig(_ConfigModel):
    """Where the API listens and how it answers.

    `cache_max_age_seconds`: how long clients and proxies may reuse a catalogue response without asking
    again (after that they revalidate with If-None-Match and get a 304 when nothing changed).
    """

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port
    cache_max_age_seconds: int = Field(default=30, ge=0)
    access_log: AccessLogConfig = AccessLogConfig()
    limits: HttpLimits = HttpLimits()
    cors: CorsConfig = CorsConfig()

    @property
    def data_cache_control(self) -> str:
        return f"public, max-age={self.cache_max_age_seconds}"


# --- auth: who may read -----------------------------------------------------------------------------

# What a RoleBinding grants to let a caller read a registry's catalogue (docs/api-auth.md): verb `get`
# on the subresource `mcpregistries/catalog`, with resourceName the registry, in its namespace.
CATALOG_GROUP = "mcpregistry.dev"
CATALOG_RESOURCE = "mcpregistries"
CATALOG_SUBRESOURCE = "catalog"
CATALOG_VERB = "get"


def default_audience(namespace: str, registry: str) -> str:
    """The audience tokens must be issued for unless the spec names one: one per registry, so a token
    for one registry (or for the Kubernetes API itself) opens no other."""
    return f"{CATALOG_GROUP}/{namespace}/{registry}"


class KubernetesAuthConfig(_ConfigModel):
    """Bearer tokens reviewed by the Kubernetes API server (TokenReview for `audience`), their subject
    authorized by RBAC (a LocalSubjectAccessReview of `get` on `mcpregistries/catalog` named after the
    registry, in its namespace). Decisions are cached for `cache_ttl_seconds`, at most
    `cache_max_entries` tokens; a review taking longer than `review_timeout_seconds` answers 503."""

    audience: str = Field(min_length=1, max_length=253)
    cache_ttl_seconds: float = Field(default=10.0, gt=0, le=300)
    cache_max_entries: int = Field(default=10000, ge=1)
    review_timeout_seconds: float = Field(default=5.0, gt=0)


class OidcAuthConfig(_ConfigModel):
    """JWTs of an OpenID Connect issuer, verified by the API itself: the issuer's keys found through its
    discovery document (`discovery_url`, default `<issuer>/.well-known/openid-configuration`; its
    `issuer` must be `issuer`), `aud` must hold `audience`, `exp` must not be past, and each of
    `required_claims` must equal its value. The caller is the `username_claim` claim. `ca_bundle`: PEM
    certificates to trust for discovery and keys (empty: the system's). The keys are fetched again
    for a token signed by an unknown key, at most every `jwks_refresh_seconds`. `resource`: this API's
    identifier in its RFC 9728 metadata (default: the audience)."""

    issuer: str = Field(min_length=1, max_length=2048, pattern=r"^https://")
    audience: str = Field(min_length=1, max_length=253)
    discovery_url: str = Field(default="", max_length=2048, pattern=r"^(https?://.*)?$")
    ca_bundle: str = Field(default="", max_length=256 * 1024)
    username_claim: str = Field(default="sub", min_length=1)
    required_claims: dict[str, str] = Field(default_factory=dict, max_length=32)
    cache_ttl_seconds: float = Field(default=60.0, gt=0, le=3600)
    cache_max_entries: int = Field(default=10000, ge=1)
    jwks_refresh_seconds: float = Field(default=30.0, ge=0)
    fetch_timeout_seconds: float = Field(default=5.0, gt=0)
    resource: str = Field(default="", max_length=2048)

    @property
    def discovery(self) -> str:
        return self.discovery_url or self.issuer.rstrip("/") + "/.well-known/openid-configuration"


class AuthConfig(_ConfigModel):
    """Who may read: `anonymous` (anyone; the default), `kubernetes` or `oidc` (their settings under
    their name). /health, /readiness and /metrics always answer without credentials."""

    mode: Literal["anonymous", "kubernetes", "oidc"] = "anonymous"
    kubernetes: KubernetesAuthConfig | None = None
    oidc: OidcAuthConfig | None = None

    @model_validator(mode="after")
    def _settings_of_mode(self) -> AuthConfig:
        if self.mode == "kubernetes" and self.kubernetes is None:
            raise ValueError("mode kubernetes needs its settings in auth.kubernetes (the audience)")
        if self.mode == "oidc" and self.oidc is None:
            raise ValueError("mode oidc needs its settings in auth.oidc (issuer and audience)")
        return self

    @property
    def realm(self) -> str:
        """What 401 challenges name: the audience tokens must be issued for."""
        if self.mode == "kubernetes" and self.kubernetes is not None:
            return self.kubernetes.audience
        if self.mode == "oidc" and self.oidc is not None:
            return self.oidc.audience
        return ""


# --- source: what the catalogue is read from, for the info document ----------------------------------


class SourceSummary(_ConfigModel):
    """Where the operator reads the catalogue from, as `/v0.1/x/dev.mcpregistry/info` tells clients:
    a git repository (URL without credentials, ref, path), a ConfigMap (name, key) or a file (path).
    Never a credential: the CRD refuses URLs with credentials, and auth Secrets are not named."""

    type: Literal["git", "configmap", "file"]
    repository: str = ""
    ref: str = ""  # the branch, tag or commit followed (git)
    path: str = ""  # in the repository (git), or the file (file)
    config_map: str = ""
    key: str = ""


# --- the document -------------------------------------------------------------------------------------


class ApiServerConfig(_ConfigModel):
    """Everything the registry API server runs with, but credentials."""

    api_version: Literal["mcpregistry.dev/v1alpha1"]
    kind: Literal["ApiServerConfig"]
    registry: str = Field(default="", max_length=253)  # the MCPRegistry served (not for file storage)
    namespace: str = Field(default="", max_length=63)  # its namespace (not for file storage)
    storage: StorageConfig
    source: SourceSummary | None = None  # reported by the info extension; absent: not known
    http: HttpConfig = HttpConfig()
    auth: AuthConfig = AuthConfig()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _names_what_it_serves(self) -> ApiServerConfig:
        if self.storage.type != "file" and not (self.registry and self.namespace):
            raise ValueError(f"registry and namespace are required with {self.storage.type} storage")
        if self.auth.mode == "kubernetes" and not (self.registry and self.namespace):
            raise ValueError(
                "registry and namespace are required with auth mode kubernetes (RBAC names them)"
            )
        return self

    def document(self) -> dict[str, Any]:
        """The document as JSON data, every field spelled out (defaults too): what a reader sees."""
        return self.model_dump(mode="json")


class ApiConfigError(Exception):
    """A configuration document that cannot be used: `source` (a file name), the `field` that is wrong
    (empty when the whole document is) and why. One line, for a person."""

    def __init__(self, source: str, field: str, message: str) -> None:
        super().__init__(f"{source}: {field}: {message}" if field else f"{source}: {message}")
        self.source, self.field, self.message = source, field, message


def describe(error: ValidationError) -> list[tuple[str, str]]:
    """Each problem as (field path in wire names, message), e.g. ("http.cacheMaxAge", "unknown field").
    The union's tag pydantic puts in the path (storage.s3.bucket) is left out: the document has none.
    Unknown fields come first: a misspelt field explains the required one said to be missing."""
    problems: list[tuple[str, str]] = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        of = ""
        if len(loc) > 1 and loc[0] == "storage" and loc[1] in STORAGE_TYPES:
            of = f" of {loc.pop(1)} storage"
        message = f"unknown field{of}" if item["type"] == "extra_forbidden" else str(item["msg"])
        problems.append((".".join(loc), message.removeprefix("Value error, ")))
    return sorted(problems, key=lambda problem: not problem[1].startswith("unknown field"))


def parse_config(data: Any, source: str) -> ApiServerConfig:
    """`data` (a parsed document) validated; `ApiConfigError` names `source` and the first bad field."""
    try:
        return ApiServerConfig.model_validate(data)
    except ValidationError as exc:
        problems = describe(exc)
        field, message = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ApiConfigError(source, field, message + more) from None


def load_config(path: Path | str) -> ApiServerConfig:
    """The document in file `path` (JSON, or YAML for hand-written files), validated."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiConfigError(
            str(path), "", f"cannot read it: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise ApiConfigError(str(path), "", f"not JSON or YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ApiConfigError(
            str(path), "", f"not an {KIND} document (an object with apiVersion {API_VERSION})"
        )
    return parse_config(data, str(path))
