"""`FileCatalogReader`: the reader interface over a local file (`mcpreg serve --file`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest

from mcpreg.catalog import CatalogError
from mcpreg.storage import CatalogReader, FileCatalogReader, StoredCatalog, sha256_hash

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "toolhive"
OLD, NEW = SHARED / "registry-2025-07-29.json", SHARED / "registry-2026-02-18.json"


async def _next(changes: AsyncIterator[StoredCatalog], within: float = 5.0) -> StoredCatalog:
    return await asyncio.wait_for(anext(changes), within)


def replace(path: Path, data: bytes) -> None:
    """Write the way editors and `kubectl cp` do: a new file renamed over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


async def test_read_a_real_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_bytes(NEW.read_bytes())
    reader = FileCatalogReader(path)
    assert isinstance(reader, CatalogReader)
    stored = await reader.read()
    assert stored is not None
    assert stored.data == NEW.read_bytes() and stored.content_hash == sha256_hash(stored.data)
    assert stored.server_count == 102
    assert stored.stored_at.timestamp() == pytest.approx(path.stat().st_mtime, abs=1e-3)
    assert stored.revision.endswith("Z")


async def test_missing_file_reads_as_nothing_stored(tmp_path: Path) -> None:
    assert await FileCatalogReader(tmp_path / "absent.json").read() is None


async def test_invalid_file_raises_the_catalogue_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_text('{"servers": {"x": {"transport": "carrier-pigeon"}}}')
    with pytest.raises(CatalogError):
        await FileCatalogReader(path).read()


async def test_custom_server_counter(tmp_path: Path) -> None:
    path = tmp_path / "anything.bin"
    path.write_bytes(b"\x00\x01")
    stored = await FileCatalogReader(path, count_servers=len).read()
    assert stored is not None and stored.server_count == 2


async def test_changes_follow_the_file(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    reader = FileCatalogReader(path, poll_interval=0.02)
    async with aclosing(reader.changes()) as changes:
        pending = asyncio.ensure_future(_next(changes))
        await asyncio.sleep(0.1)
        assert not pending.done()  # no file yet: nothing
        path.write_bytes(OLD.read_bytes())
        first = await pending
        assert first.data == OLD.read_bytes()

        # A half-written, invalid version is skipped; the consumer keeps the last good one.
        path.write_text('{"servers": ')
        await asyncio.sleep(0.1)
        # Same content again (a touch or an identical save) is not a new generation.
        replace(path, OLD.read_bytes())
        await asyncio.sleep(0.1)
        replace(path, NEW.read_bytes())
        second = await _next(changes)
        assert second.data == NEW.read_bytes() and second.server_count == 102

        path.unlink()  # removed: nothing is yielded, the consumer keeps serving
        await asyncio.sleep(0.1)
        path.write_bytes(OLD.read_bytes())
        third = await _next(changes)
        assert third.content_hash == first.content_hash
