"""The read protocol, once for every backend: whole, verified generations, and a stream of new ones.

A read takes the manifest, then the blobs it lists, and accepts the result only when every blob has
the size (and, when recorded, the hash) the manifest gives it and the decoded bytes hash to the
content hash. A blob that is gone or unreadable means the writer moved on (or the reader's
permissions are catching up): the manifest is read again and the read restarts, so a half-written
or mixed catalogue is never returned.

`changes()` follows the backend's announcements (a ConfigMap watch, S3 polling) and reads each new
generation; failures are logged and retried with `Backoff` while the consumer keeps what it has.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from functools import partial
from typing import Generic

from mcpreg.backoff import Backoff
from mcpreg.kube import KubeError
from mcpreg.storage.backend import BackendT, BlobUnavailable, Head
from mcpreg.storage.concurrency import bounded_gather
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodingLimits, decode
from mcpreg.storage.errors import StorageCorruptError, StorageError
from mcpreg.storage.manifest import Manifest
from mcpreg.storage.model import StoredCatalog, sha256_hash

log = logging.getLogger(__name__)

# Generations published faster than a read completes: give up after this many in a row.
MAX_GENERATION_CHANGES = 20
_REMEMBERED_MANIFESTS = 8
# Following that failed after working this long starts its backoff afresh.
HEALTHY_SECONDS = 30.0


def assemble(
    manifest: Manifest, chunks: Sequence[bytes], where: str, limits: EncodingLimits
) -> StoredCatalog:
    """Check each blob, concatenate, decode and verify (in a worker thread: it hashes megabytes)."""
    for ref, chunk in zip(manifest.blobs, chunks, strict=True):
        if len(chunk) != ref.size or (ref.sha256 is not None and sha256_hash(chunk) != ref.sha256):
            raise StorageCorruptError(
                f"{where}: {ref.name} does not hold the bytes the manifest lists for it"
            )
    payload = b"".join(chunks)
    if len(payload) != manifest.stored_size:
        raise StorageCorruptError(
            f"{where}: {len(payload)} stored bytes, the manifest says {manifest.stored_size}"
        )
    data = decode(payload, manifest.encoding, manifest.size, limits.max_decoded_bytes)
    if sha256_hash(data) != manifest.content_hash:
        raise StorageCorruptError(f"{where}: the stored catalogue does not match its content hash")
    return manifest.catalog(data)


async def _next(announcements: AsyncGenerator[str | None, None]) -> str | None:
    return await anext(announcements)


class GenerationReader(Generic[BackendT]):
    """`CatalogReader` over any `Backend`.

    `read_attempts`: how often to try a generation whose manifest did not move while a blob it lists
    stayed unreadable (RBAC caches lag behind a widened Role), before calling it corrupt."""

    def __init__(
        self,
        backend: BackendT,
        *,
        limits: EncodingLimits = DEFAULT_LIMITS,
        read_attempts: int = 1,
        backoff: Backoff | None = None,
    ) -> None:
        self.backend = backend
        self.limits = limits
        self.read_attempts = read_attempts
        self.backoff = backoff or Backoff()
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()  # loaded, by content hash

    async def read(self) -> StoredCatalog | None:
        """The published generation, or None when nothing is stored yet."""
        head = await self.backend.get_manifest(payload=True)
        return None if head is None else await self._read_generation(head)

    async def _read_generation(self, head: Head) -> StoredCatalog | None:
        """Load the generation `head` describes, following the manifest if it moves on meanwhile."""
        attempts = changes = 0
        where = self.backend.where
        while True:
            try:
                if head.manifest is None:
                    raise StorageCorruptError(head.invalid or f"{where} is not a valid catalogue manifest")
                stored = await self._load(head)
                self._remember(head.manifest)
                return stored
            except (BlobUnavailable, StorageCorruptError) as exc:
                failure: StorageError = exc
            fresh = await self.backend.get_manifest(payload=True)
            if fresh is None:
                return None  # deleted while we read: nothing is stored any more
            if fresh.version != head.version:
                changes += 1
                if changes > MAX_GENERATION_CHANGES:
                    raise StorageError(f"{where} changed {changes} times in one read") from failure
                head = fresh
                continue
            # Same generation. A damaged one stays damaged; a missing or forbidden blob may be the
            # API server's RBAC cache lagging behind a just-widened Role, so give it a few tries.
            if not isinstance(failure, BlobUnavailable):
                raise failure
            attempts += 1
            if attempts >= self.read_attempts:
                raise StorageCorruptError(f"{where}: a part it lists is unreadable ({failure})") from failure
            await asyncio.sleep(self.backoff.delay(attempts))

    async def _load(self, head: Head) -> StoredCatalog:
        manifest = head.manifest
        assert manifest is not None
        chunks = await self._fetch_blobs(manifest, head)
        return await asyncio.to_thread(assemble, manifest, chunks, self.backend.where, self.limits)

    async def _fetch_blobs(self, manifest: Manifest, head: Head) -> list[bytes]:
        if manifest.inline:
            missing = [ref.name for ref in manifest.blobs if ref.name not in head.inline]
            if missing:
                raise StorageCorruptError(f"{self.backend.where}: {', '.join(missing)} is missing")
            return [head.inline[ref.name] for ref in manifest.blobs]
        return await bounded_gather(
            [partial(self.backend.get_blob, manifest, ref) for ref in manifest.blobs],
            self.backend.concurrency,
        )

    def _remember(self, manifest: Manifest) -> None:
        self._manifests[manifest.content_hash] = manifest
        self._manifests.move_to_end(manifest.content_hash)
        while len(self._manifests) > _REMEMBERED_MANIFESTS:
            self._manifests.popitem(last=False)

    def loaded_manifest(self, content_hash: str) -> Manifest | None:
        """The manifest of a generation this reader loaded recently, or None."""
        return self._manifests.get(content_hash)

    async def _load_new(self, last_hash: str | None, unread: int) -> tuple[StoredCatalog | None, int]:
        """The published generation if it is new to the consumer, and the new `unread` count.

        A generation that cannot be loaded is logged and counted, never raised: the consumer keeps
        the one it has."""
        head = await self.backend.get_manifest(payload=True)
        if head is None or (head.manifest is not None and head.manifest.generation_id == last_hash):
            return None, 0  # nothing stored, or what the consumer has: no need to fetch a byte more
        try:
            stored = await self._read_generation(head)
        except StorageCorruptError as exc:
            log.error("not loading catalogue from %s: %s", self.backend.where, exc)
            return None, unread + 1
        if stored is None or stored.generation_id == last_hash:
            return None, 0
        return stored, 0

    async def changes(self) -> AsyncGenerator[StoredCatalog, None]:
        """Each new generation (the current one first), told apart by `generation_id` (content hash
        and signing key), so a manifest rewritten with the same data and key is not yielded again;
        generations published faster than they are read may be skipped (the latest one is always
        delivered). A published generation that cannot be read (a blob missing, or not yet readable
        because the reader's Role was widened after publishing) is retried with backoff until it
        loads or is replaced."""
        last_hash: str | None = None
        unread = 0  # consecutive failures to load the published generation
        failures = 0  # consecutive failures to follow, reset once following worked for a while
        while True:
            started = asyncio.get_running_loop().time()
            announcements = self.backend.announcements()
            pending: asyncio.Future[str | None] | None = None
            try:
                while True:
                    if pending is None:
                        pending = asyncio.ensure_future(_next(announcements))
                    # While the published generation is unread, retry it when no news comes.
                    timeout = self.backoff.delay(unread) if unread else None
                    done, _ = await asyncio.wait({pending}, timeout=timeout)
                    if done:
                        announced, pending = pending.result(), None
                        if announced is not None and announced == last_hash:
                            unread = 0  # back to the generation the consumer already has
                            continue
                    stored, unread = await self._load_new(last_hash, unread)
                    if stored is not None:
                        last_hash = stored.generation_id
                        yield stored
            except (StorageError, KubeError, StopAsyncIteration) as exc:
                healthy = asyncio.get_running_loop().time() - started >= HEALTHY_SECONDS
                failures = 1 if healthy else failures + 1
                delay = self.backoff.delay(failures)
                log.warning(
                    "following catalogue %s failed (%s); retrying in %.1f s, serving the last one meanwhile",
                    self.backend.where,
                    str(exc) or type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
            finally:
                if pending is not None:
                    pending.cancel()
                    await asyncio.gather(pending, return_exceptions=True)
                await announcements.aclose()
