"""The ConfigMap backend, reader side: whole, verified generations, and a stream of new ones.

Needs only get/list/watch on the names `ConfigMapCatalogStore.resource_names()` reports (list and
watch are always narrowed by a `metadata.name` field selector, which is what lets RBAC authorize
them by resourceNames).

A read takes the head, then (split layouts) its parts, and accepts the result only when every part
matches the head's list and the decoded bytes hash to the head's content hash. A part that is gone
or unreadable means the writer moved on (or the reader's permissions are catching up): the head is
read again and the read restarts, so a half-written or mixed catalogue is never returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from functools import partial
from typing import Any

from kubernetes_asyncio.client import ApiClient

from mcpreg.backoff import Backoff
from mcpreg.kube import ConfigMapClient, ForbiddenError, GoneError, JsonObject, KubeError, NotFoundError
from mcpreg.storage.concurrency import bounded_gather
from mcpreg.storage.configmap_layout import (
    ConfigMapNames,
    HeadView,
    PartRef,
    parse_head,
    parse_head_annotations,
    parse_part,
)
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodingLimits, decode
from mcpreg.storage.errors import StorageCorruptError, StorageError
from mcpreg.storage.model import StoredCatalog, sha256_hash

log = logging.getLogger(__name__)

DEFAULT_WATCH_TIMEOUT = 300
# Each retry of the same head waits longer; with the default backoff, 6 attempts span about 6 s,
# ample for RBAC to catch up with a widened Role.
DEFAULT_READ_ATTEMPTS = 6
# Generations published faster than a read completes: give up after this many in a row.
MAX_GENERATION_CHANGES = 20


def _assemble(view: HeadView, chunks: list[bytes], limits: EncodingLimits) -> StoredCatalog:
    """Concatenate, decode and verify (runs in a worker thread: it hashes megabytes)."""
    meta = view.meta
    payload = view.payload if view.payload is not None else b"".join(chunks)
    if len(payload) != meta.stored_size:
        raise StorageCorruptError(
            f"ConfigMap {view.name}: {len(payload)} stored bytes, the head says {meta.stored_size}"
        )
    data = decode(payload, meta.encoding, meta.size, limits.max_decoded_bytes)
    if sha256_hash(data) != meta.content_hash:
        raise StorageCorruptError(
            f"ConfigMap {view.name}: the stored catalogue does not match its content hash"
        )
    return StoredCatalog(
        data=data,
        content_hash=meta.content_hash,
        revision=meta.revision,
        stored_at=meta.stored_at,
        server_count=meta.server_count,
    )


def _resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class ConfigMapCatalogReader:
    """Reads what `ConfigMapCatalogStore` publishes for `registry` in `namespace`."""

    def __init__(
        self,
        api: ApiClient,
        namespace: str,
        registry: str,
        *,
        limits: EncodingLimits = DEFAULT_LIMITS,
        concurrency: int = 4,
        request_timeout: float = 30.0,
        watch_timeout: int = DEFAULT_WATCH_TIMEOUT,
        read_attempts: int = DEFAULT_READ_ATTEMPTS,
        backoff: Backoff | None = None,
    ) -> None:
        self.names = ConfigMapNames(registry)
        self.namespace = namespace
        self.limits = limits
        self.concurrency = concurrency
        self.watch_timeout = watch_timeout
        self.read_attempts = read_attempts
        self.backoff = backoff or Backoff()
        self._client = ConfigMapClient(api, namespace, request_timeout=request_timeout)

    @property
    def head_name(self) -> str:
        return self.names.head

    def __repr__(self) -> str:
        return f"ConfigMapCatalogReader({self.namespace}/{self.names.head})"

    async def read(self) -> StoredCatalog | None:
        head = await self._client.get(self.names.head)
        return None if head is None else await self._read_generation(head)

    async def _read_generation(self, head: JsonObject) -> StoredCatalog | None:
        """Load the generation `head` describes, following the head if it moves on meanwhile."""
        attempts = changes = 0
        while True:
            try:
                view = await asyncio.to_thread(parse_head, head)
                chunks = await self._fetch_parts(view)
                return await asyncio.to_thread(_assemble, view, chunks, self.limits)
            except (NotFoundError, ForbiddenError, StorageCorruptError) as exc:
                failure: StorageError | KubeError = exc
            fresh = await self._client.get(self.names.head)
            if fresh is None:
                return None  # deleted while we read: nothing is stored any more
            if _resource_version(fresh) != _resource_version(head):
                changes += 1
                if changes > MAX_GENERATION_CHANGES:
                    raise StorageError(
                        f"ConfigMap {self.namespace}/{self.names.head} changed {changes} times in one read"
                    ) from failure
                head = fresh
                continue
            # Same generation. A damaged one stays damaged; a missing or forbidden part may be the
            # API server's RBAC cache lagging behind a just-widened Role, so give it a few tries.
            if isinstance(failure, StorageCorruptError):
                raise failure
            attempts += 1
            if attempts >= self.read_attempts:
                raise StorageCorruptError(
                    f"ConfigMap {self.namespace}/{self.names.head}: a part it lists is unreadable ({failure})"
                ) from failure
            await asyncio.sleep(self.backoff.delay(attempts))

    async def _fetch_parts(self, view: HeadView) -> list[bytes]:
        if not view.meta.parts:
            return []

        async def fetch(ref: PartRef) -> bytes:
            obj = await self._client.get(ref.name)
            if obj is None:
                raise NotFoundError(404, "NotFound", f"ConfigMap {self.namespace}/{ref.name} not found")
            return await asyncio.to_thread(parse_part, obj, ref, view.meta.content_hash)

        return await bounded_gather([partial(fetch, ref) for ref in view.meta.parts], self.concurrency)

    async def changes(self) -> AsyncGenerator[StoredCatalog, None]:
        """Each new generation (the current one first), by list + metadata-only watch of the head.

        Generations are told apart by content hash, so a head rewritten with the same data is not
        yielded again; generations published faster than they are read may be skipped (the latest
        one is always delivered). Errors are logged and retried with backoff, never raised. A
        published generation that cannot be read (a part missing, or not yet readable because the
        reader's Role was widened after publishing) is retried until it loads or is replaced.
        """
        last_hash: str | None = None
        failures = 0  # consecutive failures of list/watch, reset once a watch works again
        unread = 0  # consecutive failures to load the published generation
        selector = f"metadata.name={self.names.head}"
        while True:
            try:
                items, resource_version = await self._client.list(field_selector=selector)
                stored, unread = await self._load(items[0] if items else None, last_hash, unread)
                if stored is not None:
                    last_hash = stored.content_hash
                    yield stored
                while True:  # one watch request per iteration, resumed where the last one ended
                    started = asyncio.get_running_loop().time()
                    received = failed_now = False
                    # While the published generation is unread, end each watch early to retry it.
                    timeout = max(1, round(self.backoff.delay(unread))) if unread else self.watch_timeout
                    events = self._client.watch(
                        field_selector=selector, resource_version=resource_version, timeout_seconds=timeout
                    )
                    async with aclosing(events):
                        async for event in events:
                            received, failures = True, 0
                            obj = event.get("object") or {}
                            resource_version = _resource_version(obj) or resource_version
                            if event["type"] not in ("ADDED", "MODIFIED"):
                                continue  # BOOKMARK; DELETED keeps the last generation in use
                            try:
                                announced = parse_head_annotations(obj).content_hash
                            except StorageCorruptError as exc:
                                log.error("%s", exc)
                                continue
                            if announced == last_hash:
                                unread = 0  # back to the generation the consumer already has
                                continue
                            head = await self._client.get(self.names.head)
                            stored, unread = await self._load(head, last_hash, unread)
                            if stored is not None:
                                last_hash = stored.content_hash
                                yield stored
                            elif unread:
                                failed_now = True
                                break  # watch again with a short timeout, to retry it then
                    if failed_now:
                        continue
                    if unread:
                        head = await self._client.get(self.names.head)
                        stored, unread = await self._load(head, last_hash, unread)
                        if stored is not None:
                            last_hash = stored.content_hash
                            yield stored
                    elif received or asyncio.get_running_loop().time() - started >= 1.0:
                        failures = 0  # a watch that ran its course: resume at once
                    else:
                        # Ended at once with nothing to say: do not hammer the API server.
                        failures += 1
                        await asyncio.sleep(self.backoff.delay(failures))
            except GoneError:
                # The resourceVersion was compacted away: list afresh (at once the first time).
                failures += 1
                log.debug("watch of %s/%s expired; listing again", self.namespace, self.names.head)
                if failures > 1:
                    await asyncio.sleep(self.backoff.delay(failures - 1))
            except (StorageError, KubeError) as exc:
                failures += 1
                delay = self.backoff.delay(failures)
                log.warning(
                    "watching catalogue %s/%s failed (%s); retrying in %.1f s",
                    self.namespace,
                    self.names.head,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _load(
        self, head: JsonObject | None, last_hash: str | None, unread: int
    ) -> tuple[StoredCatalog | None, int]:
        """The generation `head` describes if it is new to the consumer, and the new `unread` count.

        A generation that cannot be loaded is logged and counted, never raised: the consumer keeps
        the one it has.
        """
        if head is None:
            return None, 0
        try:
            stored = await self._read_generation(head)
        except StorageCorruptError as exc:
            log.error("not loading catalogue from %s/%s: %s", self.namespace, self.names.head, exc)
            return None, unread + 1
        if stored is None or stored.content_hash == last_hash:
            return None, 0
        return stored, 0
