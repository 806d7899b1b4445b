"""A catalogue in a local file, behind the same reader interface (`mcpreg serve --file`)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from pathlib import Path

from mcpreg.storage.model import StoredCatalog, sha256_hash

log = logging.getLogger(__name__)

FileSignature = tuple[int, int, int, int]  # device, inode, size, mtime in ns


def count_servers(data: bytes) -> int:
    """Servers in a catalogue document of any supported format (parses it: raises CatalogError)."""
    from mcpreg.catalog import parse_catalog  # the catalogue library is only needed here

    return parse_catalog(data).server_count


def _signature(path: Path) -> FileSignature | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class FileCatalogReader:
    """Reads a catalogue file; `changes()` polls its size, mtime and inode.

    `revision` is the file's modification time (RFC 3339). `server_count` comes from
    `count_servers(data)`, which by default parses the document, so `read()` raises the catalogue
    library's CatalogError (or OSError) for a file that cannot be used; `changes()` logs such
    failures and keeps waiting for a good version (an editor's half-saved file is not fatal).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        poll_interval: float = 1.0,
        count_servers: Callable[[bytes], int] = count_servers,
    ) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._count_servers = count_servers

    def __repr__(self) -> str:
        return f"FileCatalogReader({str(self.path)!r})"

    def _load(self) -> StoredCatalog | None:
        try:
            with self.path.open("rb") as handle:
                # Size and time from the open file, so they describe exactly the bytes read even if
                # the path is replaced meanwhile.
                st = os.fstat(handle.fileno())
                data = handle.read()
        except FileNotFoundError:
            return None
        stored_at = datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC)
        return StoredCatalog(
            data=data,
            content_hash=sha256_hash(data),
            revision=stored_at.isoformat().replace("+00:00", "Z"),
            stored_at=stored_at,
            server_count=self._count_servers(data),
        )

    async def read(self) -> StoredCatalog | None:
        """The file's catalogue, or None when the file does not exist."""
        return await asyncio.to_thread(self._load)

    async def changes(self) -> AsyncGenerator[StoredCatalog, None]:
        last_signature: FileSignature | None = None
        last_hash: str | None = None
        first = True
        while True:
            signature = await asyncio.to_thread(_signature, self.path)
            if first or signature != last_signature:
                first = False
                last_signature = signature
                try:
                    stored = await self.read()
                except Exception as exc:  # any unusable version: keep the last good one
                    log.warning("not loading catalogue file %s: %s", self.path, exc)
                    stored = None
                if stored is not None and stored.content_hash != last_hash:
                    last_hash = stored.content_hash
                    yield stored
            await asyncio.sleep(self.poll_interval)
