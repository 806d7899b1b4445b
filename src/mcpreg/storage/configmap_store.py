"""The ConfigMap backend, writer side: `GenerationWriter` (the write protocol) over `ConfigMapBackend`.

The parts of a split generation are created before the head is replaced (resourceVersion-
conditional, or created when there is none); afterwards the parts only the replaced generation used
are deleted at once, and orphaned parts of crashed writes once they are older than `orphan_grace`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from kubernetes_asyncio.client import ApiClient

from mcpreg.kube import ConfigMapClient
from mcpreg.storage.configmap_backend import CONFIGMAP_RETENTION, DEFAULT_ORPHAN_GRACE, ConfigMapBackend
from mcpreg.storage.configmap_layout import OwnerReference
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodingLimits
from mcpreg.storage.writer import GenerationWriter


class ConfigMapCatalogStore(GenerationWriter):
    """One registry's catalogue in ConfigMaps of its namespace (see `configmap_layout`).

    `api` belongs to the caller. `owner` is put on every object (normally
    `OwnerReference.for_registry(name, uid)`), so garbage collection removes them with the registry.
    """

    backend: ConfigMapBackend

    def __init__(
        self,
        api: ApiClient,
        namespace: str,
        registry: str,
        *,
        owner: OwnerReference | None,
        limits: EncodingLimits = DEFAULT_LIMITS,
        orphan_grace: timedelta = DEFAULT_ORPHAN_GRACE,
        concurrency: int = 4,
        request_timeout: float = 30.0,
    ) -> None:
        client = ConfigMapClient(api, namespace, request_timeout=request_timeout)
        retention = replace(CONFIGMAP_RETENTION, grace=orphan_grace)
        backend = ConfigMapBackend(client, registry, owner, limits, retention, concurrency=concurrency)
        super().__init__(backend)

    @property
    def head_name(self) -> str:
        return self.backend.names.head

    def __repr__(self) -> str:
        return f"ConfigMapCatalogStore({self.backend.namespace}/{self.head_name})"
