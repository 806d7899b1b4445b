"""The API pods' configuration document (`mcpreg.apiconfig.ApiServerConfig`), rendered from an
MCPRegistry's spec in one place: `render_api_config`. The workload puts it in the ConfigMap
`<registry>-api-config`, mounted at `API_CONFIG_PATH`; the pods run `mcpreg serve --config API_CONFIG_PATH`.
"""

from __future__ import annotations

from mcpreg.apiconfig import (
    API_VERSION,
    KIND,
    ApiServerConfig,
    AuthConfig,
    ConfigMapStorageConfig,
    CorsConfig,
    HttpConfig,
    HttpLimits,
    KubernetesAuthConfig,
    OidcAuthConfig,
    S3StorageConfig,
    SourceSummary,
    default_audience,
)
from mcpreg_operator.spec.api import Cors
from mcpreg_operator.spec.api_auth import ApiAuth, AuthMode
from mcpreg_operator.spec.identity import API_PORT
from mcpreg_operator.spec.source import Source, SourceType
from mcpreg_operator.spec.storage import S3Storage, Storage, StorageType

__all__ = ["API_PORT"]  # re-exported: where the workload's other ports and paths are
# Endpoints are removed from the Service a moment after a pod is told to stop: keep answering (not
# ready) meanwhile, so a rollout or a scale-down drops no request.
API_DRAIN_SECONDS = 5
API_CONFIG_DIR = "/etc/mcpreg/api"
API_CONFIG_KEY = "config.json"
API_CONFIG_PATH = f"{API_CONFIG_DIR}/{API_CONFIG_KEY}"


def s3_reader_storage(s3: S3Storage) -> S3StorageConfig:
    """Where the API reads an S3 catalogue: the addressing of `spec.storage.s3` (also what the
    operator's own store starts from, so both sides always name the same objects)."""
    return S3StorageConfig(
        type="s3",
        bucket=s3.bucket,
        prefix=s3.prefix,
        endpoint=s3.endpoint,
        region=s3.region,
        force_path_style=s3.force_path_style,
    )


def cors_config(cors: Cors) -> CorsConfig:
    """`spec.api.cors` as the API server takes it (the CRD's rules already hold: this cannot fail)."""
    return CorsConfig(
        allowed_origins=tuple(cors.allowed_origins),
        allow_credentials=cors.allow_credentials,
        max_age_seconds=cors.max_age_seconds,
    )


def auth_config(auth: ApiAuth, registry: str, namespace: str) -> AuthConfig:
    """`spec.api.auth` as the API server takes it, the default audience resolved."""
    if auth.mode is AuthMode.KUBERNETES:
        return AuthConfig(
            mode="kubernetes",
            kubernetes=KubernetesAuthConfig(
                audience=auth.kubernetes.audience or default_audience(namespace, registry),
                cache_ttl_seconds=auth.kubernetes.cache_ttl_seconds,
            ),
        )
    if auth.mode is AuthMode.OIDC and auth.oidc is not None:
        oidc = auth.oidc
        return AuthConfig(
            mode="oidc",
            oidc=OidcAuthConfig(
                issuer=oidc.issuer,
                audience=oidc.audience,
                discovery_url=oidc.discovery_url,
                ca_bundle=oidc.ca_bundle,
                username_claim=oidc.username_claim,
                required_claims=dict(oidc.required_claims),
                cache_ttl_seconds=oidc.cache_ttl_seconds,
                resource=oidc.resource,
            ),
        )
    return AuthConfig()


def source_summary(source: Source) -> SourceSummary | None:
    """What the info extension says of `spec.source`: addressing only, never the auth Secret."""
    if source.type is SourceType.GIT and source.git is not None:
        git = source.git
        return SourceSummary(
            type="git",
            repository=git.repository,
            ref=git.branch or git.tag or git.commit or "HEAD",
            path=git.path,
        )
    if source.type is SourceType.CONFIGMAP and source.config_map is not None:
        return SourceSummary(type="configmap", config_map=source.config_map.name, key=source.config_map.key)
    return None


def render_api_config(
    registry: str,
    namespace: str,
    storage: Storage,
    *,
    source: Source | None = None,
    cors: Cors | None = None,
    auth: ApiAuth | None = None,
) -> ApiServerConfig:
    """The document the API pods of MCPRegistry `namespace/registry` run with (`spec.storage`,
    `spec.source`, `spec.api.cors` and `spec.api.auth` of it)."""
    reads: ConfigMapStorageConfig | S3StorageConfig = ConfigMapStorageConfig()
    if storage.type is StorageType.S3 and storage.s3 is not None:
        reads = s3_reader_storage(storage.s3)
    return ApiServerConfig(
        api_version=API_VERSION,
        kind=KIND,
        registry=registry,
        namespace=namespace,
        storage=reads,
        source=source_summary(source) if source is not None else None,
        http=HttpConfig(
            host="0.0.0.0",
            port=API_PORT,
            limits=HttpLimits(drain_seconds=API_DRAIN_SECONDS),
            cors=cors_config(cors or Cors()),
        ),
        auth=auth_config(auth or ApiAuth(), registry, namespace),
    )
