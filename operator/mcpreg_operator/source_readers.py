"""Which MCPRegistries read which ConfigMap, so that a change of that ConfigMap syncs them promptly.

Kept from the MCPRegistry events the operator receives anyway (their spec names the source). It says
which ConfigMaps to watch (one watch each, see `source_watches`), and who to wake when one changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SourceReaders:
    def __init__(self) -> None:
        self._source_of: dict[tuple[str, str], str] = {}  # (namespace, registry) -> ConfigMap name

    def update(self, namespace: str, registry: str, spec: Mapping[str, Any] | None) -> None:
        """Record what the registry's spec reads now (nothing, when it is not a ConfigMap source)."""
        source = (spec or {}).get("source") or {}
        config_map = source.get("configMap") or {}
        if source.get("type") == "configmap" and config_map.get("name"):
            self._source_of[(namespace, registry)] = str(config_map["name"])
        else:
            self._source_of.pop((namespace, registry), None)

    def forget(self, namespace: str, registry: str) -> None:
        self._source_of.pop((namespace, registry), None)

    def readers(self, namespace: str, configmap: str) -> list[str]:
        """The registries of `namespace` whose source is `configmap`."""
        return sorted(
            registry
            for (where, registry), name in self._source_of.items()
            if where == namespace and name == configmap
        )

    def sources(self) -> set[tuple[str, str]]:
        """Every (namespace, ConfigMap) some registry reads."""
        return {(namespace, name) for (namespace, _), name in self._source_of.items()}
