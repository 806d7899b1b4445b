"""The write protocol, once for every backend: readers never see half a generation.

A write:
0. read the manifest object and its version; when it already describes this hash in this format and
   everything it lists exists, stop there: nothing is written (`written=False`);
1. encode (compress, chunk) and render the extra documents, off the event loop;
2. write the new generation's blobs (never an object the published manifest references: blobs are
   named from the content hash, and identical ones left by an earlier write are reused);
3. call `before_publish` (the operator widens the API pod's Role to the new names here);
4. compare-and-publish the manifest, conditional on the version read in step 0: the atomic switch.
   A concurrent writer makes it fail (`StorageConflictError`) and nothing of this write is published;
5. prune what the new manifest no longer references (backend's `Retention`). Failures there are
   logged, not raised: the write is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Generic

from mcpreg.kube import KubeError
from mcpreg.storage.backend import BackendT, Retention, StoredObject
from mcpreg.storage.concurrency import bounded_gather
from mcpreg.storage.encoding import EncodedCatalog, EncodingLimits, encode
from mcpreg.storage.errors import StorageError
from mcpreg.storage.interfaces import PublishHook
from mcpreg.storage.manifest import FORMAT_VERSION, Manifest
from mcpreg.storage.model import StorageLocation, StoredCatalog, WriteResult, sha256_hash
from mcpreg.storage.reader import GenerationReader

log = logging.getLogger(__name__)

DocumentRenderer = Callable[[StoredCatalog], Mapping[str, bytes]]
"""A generation → its extra documents by name (runs in a worker thread). See `documents`."""


def _encode_checked(catalog: StoredCatalog, limits: EncodingLimits) -> EncodedCatalog:
    # A wrong hash would make every reader reject the generation forever: refuse it up front.
    if sha256_hash(catalog.data) != catalog.content_hash:
        raise StorageError("the catalogue's content_hash is not the sha256 of its data; refusing to store it")
    return encode(catalog.data, limits)


def prunable(
    objects: Iterable[StoredObject],
    *,
    keep: set[str],
    published: str,
    replaced: str | None,
    retention: Retention,
    now: datetime,
) -> list[StoredObject]:
    """The objects to delete after publishing generation `published` over `replaced`: never a name
    in `keep` (the published manifest's) nor an object of no generation; see `Retention`."""
    newest: dict[str, datetime] = {}
    by_generation: dict[str, list[StoredObject]] = {}
    for obj in objects:
        if obj.generation is None or obj.name in keep:
            continue
        by_generation.setdefault(obj.generation, []).append(obj)
        created = obj.created or datetime.min.replace(tzinfo=UTC)
        newest[obj.generation] = max(newest.get(obj.generation, created), created)
    protected = {published} | ({replaced} if replaced and retention.keep_replaced else set())
    others = sorted((g for g in newest if g not in protected), key=lambda g: newest[g], reverse=True)
    doomed = others[max(0, retention.generations - len(protected)) :]
    cutoff = now - retention.grace if retention.grace is not None else None
    return [
        obj
        for generation in doomed
        for obj in by_generation[generation]
        if cutoff is None or generation == replaced or (obj.created is not None and obj.created < cutoff)
    ]


class GenerationWriter(Generic[BackendT]):
    """`CatalogStore` over any `Backend`; `documents` renders the extra documents of each generation
    (None: the backend stores none)."""

    def __init__(self, backend: BackendT, *, documents: DocumentRenderer | None = None) -> None:
        self.backend = backend
        self.documents = documents

    async def _published(self) -> Manifest | None:
        head = await self.backend.get_manifest()
        return head.manifest if head is not None else None

    async def current_hash(self) -> str | None:
        """Hash of the published generation; None when nothing is stored, or when an object it needs
        is missing (deleted by hand), so that a caller comparing hashes rewrites it and `write`
        repairs it."""
        manifest = await self._published()
        if manifest is None or await self.backend.missing(manifest):
            return None
        return manifest.content_hash

    async def read(self) -> StoredCatalog | None:
        """The published generation, whole and verified as a reader loads it (None: nothing stored).
        The operator reads it back for what no source gives it now (a failing source's last good
        entries after a restart)."""
        return await GenerationReader(self.backend, limits=self.backend.limits).read()

    async def location(self) -> StorageLocation | None:
        manifest = await self._published()
        return self.backend.location(manifest) if manifest is not None else None

    async def _unchanged(self, previous: Manifest, catalog: StoredCatalog) -> bool:
        if (
            previous.content_hash != catalog.content_hash
            or previous.format_version != FORMAT_VERSION
            or (self.documents is not None and not previous.documents)
            # Signed with another key (rotated, added or removed): same blobs, a new manifest.
            or previous.signing_key_id != (catalog.signatures.key_id if catalog.signatures else None)
        ):
            return False
        missing = await self.backend.missing(previous)
        if missing:
            log.warning(
                "%s: %s of the stored catalogue are missing; rewriting them",
                self.backend.where,
                ", ".join(missing),
            )
        return not missing

    def _prepare(self, catalog: StoredCatalog) -> tuple[Manifest, EncodedCatalog, Mapping[str, bytes]]:
        """Encode, render the documents, name and hash the blobs: the new generation's manifest
        (in a worker thread: it compresses and hashes megabytes)."""
        encoded = _encode_checked(catalog, self.backend.limits)
        documents = self.documents(catalog) if self.documents else {}
        blobs, inline = self.backend.blob_refs(catalog.content_hash, encoded)
        refs = {
            name: self.backend.document_ref(catalog.content_hash, name, data)
            for name, data in documents.items()
        }
        manifest = Manifest.of(catalog, encoding=encoded.encoding, blobs=blobs, inline=inline, documents=refs)
        return manifest, encoded, documents

    async def write(
        self, catalog: StoredCatalog, *, before_publish: PublishHook | None = None
    ) -> WriteResult:
        backend = self.backend
        head = await backend.get_manifest()
        if head is not None and head.refused:
            raise StorageError(head.refused)
        if head is not None and head.invalid:
            log.warning("%s; this write replaces it", head.invalid)
        previous = head.manifest if head is not None else None
        if previous is not None and await self._unchanged(previous, catalog):
            return WriteResult(
                location=backend.location(previous),
                written=False,
                content_hash=catalog.content_hash,
                previous_hash=previous.content_hash,
                encoding=previous.encoding,
                stored_bytes=previous.stored_size,
            )

        manifest, encoded, documents = await asyncio.to_thread(self._prepare, catalog)
        blobs, inline = manifest.blobs, manifest.inline
        uploads = [] if inline else list(zip(blobs, encoded.chunks, strict=True))
        uploads += [(manifest.documents[name], data) for name, data in documents.items()]
        await bounded_gather(
            [partial(backend.put_blob, manifest, ref, data) for ref, data in uploads], backend.concurrency
        )
        location = backend.location(manifest)
        if before_publish is not None:
            await before_publish(location)
        await backend.put_manifest(
            manifest,
            head.version if head is not None else None,
            {ref.name: chunk for ref, chunk in zip(blobs, encoded.chunks, strict=True)} if inline else {},
        )
        log.info(
            "stored catalogue %s (%d servers, revision %s) in %s: %s, %d bytes%s",
            catalog.content_hash,
            catalog.server_count,
            catalog.revision,
            backend.where,
            encoded.encoding,
            encoded.stored_size,
            "" if inline or len(blobs) == 1 else f" in {len(blobs)} parts",
        )
        removed = await self._prune(manifest, previous)
        return WriteResult(
            location=location,
            written=True,
            content_hash=catalog.content_hash,
            previous_hash=previous.content_hash if previous else None,
            encoding=encoded.encoding,
            stored_bytes=encoded.stored_size,
            removed=tuple(removed),
        )

    async def _prune(self, manifest: Manifest, previous: Manifest | None) -> list[str]:
        keep = {ref.name for ref in manifest.stored_objects}
        try:
            listed = await self.backend.list_objects()
        except (StorageError, KubeError) as exc:
            log.warning("could not list %s's old objects to prune them: %s", self.backend.where, exc)
            listed = []
        if previous is not None:
            # The compare-and-publish proved no manifest references these any more: they go even
            # when the listing failed.
            names = {obj.name for obj in listed}
            listed += [
                StoredObject(ref.name, previous.content_hash)
                for ref in previous.stored_objects
                if ref.name not in names
            ]
        doomed = prunable(
            listed,
            keep=keep,
            published=manifest.content_hash,
            replaced=previous.content_hash if previous else None,
            retention=self.backend.retention,
            now=datetime.now(UTC),
        )
        if not doomed:
            return []
        try:
            return await self.backend.delete_objects(doomed)
        except (StorageError, KubeError) as exc:
            log.warning("could not prune old catalogue generations of %s: %s", self.backend.where, exc)
            return []

    async def resource_names(self) -> tuple[str, ...]:
        """Every Kubernetes object a reader needs (see `CatalogStore.resource_names`)."""
        manifest = await self._published()
        location = self.backend.location(manifest)
        return location.config_maps

    async def delete(self) -> None:
        """Remove everything stored: the manifest first (a reader then sees nothing stored, never a
        manifest whose blobs are gone), then every blob."""
        await self.backend.delete_manifest()
        await self.backend.delete_objects(await self.backend.list_objects())
