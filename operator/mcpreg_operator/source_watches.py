"""One metadata-only watch per source ConfigMap, by name, in its namespace.

The operator used to watch every ConfigMap of the namespaces it serves (of the cluster, by default)
to notice the few that are sources. It now follows its own ConfigMaps by label (see
`handlers.metadata_watches`) and each source ConfigMap by itself: a list + watch with
`fieldSelector=metadata.name=<name>` in the registry's namespace, started when a registry starts
reading that ConfigMap and stopped when none does. The API server sends nothing about any other
ConfigMap, so a cluster full of unrelated ConfigMaps costs the operator nothing (bench/README.md).

The apiserver authorizes such a request as a `list`/`watch` of that one name (it takes the name from
an exact `metadata.name` field selector), so RBAC rules with `resourceNames` apply to it; the chart
still grants list/watch without names, because the names are only known from the MCPRegistries
(docs/configmap-watches.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from mcpreg.kube import CONFIGMAPS, KubeClient
from mcpreg_operator.metawatch import DEFAULT_WATCH_TIMEOUT, MetadataWatch, MetaHandler, NamespaceScope

log = logging.getLogger(__name__)


def name_selector(name: str) -> str:
    return f"metadata.name={name}"


class SourceWatches:
    """The watches of the source ConfigMaps registries read now, kept equal to `follow`'s argument."""

    def __init__(
        self,
        kube: KubeClient,
        handler: MetaHandler,
        scope: NamespaceScope,
        *,
        watch_timeout: int = DEFAULT_WATCH_TIMEOUT,
    ) -> None:
        self.kube = kube
        self.handler = handler
        self.scope = scope
        self.watch_timeout = watch_timeout
        self.tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    def follow(self, sources: Iterable[tuple[str, str]]) -> None:
        """Watch exactly `sources` ((namespace, name) pairs) from now on. Must run on the event loop."""
        wanted = {source for source in sources if self.scope.includes(source[0])}
        for key in set(self.tasks) - wanted:
            self.tasks.pop(key).cancel()
        for namespace, name in sorted(wanted - set(self.tasks)):
            watch = MetadataWatch(
                self.kube,
                CONFIGMAPS,
                self.handler,
                namespace=namespace,
                field_selector=name_selector(name),
                watch_timeout=self.watch_timeout,
            )
            self.tasks[(namespace, name)] = asyncio.create_task(watch.run(), name=repr(watch))
            log.debug("following source ConfigMap %s/%s", namespace, name)

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
