"""From a configuration document (`mcpreg.apiconfig.ApiServerConfig`) to a running API server.

`open_reader` is the one place a configuration becomes a catalogue reader (ConfigMaps, S3 or a file);
`run_config` builds the app on it and serves it as `config.http` says. `mcpreg serve` calls nothing else,
whether the document came from `--config FILE` (the API pods) or from its convenience flags.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from mcpreg.apiconfig import ApiServerConfig, SourceSummary
from mcpreg.storage.interfaces import CatalogReader
from mcpreg_api.app import create_app
from mcpreg_api.auth.middleware import Authenticator, ProtectedResource
from mcpreg_api.extensions import RegistryIdentity
from mcpreg_api.metrics import ApiMetrics
from mcpreg_api.server import configure_logging
from mcpreg_api.server import run as run_server
from mcpreg_api.toolhive import ToolHiveRedirect

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient


@dataclass(frozen=True)
class OpenReader:
    reader: CatalogReader
    toolhive_redirect: ToolHiveRedirect | None = None  # S3 presigning: GET /api/v1/registry as a 302


def _not_counted(data: bytes) -> int:
    return 0


@contextlib.asynccontextmanager
async def open_reader(config: ApiServerConfig, *, kubeconfig: str | None = None) -> AsyncIterator[OpenReader]:
    """The reader `config.storage` names, open for the duration of the context. ConfigMaps are read
    with the pod's ServiceAccount in a cluster, else with `kubeconfig` (or $KUBECONFIG); S3 with the
    standard AWS chain (the pod's environment, from the Secret)."""
    storage = config.storage
    if storage.type == "file":
        from mcpreg.storage import FileCatalogReader

        # The API server parses and validates each version itself (keeping the last good one when a
        # version is bad), so the reader need not parse it a second time just to count servers.
        yield OpenReader(
            FileCatalogReader(
                storage.path, poll_interval=storage.poll_interval_seconds, count_servers=_not_counted
            )
        )
    elif storage.type == "s3":
        from mcpreg.storage.s3_config import S3Address
        from mcpreg.storage.s3_reader import S3CatalogReader

        s3 = S3CatalogReader(
            S3Address(storage.settings(), config.namespace, config.registry),
            poll_interval=storage.poll_interval_seconds,
            presign_ttl=storage.presign.ttl_seconds,
        )
        yield OpenReader(s3, s3.presigned_toolhive_url if storage.presign.enabled else None)
    else:
        from mcpreg.storage import ConfigMapAddress, ConfigMapCatalogReader

        async with kube_api(kubeconfig) as api:
            yield OpenReader(ConfigMapCatalogReader(ConfigMapAddress(api, config.namespace, config.registry)))


@contextlib.asynccontextmanager
async def kube_api(kubeconfig: str | None) -> AsyncIterator[ApiClient]:
    """A Kubernetes API client: the pod's ServiceAccount in a cluster, else `kubeconfig` (or $KUBECONFIG)."""
    from kubernetes_asyncio import client
    from kubernetes_asyncio import config as kube_config

    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        await kube_config.load_kube_config(config_file=kubeconfig)
    api = client.ApiClient()
    try:
        yield api
    finally:
        await api.close()


@contextlib.asynccontextmanager
async def open_authenticator(
    config: ApiServerConfig, *, kubeconfig: str | None = None
) -> AsyncIterator[Callable[[ApiMetrics], Authenticator] | None]:
    """What decides who may read, as `config.auth` says (None: anyone may), open for the context."""
    auth = config.auth
    if auth.mode == "oidc" and auth.oidc is not None:
        from mcpreg_api.auth.oidc import OidcAuthenticator

        oidc = auth.oidc

        def build_oidc(metrics: ApiMetrics) -> Authenticator:
            return OidcAuthenticator(oidc, metrics=metrics)

        yield build_oidc
        return
    settings = auth.kubernetes
    if auth.mode != "kubernetes" or settings is None:
        yield None
        return
    from mcpreg.kube import KubeClient
    from mcpreg_api.auth.kubernetes import KubernetesAuthenticator

    async with kube_api(kubeconfig) as api:
        kube = KubeClient(api, request_timeout=settings.review_timeout_seconds)

        def build(metrics: ApiMetrics) -> Authenticator:
            return KubernetesAuthenticator(
                kube, settings, namespace=config.namespace, registry=config.registry, metrics=metrics
            )

        yield build


def protected_resource(config: ApiServerConfig) -> ProtectedResource | None:
    """This API as an OAuth protected resource (RFC 9728), in auth mode oidc."""
    oidc = config.auth.oidc
    if config.auth.mode != "oidc" or oidc is None:
        return None
    return ProtectedResource(resource=oidc.resource or oidc.audience, authorization_servers=(oidc.issuer,))


def registry_identity(config: ApiServerConfig) -> RegistryIdentity:
    """Which registry `config` serves, for the info extension (a file is its own source)."""
    source = config.source
    if source is None and config.storage.type == "file":
        source = SourceSummary(type="file", path=config.storage.path)
    return RegistryIdentity(config.registry, config.namespace, source)


def run_config(config: ApiServerConfig, *, kubeconfig: str | None = None) -> None:
    """Serve the catalogue `config` names until SIGTERM/SIGINT."""
    configure_logging(config.log_level)

    @contextlib.asynccontextmanager
    async def make_app() -> AsyncIterator[web.Application]:
        async with (
            open_reader(config, kubeconfig=kubeconfig) as opened,
            open_authenticator(config, kubeconfig=kubeconfig) as authenticator,
        ):
            yield create_app(
                opened.reader,
                config=config.http,
                toolhive_redirect=opened.toolhive_redirect,
                identity=registry_identity(config),
                authenticator=authenticator,
                realm=config.auth.realm,
                protected_resource=protected_resource(config),
            )

    run_server(make_app, host=config.http.host, port=config.http.port)
