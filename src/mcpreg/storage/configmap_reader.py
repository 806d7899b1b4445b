"""The ConfigMap backend, reader side: `GenerationReader` (the read protocol) over `ConfigMapBackend`,
following the head with a metadata-only watch."""

from __future__ import annotations

from kubernetes_asyncio.client import ApiClient

from mcpreg.backoff import Backoff
from mcpreg.kube import ConfigMapClient
from mcpreg.storage.configmap_backend import DEFAULT_WATCH_TIMEOUT, ConfigMapBackend
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodingLimits
from mcpreg.storage.reader import GenerationReader

# Each retry of the same head waits longer; with the default backoff, 6 attempts span about 6 s,
# ample for RBAC to catch up with a widened Role.
DEFAULT_READ_ATTEMPTS = 6


class ConfigMapCatalogReader(GenerationReader):
    """Reads what `ConfigMapCatalogStore` publishes for `registry` in `namespace`."""

    backend: ConfigMapBackend

    def __init__(
        self,
        api: ApiClient,
        namespace: str,
        registry: str,
        *,
        limits: EncodingLimits = DEFAULT_LIMITS,
        concurrency: int = 4,
        request_timeout: float = 30.0,
        watch_timeout: int = DEFAULT_WATCH_TIMEOUT,
        read_attempts: int = DEFAULT_READ_ATTEMPTS,
        backoff: Backoff | None = None,
    ) -> None:
        backoff = backoff or Backoff()
        client = ConfigMapClient(api, namespace, request_timeout=request_timeout)
        backend = ConfigMapBackend(
            client,
            registry,
            None,
            limits=limits,
            concurrency=concurrency,
            watch_timeout=watch_timeout,
            backoff=backoff,
        )
        super().__init__(backend, limits=limits, read_attempts=read_attempts, backoff=backoff)

    @property
    def head_name(self) -> str:
        return self.backend.names.head

    def __repr__(self) -> str:
        return f"ConfigMapCatalogReader({self.backend.namespace}/{self.head_name})"
