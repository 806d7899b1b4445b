"""The two sides of storage: the operator writes (`CatalogStore`), the registry API reads
(`CatalogReader`). `writer.GenerationWriter` and `reader.GenerationReader` implement them once over
any backend's primitives (`backend`: ConfigMaps, S3); `FileCatalogReader` reads a local file for
`mcpreg serve --file`. Callers depend on nothing else.

All methods are coroutines on the caller's event loop; backends keep blocking work (compression,
hashing, file I/O, big JSON documents) off it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Protocol, runtime_checkable

from mcpreg.storage.model import StorageLocation, StoredCatalog, WriteResult

PublishHook = Callable[[StorageLocation], Awaitable[None]]
"""Called by `CatalogStore.write` once a new generation's data is in place and just before it is
published, with the location it is about to have. The operator uses it to grant readers access to
the new objects first (e.g. the API pod's Role resourceNames); an exception aborts the write and
leaves the previous generation published."""


@runtime_checkable
class CatalogStore(Protocol):
    """Writer side: one registry's stored catalogue."""

    async def current_hash(self) -> str | None:
        """Hash of the published generation, or None when nothing (complete) is stored. Cheap: no
        catalogue data is read."""
        ...

    async def write(
        self, catalog: StoredCatalog, *, before_publish: PublishHook | None = None
    ) -> WriteResult:
        """Store and publish `catalog` so that readers switch to it atomically.

        When the published hash already equals `catalog.content_hash`, nothing is written and the
        result says `written=False` with the current location. Raises `StorageConflictError` when
        another writer published in the meantime (nothing of this call is then published).
        """
        ...

    async def delete(self) -> None:
        """Remove everything stored for this registry (absent objects are not an error)."""
        ...

    async def location(self) -> StorageLocation | None:
        """Where the published generation is, or None when nothing is stored."""
        ...

    async def resource_names(self) -> tuple[str, ...]:
        """Every object name a reader needs for the published generation, and the names it must be
        able to watch to notice the next one. For ConfigMaps: the head, then the current parts."""
        ...


@runtime_checkable
class CatalogReader(Protocol):
    """Reader side: loads what a `CatalogStore` published, whole and verified, or not at all."""

    async def read(self) -> StoredCatalog | None:
        """The published generation, or None when nothing is stored yet."""
        ...

    def changes(self) -> AsyncGenerator[StoredCatalog, None]:
        """Each newly published generation, the current one first, each at most once in a row.

        An async generator: close it (`contextlib.aclosing`) to release its watch or poller.

        Runs until cancelled or closed: transient failures (expired watches, dropped connections,
        deleted objects, unreadable generations) are retried with backoff rather than raised, so the
        consumer keeps serving the last good generation meanwhile.
        """
        ...
