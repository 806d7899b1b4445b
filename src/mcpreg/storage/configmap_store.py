"""The ConfigMap backend, writer side: publishes catalogue generations so readers never see half of one.

A write:
0. read the head's metadata (hash, resourceVersion); when the hash is the new one and every part it
   lists exists, stop there: nothing is written (`written=False`);
1. encode (compress, chunk) off the event loop;
2. create the new generation's parts (split layouts only): immutable, named from the content hash,
   so no reader of the current generation can be affected;
3. call `before_publish` (the operator widens the API pod's Role to the new part names here);
4. replace the head in one request, conditional on the resourceVersion read in step 0: the atomic
   switch. A concurrent writer makes it fail with 409 and nothing of this write is published;
5. delete the parts only the replaced generation used, and orphaned parts of crashed writes.
Readers follow the head, and a reader caught mid-read by step 5 re-reads the head and gets the
new generation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from kubernetes_asyncio.client import ApiClient

from mcpreg import labels
from mcpreg.kube import ConfigMapClient, ConflictError, JsonObject, KubeError, NotFoundError
from mcpreg.storage.concurrency import bounded_gather
from mcpreg.storage.configmap_layout import (
    KEY_PART,
    ConfigMapNames,
    HeadAnnotations,
    OwnerReference,
    PartRef,
    creation_time,
    head_annotations,
    head_body,
    parse_head_annotations,
    part_body,
    part_refs,
)
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodedCatalog, EncodingLimits, encode
from mcpreg.storage.errors import StorageConflictError, StorageCorruptError, StorageError
from mcpreg.storage.interfaces import PublishHook
from mcpreg.storage.model import StorageLocation, StoredCatalog, WriteResult, sha256_hash

log = logging.getLogger(__name__)

# A writer publishes within seconds of creating its parts; parts nobody references that are older
# than this belong to a writer that died, and are removed by the next successful write.
DEFAULT_ORPHAN_GRACE = timedelta(minutes=10)


def _encode_checked(catalog: StoredCatalog, limits: EncodingLimits) -> EncodedCatalog:
    # A wrong hash would make every reader reject the generation forever: refuse it up front.
    if sha256_hash(catalog.data) != catalog.content_hash:
        raise StorageError("the catalogue's content_hash is not the sha256 of its data; refusing to store it")
    return encode(catalog.data, limits)


def _owner_refs(obj: Mapping[str, Any]) -> list[Any]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


class ConfigMapCatalogStore:
    """One registry's catalogue in ConfigMaps of its namespace (see `configmap_layout`).

    `api` belongs to the caller. `owner` is put on every object (normally
    `OwnerReference.for_registry(name, uid)`), so garbage collection removes them with the registry.
    """

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
        self.names = ConfigMapNames(registry)
        self.namespace = namespace
        self.owner = owner
        self.limits = limits
        self.orphan_grace = orphan_grace
        self.concurrency = concurrency
        self._client = ConfigMapClient(api, namespace, request_timeout=request_timeout)

    @property
    def head_name(self) -> str:
        return self.names.head

    def __repr__(self) -> str:
        return f"ConfigMapCatalogStore({self.namespace}/{self.names.head})"

    # Reading what is published ------------------------------------------------------------------

    async def _head_metadata(self) -> tuple[JsonObject | None, HeadAnnotations | None]:
        head = await self._client.get(self.names.head, metadata_only=True)
        if head is None:
            return None, None
        try:
            return head, parse_head_annotations(head)
        except StorageCorruptError:
            return head, None

    async def current_hash(self) -> str | None:
        """Hash of the published generation; None when nothing is stored, or when a part it needs is
        missing (deleted by hand), so that a caller comparing hashes rewrites it and `write` repairs it."""
        _, meta = await self._head_metadata()
        if meta is None or await self._missing_parts(meta):
            return None
        return meta.content_hash

    def _location(self, parts: Sequence[str]) -> StorageLocation:
        return StorageLocation(type="configmap", config_maps=(self.names.head, *parts))

    async def location(self) -> StorageLocation | None:
        _, meta = await self._head_metadata()
        return self._location(meta.part_names) if meta else None

    async def resource_names(self) -> tuple[str, ...]:
        # The head is always included, even before the first write, so a reader can watch for it.
        _, meta = await self._head_metadata()
        return self._location(meta.part_names if meta else ()).config_maps

    # Writing -----------------------------------------------------------------------------------

    def _check_ours(self, head: Mapping[str, Any]) -> None:
        # `<registry>-data` is a natural name for a user's own ConfigMap too (even the registry's
        # source); never overwrite one the operator did not create.
        found = (head.get("metadata") or {}).get("labels") or {}
        if not labels.is_managed(found) or found.get(labels.INSTANCE) != self.names.registry:
            raise StorageError(
                f"ConfigMap {self.namespace}/{self.names.head} exists but is not managed by "
                f"{labels.OPERATOR} for registry {self.names.registry}; rename or delete it so the catalogue "
                "can be stored there"
            )

    async def write(
        self, catalog: StoredCatalog, *, before_publish: PublishHook | None = None
    ) -> WriteResult:
        head, previous = await self._head_metadata()
        if head is not None:
            self._check_ours(head)
        missing: list[str] = []
        if previous is not None and previous.content_hash == catalog.content_hash:
            missing = await self._missing_parts(previous)
            if not missing:
                return WriteResult(
                    location=self._location(previous.part_names),
                    written=False,
                    content_hash=catalog.content_hash,
                    previous_hash=previous.content_hash,
                    encoding=previous.encoding,
                    stored_bytes=previous.stored_size,
                )
            log.warning(
                "ConfigMap %s/%s: parts %s of the stored catalogue are missing; rewriting them",
                self.namespace,
                self.names.head,
                ", ".join(missing),
            )

        encoded = await asyncio.to_thread(_encode_checked, catalog, self.limits)
        refs = part_refs(self.names, catalog.content_hash, encoded.chunks) if encoded.split else ()
        if refs:
            await self._write_parts(catalog.content_hash, refs, encoded.chunks)
        meta = head_annotations(catalog, encoded, refs)
        location = self._location(meta.part_names)
        if before_publish is not None:
            await before_publish(location)

        resource_version = str((head or {}).get("metadata", {}).get("resourceVersion", "")) or None
        body = await asyncio.to_thread(
            head_body, self.names, self.namespace, meta, encoded, self.owner, resource_version
        )
        try:
            if head is None:
                await self._client.create(body)
            else:
                await self._client.replace(self.names.head, body)
        except ConflictError as exc:
            raise StorageConflictError(
                f"ConfigMap {self.namespace}/{self.names.head} was changed by another writer during this "
                "write; nothing was published, retry"
            ) from exc
        log.info(
            "stored catalogue %s (%d servers, revision %s) in ConfigMap %s/%s: %s, %s, %d bytes%s",
            catalog.content_hash,
            catalog.server_count,
            catalog.revision,
            self.namespace,
            self.names.head,
            meta.layout,
            meta.encoding,
            encoded.stored_size,
            f" in {len(refs)} parts" if refs else "",
        )
        removed = await self._remove_stale_parts(
            keep=set(meta.part_names), replaced=previous.part_names if previous else ()
        )
        return WriteResult(
            location=location,
            written=True,
            content_hash=catalog.content_hash,
            previous_hash=previous.content_hash if previous else None,
            encoding=encoded.encoding,
            stored_bytes=encoded.stored_size,
            removed=tuple(removed),
        )

    async def _missing_parts(self, meta: HeadAnnotations) -> list[str]:
        """Parts the published head lists that do not exist (someone deleted them by hand)."""
        if not meta.parts:
            return []
        items, _ = await self._client.list(label_selector=self.names.selector("part"), metadata_only=True)
        present = {
            str(item["metadata"]["name"]) for item in items if not item["metadata"].get("deletionTimestamp")
        }
        return [name for name in meta.part_names if name not in present]

    async def _write_parts(self, content_hash: str, refs: Sequence[PartRef], chunks: Sequence[bytes]) -> None:
        async def write_one(index: int) -> None:
            body = await asyncio.to_thread(
                part_body,
                self.names,
                self.namespace,
                content_hash,
                index,
                refs[index],
                chunks[index],
                self.owner,
            )
            await self._create_part(body, refs[index], chunks[index])

        await bounded_gather([partial(write_one, index) for index in range(len(refs))], self.concurrency)

    async def _create_part(self, body: JsonObject, ref: PartRef, chunk: bytes) -> None:
        try:
            await self._client.create(body)
            return
        except ConflictError:
            pass
        # The name exists: a retried or concurrent write of the same generation made it. Reuse it
        # when it holds exactly these bytes under the same owner; otherwise replace it (parts are
        # immutable, so replacing means delete and create).
        existing = await self._client.get(ref.name)
        if existing is not None:
            if self._same_part(existing, body):
                return
            log.warning(
                "ConfigMap %s/%s differs from the part to be written; recreating it", self.namespace, ref.name
            )
            await self._client.delete(ref.name, uid=str(existing["metadata"].get("uid") or "") or None)
        await self._client.create(body)

    @staticmethod
    def _same_part(existing: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
        return (
            (existing.get("binaryData") or {}).get(KEY_PART) == body["binaryData"][KEY_PART]
            and _owner_refs(existing) == _owner_refs(body)
            and not (existing.get("metadata") or {}).get("deletionTimestamp")
        )

    async def _remove_stale_parts(self, *, keep: set[str], replaced: Sequence[str]) -> list[str]:
        """Delete parts no longer referenced. Failures are logged, not raised: the write is done."""
        # Parts of the generation just replaced: the resourceVersion-conditional replace proves no
        # head references them any more.
        stale: dict[str, str | None] = {name: None for name in replaced if name not in keep}
        try:
            items, _ = await self._client.list(label_selector=self.names.selector("part"), metadata_only=True)
        except KubeError as exc:
            log.warning("could not list catalogue parts in %s to clean up: %s", self.namespace, exc)
            items = []
        cutoff = datetime.now(UTC) - self.orphan_grace
        for item in items:
            name = str(item["metadata"]["name"])
            created = creation_time(item)
            if name in keep:
                continue
            if name in stale or (created is not None and created < cutoff):
                stale[name] = str(item["metadata"].get("uid") or "") or None

        async def remove(name: str, uid: str | None) -> str | None:
            try:
                return name if await self._client.delete(name, uid=uid) else None
            except (NotFoundError, ConflictError):
                return None
            except KubeError as exc:
                log.warning("could not delete stale catalogue part %s/%s: %s", self.namespace, name, exc)
                return None

        results = await bounded_gather(
            [partial(remove, name, uid) for name, uid in stale.items()], self.concurrency
        )
        return [name for name in results if name]

    async def delete(self) -> None:
        # Head first: a reader then sees "nothing stored", never a head whose parts are gone.
        await self._client.delete(self.names.head)
        items, _ = await self._client.list(label_selector=self.names.selector("part"), metadata_only=True)
        names = [str(item["metadata"]["name"]) for item in items]
        await bounded_gather([partial(self._client.delete, name) for name in names], self.concurrency)
