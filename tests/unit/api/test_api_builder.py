"""Building snapshots off the event loop: in a child process for large catalogues, the same result."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from api_testdata import catalogue_bytes

from mcpreg.storage import StoredCatalog
from mcpreg_api.builder import BuildFailed, build_off_loop, render_in_child
from mcpreg_api.snapshot import InvalidCatalog, build_snapshot


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
        await render_in_child(catalogue_bytes([]), [sys.executable, "-c", "import os; os._exit(3)"])


async def test_cancelling_kills_the_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    sleeper = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    task = asyncio.create_task(render_in_child(b"{}", [sys.executable, "-c", sleeper]))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if pid_file.exists() and pid_file.read_text():
            break
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone (and reaped)
