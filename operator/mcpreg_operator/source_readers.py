"""Which MCPRegistries read which ConfigMap, so that a change of that ConfigMap syncs them promptly.

Kept from the MCPRegistry events the operator receives anyway (their spec names the source). It says
which ConfigMaps to watch (one watch each, see `source_watches`), and who to wake when one changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SourceReaders:
    def __init__(self) -> None:
        # (namespace, registry) -> the ConfigMaps it reads
        self._source_of: dict[tuple[str, str], frozenset[str]] = {}

    def update(self, namespace: str, registry: str, spec: Mapping[str, Any] | None) -> None:
        """Record what the registry's spec reads now: the ConfigMaps of `source` or `sources`."""
        spec = spec or {}
        sources = [spec.get("source") or {}, *(spec.get("sources") or [])]
        names = frozenset(
            str((source.get("configMap") or {})["name"])
            for source in sources
            if isinstance(source, Mapping)
            and source.get("type") == "configmap"
            and (source.get("configMap") or {}).get("name")
        )
        if names:
            self._source_of[(namespace, registry)] = names
        else:
            self._source_of.pop((namespace, registry), None)

    def forget(self, namespace: str, registry: str) -> None:
        self._source_of.pop((namespace, registry), None)

    def readers(self, namespace: str, configmap: str) -> list[str]:
        """The registries of `namespace` whose source is `configmap`."""
        return sorted(
            registry
            for (where, registry), names in self._source_of.items()
            if where == namespace and configmap in names
        )

    def sources(self) -> set[tuple[str, str]]:
        """Every (namespace, ConfigMap) some registry reads."""
        return {(namespace, name) for (namespace, _), names in self._source_of.items() for name in names}
