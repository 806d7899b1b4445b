"""Metadata-only watches of the kinds the operator only needs to hear about: ConfigMaps and the
objects of the API workload.

Kopf watches whole objects, although the operator only needs to know *which* object changed (a
source to sync, a data ConfigMap deleted or edited, the API's configuration drifted). A
`MetadataWatch` lists and watches one kind as `PartialObjectMetadata` (names, labels, annotations
and resourceVersion; what client-go's metadata informers use), narrowed on the server by a label
selector (the operator's own objects) or a field selector (one source ConfigMap by name, see
`source_watches`), so nothing else ever reaches the operator.

It is level-triggered like an informer: it lists, then watches from the list's resourceVersion,
resuming each watch where the last ended (bookmarks keep that position fresh). When the position has
expired (410 Gone) it lists again and reports what changed in between by comparing the new listing
with what it knew, so no deletion or edit is lost to a gap. The first listing reports nothing: every
registry's controller makes a full pass when it starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

# Kopf's own reading of namespace patterns (not re-exported at its top level).
from kopf._cogs.structs.references import NamespaceName, match_namespace, select_specific_namespaces

from mcpreg.backoff import Backoff
from mcpreg.kube import GoneError, JsonObject, KubeClient, KubeError, Resource

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
# The server ends each watch after about this long; the next one resumes where it ended.
DEFAULT_WATCH_TIMEOUT = 270


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What a metadata-only watch tells about one object."""

    namespace: str
    name: str
    resource_version: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectMeta:
        meta = obj.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            resource_version=str(meta.get("resourceVersion") or ""),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


MetaHandler = Callable[[EventType, ObjectMeta], None]


class NamespaceScope:
    """The namespaces an operator serves, from its `--namespace` patterns, read exactly as Kopf reads
    them (names, globs, `!` exclusions, comma-separated parts; none at all means every namespace), so
    the watches here and Kopf's agree on every namespace."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = list(patterns)

    def watched(self) -> list[str]:
        """What to watch: each namespace when every pattern is a plain name, else every namespace."""
        names = select_specific_namespaces(self.patterns)
        if not self.patterns or len(names) < len(set(self.patterns)):
            return [""]
        return sorted(names)

    def includes(self, namespace: str) -> bool:
        return not self.patterns or any(
            match_namespace(NamespaceName(namespace), pattern) for pattern in self.patterns
        )

    def only(self, handler: MetaHandler) -> MetaHandler:
        """`handler`, called only for objects of the served namespaces."""

        def scoped(kind: EventType, meta: ObjectMeta) -> None:
            if self.includes(meta.namespace):
                handler(kind, meta)

        return scoped


def differences(
    known: Mapping[tuple[str, str], ObjectMeta], listed: Iterable[ObjectMeta]
) -> list[tuple[EventType, ObjectMeta]]:
    """The events a watch would have delivered between `known` and a new listing: objects that are
    new (ADDED), whose resourceVersion moved (MODIFIED), or that are gone (DELETED)."""
    events: list[tuple[EventType, ObjectMeta]] = []
    seen: set[tuple[str, str]] = set()
    for meta in listed:
        seen.add(meta.key)
        before = known.get(meta.key)
        if before is None:
            events.append(("ADDED", meta))
        elif before.resource_version != meta.resource_version:
            events.append(("MODIFIED", meta))
    events.extend(("DELETED", meta) for key, meta in known.items() if key not in seen)
    return events


class MetadataWatch:
    """Follows one kind in `namespace` (every namespace by default), metadata only, calling `handler`
    for each change.

    `handler` runs on the event loop and must be quick (the operator's handlers only wake a
    controller). A failing handler is logged and the watch goes on.
    """

    def __init__(
        self,
        kube: KubeClient,
        resource: Resource,
        handler: MetaHandler,
        *,
        namespace: str = "",
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout: int = DEFAULT_WATCH_TIMEOUT,
        backoff: Backoff | None = None,
    ) -> None:
        self.kube = kube
        self.resource = resource
        self.handler = handler
        self.namespace = namespace  # "": every namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout = watch_timeout
        self.backoff = backoff or Backoff(initial=1.0, maximum=30.0)
        self.known: dict[tuple[str, str], ObjectMeta] = {}
        self.listed = asyncio.Event()  # set once the first listing is in
        self.lists = 0  # listings made (the first, and one after each expired position)

    def __repr__(self) -> str:
        selectors = ", ".join(s for s in (self.label_selector, self.field_selector) if s)
        selector = f" ({selectors})" if selectors else ""
        return f"MetadataWatch({self.resource.plural} in {self.namespace or 'every namespace'}{selector})"

    async def run(self) -> None:
        """Until cancelled. Failures of the API server are retried with backoff; they never end it."""
        resource_version = ""
        failures = 0
        while True:
            try:
                if not resource_version:
                    resource_version = await self._list()
                resource_version = await self._watch(resource_version)
                failures = 0
            except GoneError:
                log.debug("%r: the watch position expired; listing again", self)
                resource_version = ""
            except KubeError as exc:
                failures += 1
                delay = self.backoff.delay(failures)
                log.warning("%r: %s; retrying in %.1fs", self, exc, delay)
                await asyncio.sleep(delay)

    async def _list(self) -> str:
        items, resource_version = await self.kube.list(
            self.resource,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            metadata_only=True,
        )
        listed = [ObjectMeta.of(item) for item in items]
        if self.listed.is_set():
            for kind, meta in differences(self.known, listed):
                self._deliver(kind, meta)
        self.known = {meta.key: meta for meta in listed}
        self.lists += 1
        self.listed.set()
        return resource_version

    async def _watch(self, resource_version: str) -> str:
        """One watch, to its end; the resourceVersion to resume from."""
        async for event in self.kube.watch(
            self.resource,
            self.namespace,
            resource_version=resource_version,
            timeout_seconds=self.watch_timeout,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            metadata_only=True,
        ):
            obj: JsonObject = event.get("object") or {}
            meta = ObjectMeta.of(obj)
            resource_version = meta.resource_version or resource_version
            kind = event.get("type")
            if kind == "DELETED":
                self.known.pop(meta.key, None)
                self._deliver("DELETED", meta)
            elif kind in ("ADDED", "MODIFIED"):
                self.known[meta.key] = meta
                self._deliver(kind, meta)
        return resource_version

    def _deliver(self, kind: EventType, meta: ObjectMeta) -> None:
        try:
            self.handler(kind, meta)
        except Exception:
            log.exception("%r: the handler failed on %s %s/%s", self, kind, meta.namespace, meta.name)
