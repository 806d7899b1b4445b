"""Building snapshots off the event loop: in a child process for large catalogues, the same result."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from api_testdata import catalogue_bytes

from mcpreg.storage import StoredCatalog
from mcpreg_api.builder import BuildFailed, build_off_loop, prepare_in_child
from mcpreg_api.snapshot import InvalidCatalog, build_snapshot


def _dying_child(data: bytes, sender: Connection) -> None:
    os._exit(3)


def _sleeping_child(data: bytes, sender: Connection) -> None:
    time.sleep(60)


async def test_child_process_builds_the_same_snapshot(shared_data: Path) -> None:
    stored = StoredCatalog.create(
        (shared_data / "toolhive" / "registry-2026-02-18.json").read_bytes(), revision="r", server_count=0
    )
    in_child = await build_off_loop(stored, process_above=0)
    here = build_snapshot(stored)
    assert [e.body for e in in_child.view(latest_only=False, with_deleted=True).entries] == [
        e.body for e in here.view(latest_only=False, with_deleted=True).entries
    ]
    assert in_child.toolhive.body == here.toolhive.body
    assert in_child.toolhive.etag == here.toolhive.etag
    assert in_child.toolhive.gzipped() == here.toolhive.gzipped()
    assert in_child.server_count == here.server_count == 102
    assert in_child.build_seconds > 0


async def test_invalid_data_from_the_child() -> None:
    stored = StoredCatalog.create(b'{"servers": [{"server": {"name": 1}}]}', revision="r", server_count=0)
    with pytest.raises(InvalidCatalog) as caught:
        await build_off_loop(stored, process_above=0)
    assert caught.value.problems


async def test_a_dying_child_fails_the_build() -> None:
    with pytest.raises(BuildFailed, match="exit code 3"):
        await prepare_in_child(catalogue_bytes([]), target=_dying_child)


async def test_cancelling_terminates_the_child() -> None:
    task = asyncio.create_task(prepare_in_child(b"{}", target=_sleeping_child))
    await asyncio.sleep(1.0)
    assert multiprocessing.active_children()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not multiprocessing.active_children()
