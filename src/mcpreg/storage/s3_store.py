"""The S3 backend, writer side (layout in `s3_layout`).

A write:
0. read the pointer (and its ETag); when it names the new hash and its objects exist, stop: nothing
   is written (`written=False`);
1. encode (gzip above a small size) and, when configured, render the ToolHive document, off the loop;
2. upload the generation's objects under `<hash>/` (multipart when large); objects already there from
   an earlier write of the same generation are reused;
3. call `before_publish`;
4. PUT the pointer, conditional on the ETag read in step 0 (`If-None-Match: *` when there was none):
   the atomic switch. A concurrent writer makes it fail with 412 and nothing of this write is
   published (`StorageConflictError`). Services without conditional writes get a plain PUT;
5. prune: delete generations beyond the newest `keep_generations` (never the published one nor the
   one just replaced). Failures there are logged, not raised: the write is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from mcpreg.storage.encoding import KIB, compress
from mcpreg.storage.errors import StorageConflictError, StorageCorruptError, StorageError
from mcpreg.storage.interfaces import PublishHook
from mcpreg.storage.model import (
    Encoding,
    S3Location,
    StorageLocation,
    StoredCatalog,
    WriteResult,
    sha256_hash,
)
from mcpreg.storage.s3_config import CredentialsProvider, S3Settings
from mcpreg.storage.s3_errors import S3BucketMissingError, S3NotFound, S3PreconditionFailed
from mcpreg.storage.s3_io import S3Objects
from mcpreg.storage.s3_layout import (
    DEFAULT_KEEP_GENERATIONS,
    ObjectRef,
    Pointer,
    catalog_key,
    pointer_key,
    prunable,
    registry_prefix,
    toolhive_key,
)

log = logging.getLogger(__name__)

# Below this a catalogue is stored as plain JSON (readable in any S3 console); above, gzip.
DEFAULT_GZIP_THRESHOLD = 64 * KIB
JSON = "application/json"
GZIP = "application/gzip"

ToolHiveRenderer = Callable[[bytes], bytes]
"""Catalogue bytes → the ToolHive registry document (runs in a worker thread)."""


def render_toolhive(data: bytes) -> bytes:
    """The ToolHive registry document of a stored catalogue, as `GET /api/v1/registry` serves it.

    Taken from the served document as it is (nothing parsed or validated again); only data in an
    older format is parsed to render it.
    """
    from mcpreg.catalog.served import toolhive_document

    return toolhive_document(data)


@dataclass(frozen=True, slots=True)
class _Encoded:
    encoding: Encoding
    payload: bytes


def _encode(catalog: StoredCatalog, threshold: int) -> _Encoded:
    if sha256_hash(catalog.data) != catalog.content_hash:
        raise StorageError("the catalogue's content_hash is not the sha256 of its data; refusing to store it")
    if len(catalog.data) <= threshold:
        return _Encoded("identity", catalog.data)
    return _Encoded("gzip", compress(catalog.data))


class S3CatalogStore:
    """One registry's catalogue under `<settings.prefix>/<namespace>/<registry>/` in a bucket."""

    def __init__(
        self,
        settings: S3Settings,
        namespace: str,
        registry: str,
        *,
        credentials: CredentialsProvider | None = None,
        keep_generations: int = DEFAULT_KEEP_GENERATIONS,
        toolhive_renderer: ToolHiveRenderer | None = render_toolhive,
        gzip_threshold: int = DEFAULT_GZIP_THRESHOLD,
    ) -> None:
        if keep_generations < 1:
            raise ValueError("keep_generations must be at least 1")
        self.settings = settings
        self.namespace = namespace
        self.registry = registry
        self.prefix = registry_prefix(settings.prefix, namespace, registry)
        self.keep_generations = keep_generations
        self.toolhive_renderer = toolhive_renderer
        self.gzip_threshold = gzip_threshold
        self.objects = S3Objects(settings, credentials)

    def __repr__(self) -> str:
        return f"S3CatalogStore(s3://{self.settings.bucket}/{self.prefix})"

    @property
    def pointer_key(self) -> str:
        return pointer_key(self.prefix)

    def _location(self) -> StorageLocation:
        return StorageLocation(
            type="s3",
            s3=S3Location(
                bucket=self.settings.bucket,
                prefix=self.prefix,
                key=self.pointer_key,
                endpoint=self.settings.endpoint,
                region=self.settings.region,
            ),
        )

    # --- reading what is published ----------------------------------------------------------------

    async def _pointer(self) -> tuple[Pointer | None, str | None]:
        """The published pointer and its ETag; (None, etag) for a damaged one (a write replaces it)."""
        try:
            fetched = await self.objects.get(self.pointer_key, max_bytes=64 * KIB)
        except S3NotFound:
            return None, None
        except StorageCorruptError as exc:
            log.warning("%s; it will be replaced by the next write", exc)
            return None, None
        try:
            return Pointer.parse(fetched.data, self.prefix, self.objects.url(self.pointer_key)), fetched.etag
        except StorageCorruptError as exc:
            log.warning("%s; it will be replaced by the next write", exc)
            return None, fetched.etag

    async def _complete(self, pointer: Pointer) -> bool:
        """Every object the pointer names exists (nobody deleted them by hand)."""
        refs = [pointer.catalog, *([pointer.toolhive] if pointer.toolhive else [])]
        heads = await asyncio.gather(*(self.objects.head(ref.key) for ref in refs))
        return all(
            head is not None and int(head.get("ContentLength", -1)) == ref.size
            for head, ref in zip(heads, refs, strict=True)
        )

    async def current_hash(self) -> str | None:
        """Hash of the published generation; None when nothing is stored or an object it names is
        missing (so a caller comparing hashes rewrites it, and `write` repairs it)."""
        pointer, _ = await self._pointer()
        if pointer is None or not await self._complete(pointer):
            return None
        return pointer.content_hash

    async def location(self) -> StorageLocation | None:
        pointer, _ = await self._pointer()
        return self._location() if pointer is not None else None

    async def resource_names(self) -> tuple[str, ...]:
        """No Kubernetes objects: readers need S3 credentials, not RBAC."""
        return ()

    # --- writing ----------------------------------------------------------------------------------

    async def write(
        self, catalog: StoredCatalog, *, before_publish: PublishHook | None = None
    ) -> WriteResult:
        previous, etag = await self._pointer()
        wants_toolhive = self.toolhive_renderer is not None
        if (
            previous is not None
            and previous.content_hash == catalog.content_hash
            and (previous.toolhive is not None or not wants_toolhive)
            and await self._complete(previous)
        ):
            return WriteResult(
                location=self._location(),
                written=False,
                content_hash=catalog.content_hash,
                previous_hash=previous.content_hash,
                encoding=previous.encoding,
                stored_bytes=previous.catalog.size,
            )

        encoded = await asyncio.to_thread(_encode, catalog, self.gzip_threshold)
        metadata = {"content-hash": catalog.content_hash, "server-count": str(catalog.server_count)}
        cat_ref = ObjectRef(
            catalog_key(self.prefix, catalog.content_hash, encoded.encoding), len(encoded.payload)
        )
        uploads = [
            self._upload_once(
                cat_ref, encoded.payload, GZIP if encoded.encoding == "gzip" else JSON, metadata
            )
        ]
        th_ref: ObjectRef | None = None
        if self.toolhive_renderer is not None:
            document = await asyncio.to_thread(self.toolhive_renderer, catalog.data)
            th_ref = ObjectRef(toolhive_key(self.prefix, catalog.content_hash), len(document))
            uploads.append(self._upload_once(th_ref, document, JSON, metadata))
        await asyncio.gather(*uploads)

        pointer = Pointer(
            content_hash=catalog.content_hash,
            revision=catalog.revision,
            stored_at=catalog.stored_at,
            server_count=catalog.server_count,
            encoding=encoded.encoding,
            size=catalog.size,
            catalog=cat_ref,
            toolhive=th_ref,
        )
        location = self._location()
        if before_publish is not None:
            await before_publish(location)
        await self._publish(pointer, etag)
        log.info(
            "stored catalogue %s (%d servers, revision %s) in %s: %s, %d bytes",
            catalog.content_hash,
            catalog.server_count,
            catalog.revision,
            self.objects.url(self.prefix + "/"),
            encoded.encoding,
            len(encoded.payload),
        )
        keep = {catalog.content_hash} | ({previous.content_hash} if previous else set())
        removed = await self._prune(keep)
        return WriteResult(
            location=location,
            written=True,
            content_hash=catalog.content_hash,
            previous_hash=previous.content_hash if previous else None,
            encoding=encoded.encoding,
            stored_bytes=len(encoded.payload),
            removed=tuple(removed),
        )

    async def _upload_once(
        self, ref: ObjectRef, data: bytes, content_type: str, metadata: dict[str, str]
    ) -> None:
        # Generations are immutable and content-addressed: an object of the right size carrying the
        # same hash is the same object (from an interrupted or earlier write); keep it.
        head = await self.objects.head(ref.key)
        if (
            head is not None
            and int(head.get("ContentLength", -1)) == ref.size
            and (head.get("Metadata") or {}).get("content-hash") == metadata["content-hash"]
            and self._encryption_matches(head)
        ):
            return
        await self.objects.upload(ref.key, data, content_type=content_type, metadata=metadata)

    def _encryption_matches(self, head: dict[str, object] | object) -> bool:
        wanted = self.settings.server_side_encryption
        if not wanted or not isinstance(head, dict):
            return True
        return head.get("ServerSideEncryption") == wanted

    async def _publish(self, pointer: Pointer, etag: str | None) -> None:
        body = pointer.to_json()
        try:
            if etag:
                await self.objects.put(self.pointer_key, body, content_type=JSON, if_match=etag)
            else:
                await self.objects.put(self.pointer_key, body, content_type=JSON, if_none_match="*")
        except S3PreconditionFailed as exc:
            raise StorageConflictError(
                f"{self.objects.url(self.pointer_key)} was changed by another writer during this write; "
                "nothing was published, retry"
            ) from exc
        except StorageError as exc:
            if getattr(exc, "code", "") != "NotImplemented":
                raise
            # A service without conditional writes: publish unconditionally (last writer wins).
            log.info(
                "%s does not support conditional writes; writing the pointer unconditionally", self.objects
            )
            await self.objects.put(self.pointer_key, body, content_type=JSON)

    async def _prune(self, keep: set[str]) -> list[str]:
        try:
            listed = await self.objects.list_keys(self.prefix + "/")
            doomed = prunable(self.prefix, listed, keep_hashes=keep, keep=self.keep_generations)
            return await self.objects.delete(doomed) if doomed else []
        except StorageError as exc:
            log.warning(
                "could not prune old catalogue generations under %s: %s", self.objects.url(self.prefix), exc
            )
            return []

    async def delete(self) -> None:
        """Remove everything under the registry's prefix: the pointer first (readers then see nothing
        stored rather than a pointer to deleted objects), then the generations. A missing bucket has
        nothing to delete."""
        try:
            await self.objects.delete([self.pointer_key])
            listed = await self.objects.list_keys(self.prefix + "/")
            await self.objects.delete([obj.key for obj in listed])
        except S3BucketMissingError:
            log.info("bucket %s does not exist: nothing to delete for %s", self.settings.bucket, self.prefix)
