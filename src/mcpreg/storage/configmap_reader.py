"""The ConfigMap backend, reader side: `GenerationReader` (the read protocol) over `ConfigMapBackend`,
following the head with a metadata-only watch."""

from __future__ import annotations

from mcpreg.backoff import Backoff
from mcpreg.storage.configmap_backend import (
    DEFAULT_READ_ATTEMPTS,
    DEFAULT_WATCH_TIMEOUT,
    ConfigMapAddress,
    ConfigMapBackend,
)
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodingLimits
from mcpreg.storage.reader import GenerationReader


class ConfigMapCatalogReader(GenerationReader[ConfigMapBackend]):
    """Reads what `ConfigMapCatalogStore` publishes at `address`."""

    def __init__(
        self,
        address: ConfigMapAddress,
        *,
        limits: EncodingLimits = DEFAULT_LIMITS,
        concurrency: int = 4,
        watch_timeout: int = DEFAULT_WATCH_TIMEOUT,
        read_attempts: int = DEFAULT_READ_ATTEMPTS,
        backoff: Backoff | None = None,
    ) -> None:
        backoff = backoff or Backoff()
        backend = ConfigMapBackend(
            address,
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
