"""Test doubles the operator's unit tests share (pytest puts this folder on sys.path)."""

from __future__ import annotations

from typing import Any

from fixtures.catalogues import TOOLHIVE_PREFIX, toolhive_catalogue
from mcpreg.storage.model import StorageLocation, StoredCatalog, WriteResult


class MemoryStore:
    """A catalogue store in memory: skips a write when the hash is unchanged, as both backends do, and
    reads back what it holds (as the writers' `read` does)."""

    def __init__(self, name: str = "test-data") -> None:
        self.name = name
        self.stored: StoredCatalog | None = None
        self.writes = 0
        self.reads = 0

    async def current_hash(self) -> str | None:
        return self.stored.content_hash if self.stored else None

    async def write(self, catalog: StoredCatalog, *, before_publish: Any = None) -> WriteResult:
        previous = await self.current_hash()
        self.stored = catalog
        written = previous != catalog.content_hash
        self.writes += written
        return WriteResult(
            location=StorageLocation(type="configmap", config_maps=(self.name,)),
            written=written,
            content_hash=catalog.content_hash,
            previous_hash=previous,
            encoding="identity",
            stored_bytes=catalog.size,
        )

    async def read(self) -> StoredCatalog | None:
        self.reads += 1
        return self.stored

    async def delete(self) -> None:
        self.stored = None

    async def location(self) -> StorageLocation | None:
        return StorageLocation(type="configmap", config_maps=(self.name,)) if self.stored else None

    async def resource_names(self) -> tuple[str, ...]:
        return (self.name,)


PREFIX = TOOLHIVE_PREFIX


def toolhive(*names: str, tag: str = "utility", description: str = "A server.") -> bytes:
    """A ToolHive registry document with one stdio server per name, all with `description`."""
    return toolhive_catalogue(dict.fromkeys(names, description), tag=tag)
