"""The ConfigMap backend, writer side: `GenerationWriter` (the write protocol) over `ConfigMapBackend`.

The parts of a split generation are created before the head is replaced (resourceVersion-
conditional, or created when there is none); afterwards the parts only the replaced generation used
are deleted at once, and orphaned parts of crashed writes once they are older than `orphan_grace`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from mcpreg.storage.configmap_backend import (
    CONFIGMAP_RETENTION,
    DEFAULT_ORPHAN_GRACE,
    ConfigMapAddress,
    ConfigMapBackend,
)
from mcpreg.storage.configmap_layout import OwnerReference
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodingLimits
from mcpreg.storage.writer import GenerationWriter


class ConfigMapCatalogStore(GenerationWriter[ConfigMapBackend]):
    """One registry's catalogue in ConfigMaps at `address` (see `configmap_layout`).

    `owner` is put on every object (normally `OwnerReference.for_registry(name, uid)`), so garbage
    collection removes them with the registry.
    """

    def __init__(
        self,
        address: ConfigMapAddress,
        *,
        owner: OwnerReference | None,
        limits: EncodingLimits = DEFAULT_LIMITS,
        orphan_grace: timedelta = DEFAULT_ORPHAN_GRACE,
        concurrency: int = 4,
    ) -> None:
        retention = replace(CONFIGMAP_RETENTION, grace=orphan_grace)
        super().__init__(ConfigMapBackend(address, owner, limits, retention, concurrency=concurrency))

    @property
    def head_name(self) -> str:
        return self.backend.names.head

    def __repr__(self) -> str:
        return f"ConfigMapCatalogStore({self.backend.namespace}/{self.head_name})"
