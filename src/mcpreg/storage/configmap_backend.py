"""The ConfigMap backend's primitives (layout in `configmap_layout`): the head ConfigMap is the manifest,
small generations travel inline in it, large ones in immutable part ConfigMaps named from the content
hash. Compare-and-publish is a resourceVersion-conditional replace (or a create when there is no
head); changes are announced by a metadata-only watch of the head.

Readers need only get/list/watch on the names `ConfigMapCatalogStore.resource_names()` reports:
list and watch are always narrowed by a `metadata.name` field selector, which is what lets RBAC
authorize them by resourceNames.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from kubernetes_asyncio.client import ApiClient

from mcpreg import labels
from mcpreg.backoff import Backoff
from mcpreg.kube import (
    ConfigMapClient,
    ConflictError,
    ForbiddenError,
    GoneError,
    JsonObject,
    KubeError,
    NotFoundError,
)
from mcpreg.storage.backend import BlobUnavailable, Head, Retention, StoredObject
from mcpreg.storage.concurrency import bounded_gather
from mcpreg.storage.configmap_layout import (
    ANNOTATION_HASH,
    KEY_PART,
    ConfigMapNames,
    OwnerReference,
    creation_time,
    head_body,
    inline_key,
    parse_head,
    parse_head_annotations,
    parse_part,
    part_body,
    part_refs,
)
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodedCatalog, EncodingLimits
from mcpreg.storage.errors import StorageConflictError, StorageCorruptError, StorageError
from mcpreg.storage.manifest import BlobRef, Manifest
from mcpreg.storage.model import StorageLocation, is_content_hash

log = logging.getLogger(__name__)

# A writer publishes within seconds of creating its parts; parts nobody references that are older
# than this belong to a writer that died, and are removed by the next successful write.
DEFAULT_ORPHAN_GRACE = timedelta(minutes=10)
DEFAULT_WATCH_TIMEOUT = 300
# A reader retries the same head with growing waits; with the default backoff, 6 attempts span about
# 6 s, ample for RBAC to catch up with a widened Role.
DEFAULT_READ_ATTEMPTS = 6
# Only the published generation: the replaced one's parts go at once (the conditional replace proved
# no head references them), orphans once past the grace.
CONFIGMAP_RETENTION = Retention(generations=1, keep_replaced=False, grace=DEFAULT_ORPHAN_GRACE)


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _resource_version(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("resourceVersion") or "")


def _owner_refs(obj: Mapping[str, Any]) -> list[Any]:
    return list(_metadata(obj).get("ownerReferences") or [])


@dataclass(frozen=True, slots=True)
class ConfigMapAddress:
    """One registry's ConfigMaps: its namespace, reached through `api` (the caller's, not closed here)
    with `request_timeout` seconds per request; what the store and the readers of one catalogue have
    in common."""

    api: ApiClient
    namespace: str
    registry: str
    request_timeout: float = 30.0

    def client(self) -> ConfigMapClient:
        return ConfigMapClient(self.api, self.namespace, request_timeout=self.request_timeout)


@dataclass(eq=False)
class ConfigMapBackend:
    """One registry's storage objects in the ConfigMaps at `address`. `owner` goes on every object it
    creates (None: a reader, or a writer that only deletes)."""

    address: ConfigMapAddress
    owner: OwnerReference | None
    limits: EncodingLimits = DEFAULT_LIMITS
    retention: Retention = CONFIGMAP_RETENTION
    concurrency: int = 4
    watch_timeout: int = DEFAULT_WATCH_TIMEOUT
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        self.client = self.address.client()
        self.names = ConfigMapNames(self.address.registry)
        self.namespace = self.address.namespace

    @property
    def where(self) -> str:
        return f"ConfigMap {self.namespace}/{self.names.head}"

    def location(self, manifest: Manifest | None) -> StorageLocation:
        parts = () if manifest is None or manifest.inline else tuple(ref.name for ref in manifest.blobs)
        return StorageLocation(type="configmap", config_maps=(self.names.head, *parts))

    # The manifest ------------------------------------------------------------------------------

    def _refusal(self, head: Mapping[str, Any]) -> str | None:
        # `<registry>-data` is a natural name for a user's own ConfigMap too (even the registry's
        # source); never overwrite one the operator did not create.
        found = _metadata(head).get("labels") or {}
        if labels.is_managed(found) and found.get(labels.INSTANCE) == self.names.registry:
            return None
        return (
            f"ConfigMap {self.namespace}/{self.names.head} exists but is not managed by "
            f"{labels.OPERATOR} for registry {self.names.registry}; rename or delete it so the catalogue "
            "can be stored there"
        )

    async def get_manifest(self, *, payload: bool = False) -> Head | None:
        obj = await self.client.get(self.names.head, metadata_only=not payload)
        if obj is None:
            return None
        version, refused = _resource_version(obj), self._refusal(obj)
        try:
            if not payload:
                return Head(parse_head_annotations(obj).manifest(), version, refused=refused)
            manifest, inline = await asyncio.to_thread(parse_head, obj)
        except StorageCorruptError as exc:
            return Head(None, version, refused=refused, invalid=str(exc))
        return Head(manifest, version, inline, refused)

    async def put_manifest(
        self, manifest: Manifest, version: str | None, inline: Mapping[str, bytes]
    ) -> None:
        body = await asyncio.to_thread(
            head_body, self.names, self.namespace, manifest, inline, self.owner, version
        )
        try:
            if version is None:
                await self.client.create(body)
            else:
                await self.client.replace(self.names.head, body)
        except ConflictError as exc:
            raise StorageConflictError(
                f"{self.where} was changed by another writer during this write; nothing was published, retry"
            ) from exc

    async def delete_manifest(self) -> None:
        await self.client.delete(self.names.head)

    # Blobs -------------------------------------------------------------------------------------

    def blob_refs(self, content_hash: str, encoded: EncodedCatalog) -> tuple[tuple[BlobRef, ...], bool]:
        if not encoded.split:
            return (BlobRef(name=inline_key(encoded.encoding), size=encoded.stored_size),), True
        return part_refs(self.names, content_hash, encoded.chunks), False

    def document_ref(self, content_hash: str, name: str, data: bytes) -> BlobRef:
        raise StorageError("ConfigMap storage keeps no extra documents")

    async def put_blob(self, manifest: Manifest, ref: BlobRef, data: bytes) -> None:
        index = manifest.blobs.index(ref)
        body = await asyncio.to_thread(
            part_body, self.names, self.namespace, manifest.content_hash, index, ref, data, self.owner
        )
        try:
            await self.client.create(body)
            return
        except ConflictError:
            pass
        # The name exists: a retried or concurrent write of the same generation made it. Reuse it
        # when it holds exactly these bytes under the same owner; otherwise replace it (parts are
        # immutable, so replacing means delete and create).
        existing = await self.client.get(ref.name)
        if existing is not None:
            if self._same_part(existing, body):
                return
            log.warning(
                "ConfigMap %s/%s differs from the part to be written; recreating it", self.namespace, ref.name
            )
            await self.client.delete(ref.name, uid=str(_metadata(existing).get("uid") or "") or None)
        await self.client.create(body)

    @staticmethod
    def _same_part(existing: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
        return (
            (existing.get("binaryData") or {}).get(KEY_PART) == body["binaryData"][KEY_PART]
            and _owner_refs(existing) == _owner_refs(body)
            and not _metadata(existing).get("deletionTimestamp")
        )

    async def get_blob(self, manifest: Manifest, ref: BlobRef) -> bytes:
        try:
            obj = await self.client.get(ref.name)
        except ForbiddenError as exc:
            raise BlobUnavailable(f"ConfigMap {self.namespace}/{ref.name}: {exc}") from exc
        if obj is None:
            raise BlobUnavailable(f"ConfigMap {self.namespace}/{ref.name} not found")
        return await asyncio.to_thread(parse_part, obj, ref, manifest.content_hash)

    async def _parts(self) -> list[JsonObject]:
        items, _ = await self.client.list(label_selector=self.names.selector("part"), metadata_only=True)
        return items

    async def missing(self, manifest: Manifest) -> list[str]:
        """Parts the head lists that do not exist (someone deleted them by hand)."""
        wanted = [ref.name for ref in manifest.stored_objects]
        if not wanted:
            return []
        present = {
            str(_metadata(item)["name"])
            for item in await self._parts()
            if not _metadata(item).get("deletionTimestamp")
        }
        return [name for name in wanted if name not in present]

    async def list_objects(self) -> list[StoredObject]:
        found = []
        for item in await self._parts():
            meta = _metadata(item)
            generation = str((meta.get("annotations") or {}).get(ANNOTATION_HASH) or "")
            found.append(
                StoredObject(
                    name=str(meta["name"]),
                    generation=generation if is_content_hash(generation) else None,
                    created=creation_time(item),
                    uid=str(meta.get("uid") or "") or None,
                )
            )
        return found

    async def delete_objects(self, objects: Sequence[StoredObject]) -> list[str]:
        failures: list[KubeError] = []

        async def remove(obj: StoredObject) -> str | None:
            try:
                return obj.name if await self.client.delete(obj.name, uid=obj.uid) else None
            except (NotFoundError, ConflictError):
                return None
            except KubeError as exc:
                log.warning("could not delete catalogue part %s/%s: %s", self.namespace, obj.name, exc)
                failures.append(exc)
                return None

        results = await bounded_gather([partial(remove, obj) for obj in objects], self.concurrency)
        if failures:
            raise failures[0]
        return [name for name in results if name]

    # Announcements -----------------------------------------------------------------------------

    async def announcements(self) -> AsyncGenerator[str | None, None]:
        """List the head, then watch it (metadata only), resuming each watch where the last ended and
        listing afresh when the resourceVersion expired."""
        selector = f"metadata.name={self.names.head}"
        failures = 0  # watches that ended at once, or expired
        while True:
            try:
                _, resource_version = await self.client.list(field_selector=selector, metadata_only=True)
                yield None
                while True:
                    started = asyncio.get_running_loop().time()
                    received = False
                    events = self.client.watch(
                        field_selector=selector,
                        resource_version=resource_version,
                        timeout_seconds=self.watch_timeout,
                    )
                    async with aclosing(events):
                        async for event in events:
                            received, failures = True, 0
                            obj = event.get("object") or {}
                            resource_version = _resource_version(obj) or resource_version
                            if event["type"] not in ("ADDED", "MODIFIED"):
                                continue  # BOOKMARK; DELETED keeps the last generation in use
                            try:
                                announced = parse_head_annotations(obj).manifest().generation_id
                            except StorageCorruptError as exc:
                                log.error("%s", exc)
                                continue
                            yield announced
                    if received or asyncio.get_running_loop().time() - started >= 1.0:
                        failures = 0  # a watch that ran its course: resume at once
                    else:
                        # Ended at once with nothing to say: do not hammer the API server.
                        failures += 1
                        await asyncio.sleep(self.backoff.delay(failures))
            except GoneError:
                # The resourceVersion was compacted away: list afresh (at once the first time).
                failures += 1
                log.debug("watch of %s expired; listing again", self.where)
                if failures > 1:
                    await asyncio.sleep(self.backoff.delay(failures - 1))
