"""The S3 backend's primitives (layout in `s3_layout`): the pointer object is the manifest, a generation's
objects live under its content hash (one catalogue object, multipart when large, and its extra
documents). Compare-and-publish is a PUT conditional on the pointer's ETag (`If-None-Match: *` when
there is none; a plain PUT on services without conditional writes); changes are announced by polling
the pointer with `If-None-Match`, one small request that answers 304 while nothing changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import InitVar, dataclass
from typing import Any

from mcpreg.storage.backend import BlobUnavailable, Head, Retention, StoredObject
from mcpreg.storage.encoding import DEFAULT_MAX_DECODED_BYTES, KIB, EncodedCatalog, EncodingLimits
from mcpreg.storage.errors import StorageConflictError, StorageCorruptError, StorageError
from mcpreg.storage.manifest import BlobRef, Manifest
from mcpreg.storage.model import HASH_PREFIX, S3Location, StorageLocation, sha256_hash
from mcpreg.storage.s3_config import S3Address, S3Settings
from mcpreg.storage.s3_errors import S3NotFound, S3NotModified, S3PreconditionFailed
from mcpreg.storage.s3_io import S3Objects
from mcpreg.storage.s3_layout import (
    DEFAULT_KEEP_GENERATIONS,
    MAX_POINTER_BYTES,
    catalog_key,
    document_key,
    generation_of,
    parse_pointer,
    pointer_json,
    pointer_key,
    registry_prefix,
)

log = logging.getLogger(__name__)

# Below this a catalogue is stored as plain JSON (readable in any S3 console); above, gzip.
DEFAULT_GZIP_THRESHOLD = 64 * KIB
DEFAULT_POLL_INTERVAL = 10.0
# The newest few generations, the replaced one always among them: readers that read the pointer a
# moment ago still find their generation.
S3_RETENTION = Retention(generations=DEFAULT_KEEP_GENERATIONS, keep_replaced=True)
JSON = "application/json"
GZIP = "application/gzip"


def s3_limits(gzip_threshold: int = DEFAULT_GZIP_THRESHOLD) -> EncodingLimits:
    """One object per generation (S3 takes objects of any size the reader accepts), gzip above
    `gzip_threshold`, any bytes stored as-is below it."""
    return EncodingLimits(
        max_object_bytes=DEFAULT_MAX_DECODED_BYTES,
        max_parts=1,
        identity_max_bytes=gzip_threshold,
        identity_requires_text=False,
    )


@dataclass(eq=False)
class S3Backend:
    """One registry's objects at `address` (under `<settings.prefix>/<namespace>/<registry>/` in a bucket)."""

    address: S3Address
    retention: Retention = S3_RETENTION
    gzip_threshold: InitVar[int] = DEFAULT_GZIP_THRESHOLD
    poll_interval: float = DEFAULT_POLL_INTERVAL
    concurrency: int = 4

    def __post_init__(self, gzip_threshold: int) -> None:
        address = self.address
        self.settings: S3Settings = address.settings
        self.prefix = registry_prefix(self.settings.prefix, address.namespace, address.registry)
        self.limits = s3_limits(gzip_threshold)
        self.objects = S3Objects(self.settings, address.credentials)

    @property
    def pointer_key(self) -> str:
        return pointer_key(self.prefix)

    @property
    def where(self) -> str:
        return self.objects.url(self.pointer_key)

    def location(self, manifest: Manifest | None) -> StorageLocation:
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

    # The manifest ------------------------------------------------------------------------------

    async def get_manifest(self, *, payload: bool = False) -> Head | None:
        try:
            fetched = await self.objects.get(self.pointer_key, max_bytes=MAX_POINTER_BYTES)
        except S3NotFound:
            return None
        except StorageCorruptError as exc:  # too large to be a pointer
            return Head(None, "", invalid=str(exc))
        try:
            return Head(parse_pointer(fetched.data, self.prefix, self.where), fetched.etag)
        except StorageCorruptError as exc:
            return Head(None, fetched.etag, invalid=str(exc))

    async def put_manifest(
        self, manifest: Manifest, version: str | None, inline: Mapping[str, bytes]
    ) -> None:
        body = pointer_json(manifest)
        try:
            if version:
                await self.objects.put(self.pointer_key, body, content_type=JSON, if_match=version)
            else:
                await self.objects.put(self.pointer_key, body, content_type=JSON, if_none_match="*")
        except S3PreconditionFailed as exc:
            raise StorageConflictError(
                f"{self.where} was changed by another writer during this write; nothing was published, retry"
            ) from exc
        except StorageError as exc:
            if getattr(exc, "code", "") != "NotImplemented":
                raise
            # A service without conditional writes: publish unconditionally (last writer wins).
            log.info(
                "%s does not support conditional writes; writing the pointer unconditionally", self.objects
            )
            await self.objects.put(self.pointer_key, body, content_type=JSON)

    async def delete_manifest(self) -> None:
        await self.objects.delete([self.pointer_key])

    # Blobs -------------------------------------------------------------------------------------

    def blob_refs(self, content_hash: str, encoded: EncodedCatalog) -> tuple[tuple[BlobRef, ...], bool]:
        key = catalog_key(self.prefix, content_hash, encoded.encoding)
        return (BlobRef(name=key, size=encoded.stored_size, sha256=sha256_hash(encoded.payload)),), False

    def document_ref(self, content_hash: str, name: str, data: bytes) -> BlobRef:
        key = document_key(self.prefix, content_hash, name)
        return BlobRef(name=key, size=len(data), sha256=sha256_hash(data))

    async def put_blob(self, manifest: Manifest, ref: BlobRef, data: bytes) -> None:
        metadata = {"content-hash": manifest.content_hash, "server-count": str(manifest.server_count)}
        # Generations are immutable and content-addressed: an object of the right size carrying the
        # same hash is the same object (from an interrupted or earlier write); keep it.
        head = await self.objects.head(ref.name)
        if (
            head is not None
            and int(head.get("ContentLength", -1)) == ref.size
            and (head.get("Metadata") or {}).get("content-hash") == manifest.content_hash
            and self._encryption_matches(head)
        ):
            return
        content_type = GZIP if ref.name.endswith(".gz") else JSON
        await self.objects.upload(ref.name, data, content_type=content_type, metadata=metadata)

    def _encryption_matches(self, head: Mapping[str, Any]) -> bool:
        wanted = self.settings.server_side_encryption
        return not wanted or head.get("ServerSideEncryption") == wanted

    async def get_blob(self, manifest: Manifest, ref: BlobRef) -> bytes:
        try:
            return await self.objects.download(ref.name, ref.size)
        except S3NotFound as exc:
            raise BlobUnavailable(f"{self.objects.url(ref.name)} does not exist") from exc

    async def missing(self, manifest: Manifest) -> list[str]:
        refs = manifest.stored_objects
        heads = await asyncio.gather(*(self.objects.head(ref.name) for ref in refs))
        return [
            ref.name
            for head, ref in zip(heads, refs, strict=True)
            if head is None or int(head.get("ContentLength", -1)) != ref.size
        ]

    async def list_objects(self) -> list[StoredObject]:
        found = []
        for obj in await self.objects.list_keys(self.prefix + "/"):
            generation = generation_of(self.prefix, obj.key)
            found.append(
                StoredObject(
                    name=obj.key,
                    generation=HASH_PREFIX + generation if generation else None,
                    created=obj.last_modified,
                )
            )
        return found

    async def delete_objects(self, objects: Sequence[StoredObject]) -> list[str]:
        return await self.objects.delete([obj.name for obj in objects]) if objects else []

    # Announcements -----------------------------------------------------------------------------

    async def announcements(self) -> AsyncGenerator[str | None, None]:
        """Poll the pointer every `poll_interval` seconds; announce each new version's `generation_id`."""
        etag: str | None = None
        yield None
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                fetched = await self.objects.get(
                    self.pointer_key, if_none_match=etag, max_bytes=MAX_POINTER_BYTES
                )
            except S3NotModified:
                continue
            except S3NotFound:
                etag = None  # deleted: keep serving what we have, wait for a new pointer
                continue
            etag = fetched.etag
            try:
                announced = parse_pointer(fetched.data, self.prefix, self.where).generation_id
            except StorageCorruptError as exc:
                # Damaged until a writer replaces it (and its ETag changes).
                log.error("not loading catalogue from %s: %s", self.where, exc)
                continue
            yield announced
