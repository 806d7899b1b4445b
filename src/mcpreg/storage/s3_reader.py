"""The S3 backend, reader side: whole, verified generations, and a stream of new ones by polling.

A read takes the pointer, then the catalogue object it names, and accepts the bytes only when they
decode to the pointer's size and hash to its content hash. An object that is gone (pruned after the
pointer moved on) sends the read back to the pointer; a pointer that did not move while its object is
missing is an error, never a partial catalogue.

`changes()` polls the pointer with `If-None-Match: <ETag>` every `poll_interval` seconds: one small
request that answers 304 while nothing changed. Failures (the service down, access revoked) are
logged and retried with backoff while the consumer keeps the generation it has.

`presigned_toolhive_url(hash)` signs a GET of a generation's ToolHive document (when the writer
stored one), for `GET /api/v1/registry` to answer with a redirect instead of the bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator

from mcpreg.backoff import Backoff
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodingLimits, decode
from mcpreg.storage.errors import StorageCorruptError, StorageError
from mcpreg.storage.model import StoredCatalog, sha256_hash
from mcpreg.storage.s3_config import CredentialsProvider, S3Settings
from mcpreg.storage.s3_errors import S3NotFound, S3NotModified
from mcpreg.storage.s3_io import S3Objects
from mcpreg.storage.s3_layout import MAX_POINTER_BYTES, Pointer, pointer_key, registry_prefix

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 10.0
DEFAULT_PRESIGN_TTL = 300
# Generations published faster than a read completes: give up after this many in a row.
MAX_GENERATION_CHANGES = 20
_REMEMBERED_POINTERS = 8


def _assemble(pointer: Pointer, payload: bytes, where: str, limits: EncodingLimits) -> StoredCatalog:
    """Decode and verify (runs in a worker thread: it hashes megabytes)."""
    if len(payload) != pointer.catalog.size:
        raise StorageCorruptError(
            f"{where}: {len(payload)} bytes stored, the pointer says {pointer.catalog.size}"
        )
    data = decode(payload, pointer.encoding, pointer.size, limits.max_decoded_bytes)
    if sha256_hash(data) != pointer.content_hash:
        raise StorageCorruptError(f"{where}: the stored catalogue does not match its content hash")
    return StoredCatalog(
        data=data,
        content_hash=pointer.content_hash,
        revision=pointer.revision,
        stored_at=pointer.stored_at,
        server_count=pointer.server_count,
    )


class S3CatalogReader:
    """Reads what `S3CatalogStore` publishes for `registry` in `namespace`."""

    def __init__(
        self,
        settings: S3Settings,
        namespace: str,
        registry: str,
        *,
        credentials: CredentialsProvider | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        presign_ttl: int = DEFAULT_PRESIGN_TTL,
        backoff: Backoff | None = None,
        limits: EncodingLimits = DEFAULT_LIMITS,
    ) -> None:
        if poll_interval <= 0 or presign_ttl < 1:
            raise ValueError("poll_interval and presign_ttl must be positive")
        self.settings = settings
        self.prefix = registry_prefix(settings.prefix, namespace, registry)
        self.poll_interval = poll_interval
        self.presign_ttl = presign_ttl
        self.backoff = backoff or Backoff(initial=min(1.0, poll_interval), maximum=max(30.0, poll_interval))
        self.limits = limits
        self.objects = S3Objects(settings, credentials)
        self._pointers: OrderedDict[str, Pointer] = OrderedDict()  # by content hash, newest last
        self._signed: dict[str, tuple[str, float]] = {}  # key -> (url, monotonic expiry)

    def __repr__(self) -> str:
        return f"S3CatalogReader(s3://{self.settings.bucket}/{self.prefix})"

    @property
    def pointer_key(self) -> str:
        return pointer_key(self.prefix)

    # --- reading -----------------------------------------------------------------------------------

    async def _get_pointer(self, if_none_match: str | None = None) -> tuple[Pointer, str] | None:
        """The pointer and its ETag; None when there is none. Raises S3NotModified when asked."""
        try:
            fetched = await self.objects.get(
                self.pointer_key, if_none_match=if_none_match, max_bytes=MAX_POINTER_BYTES
            )
        except S3NotFound:
            return None
        pointer = Pointer.parse(fetched.data, self.prefix, self.objects.url(self.pointer_key))
        return pointer, fetched.etag

    async def read(self) -> StoredCatalog | None:
        """The published generation, or None when nothing is stored."""
        got = await self._get_pointer()
        return None if got is None else await self._load(*got)

    async def _load(self, pointer: Pointer, etag: str) -> StoredCatalog | None:
        """The generation `pointer` names, following the pointer if it moves on meanwhile."""
        for _ in range(MAX_GENERATION_CHANGES):
            where = self.objects.url(pointer.catalog.key)
            try:
                payload = await self.objects.download(pointer.catalog.key, pointer.catalog.size)
            except S3NotFound:
                fresh = await self._get_pointer()
                if fresh is None:
                    return None  # deleted while we read: nothing is stored any more
                if fresh[1] == etag:
                    raise StorageCorruptError(
                        f"{where}: the object the catalogue pointer names does not exist"
                    ) from None
                pointer, etag = fresh
                continue
            stored = await asyncio.to_thread(_assemble, pointer, payload, where, self.limits)
            self._remember(pointer)
            return stored
        raise StorageError(
            f"{self.objects.url(self.pointer_key)} changed {MAX_GENERATION_CHANGES} times in one read"
        )

    def _remember(self, pointer: Pointer) -> None:
        self._pointers[pointer.content_hash] = pointer
        self._pointers.move_to_end(pointer.content_hash)
        while len(self._pointers) > _REMEMBERED_POINTERS:
            self._pointers.popitem(last=False)

    async def changes(self) -> AsyncGenerator[StoredCatalog, None]:
        last_etag: str | None = None
        last_hash: str | None = None
        failures = 0
        while True:
            stored: StoredCatalog | None = None
            try:
                got = await self._get_pointer(if_none_match=last_etag)
                if got is None:
                    last_etag = None  # deleted: keep serving what we have, wait for a new pointer
                else:
                    pointer, etag = got
                    if pointer.content_hash != last_hash:
                        stored = await self._load(pointer, etag)
                    last_etag = etag
                failures = 0
            except S3NotModified:
                failures = 0
            except StorageCorruptError as exc:
                # Damaged until a writer replaces it: wait for the pointer to change (its ETag is
                # unknown here, so poll at the normal period).
                log.error("not loading catalogue from %s: %s", self.objects.url(self.pointer_key), exc)
                failures = 0
            except StorageError as exc:
                failures += 1
                delay = self.backoff.delay(failures)
                log.warning(
                    "polling catalogue %s failed (%s); retrying in %.1f s, serving the last one meanwhile",
                    self.objects.url(self.pointer_key),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if stored is not None and stored.content_hash != last_hash:
                last_hash = stored.content_hash
                yield stored
            await asyncio.sleep(self.poll_interval)

    # --- presigned downloads -----------------------------------------------------------------------

    async def presigned_toolhive_url(self, content_hash: str) -> str | None:
        """A presigned GET URL of generation `content_hash`'s ToolHive document, valid for about
        `presign_ttl` seconds; None when this reader did not load that generation or it has none."""
        pointer = self._pointers.get(content_hash)
        if pointer is None or pointer.toolhive is None:
            return None
        key = pointer.toolhive.key
        now = time.monotonic()
        cached = self._signed.get(key)
        # Reuse a URL while at least half its lifetime remains: signing is cheap but not free.
        if cached is not None and cached[1] - now > self.presign_ttl / 2:
            return cached[0]
        url = await self.objects.presign_get(key, self.presign_ttl)
        self._signed = {k: v for k, v in self._signed.items() if v[1] > now}
        self._signed[key] = (url, now + self.presign_ttl)
        return url
