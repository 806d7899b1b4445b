"""Reloads and the cyclic garbage collector: what is garbage at a reload is freed, never frozen for good.

The loader moves everything alive into the permanent generation after each reload (`gc.freeze()`), so
that full collections stop walking the snapshot. Garbage must not go along: frozen objects are never
examined again, so a reference cycle frozen as garbage (or frozen alive and dropped later, like the
replaced snapshot) would stay in memory for good, a little more with every reload.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_testdata import catalogue_bytes, entry

from mcpreg.catalog import gcpause
from mcpreg.catalog.gcpause import collector_paused
from mcpreg.storage import FileCatalogReader, StoredCatalog
from mcpreg_api import loader as loader_module
from mcpreg_api.builder import SnapshotBuilder, build_off_loop
from mcpreg_api.loader import CatalogLoader, CatalogState
from mcpreg_api.metrics import ApiMetrics
from mcpreg_api.snapshot import Snapshot

GARBAGE_PER_RELOAD = 300


class Cycle:
    """Refers to itself, so only the cyclic collector can free it; counts how many were freed."""

    freed = 0

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        Cycle.freed += 1


def generation(number: int, count: int = 20) -> StoredCatalog:
    data = catalogue_bytes([entry(f"io.github.gen{number}/server-{i:03d}", "1.0.0") for i in range(count)])
    return StoredCatalog.create(data, revision=str(number), server_count=count)


def new_loader(tmp_path: Path, build: SnapshotBuilder = build_off_loop) -> CatalogLoader:
    """The real loader and builder; `apply` is called directly (the reader is never followed)."""
    return CatalogLoader(FileCatalogReader(tmp_path / "unused.json"), CatalogState(), ApiMetrics(), build)


@pytest.fixture
def collector_off() -> Iterator[None]:
    """No automatic collections during the test.

    Garbage that has reached the oldest generation waits for a full collection, which need not come
    before the next reload; with automatic collections off, that is where all garbage is, every time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()  # whatever a failing run left frozen
        gc.collect()
        if was_enabled:
            gc.enable()


async def test_garbage_present_at_a_reload_is_collected_not_frozen(
    collector_off: None, tmp_path: Path
) -> None:
    loader = new_loader(tmp_path)
    assert await loader.apply(generation(0))
    Cycle.freed = 0
    made = 0
    frozen: list[int] = []  # the permanent generation's size after each reload
    for number in range(1, 9):
        for _ in range(GARBAGE_PER_RELOAD):
            Cycle()  # garbage at once: a connection's transport and socket, say, once it closed
            made += 1
        assert await loader.apply(generation(number))
        frozen.append(gc.get_freeze_count())
    gc.collect()
    assert Cycle.freed == made, f"{made - Cycle.freed} of {made} garbage cycles never freed; frozen: {frozen}"
    growth = frozen[-1] - frozen[0]
    assert growth < GARBAGE_PER_RELOAD, f"the permanent generation grows with each reload: {frozen}"


async def test_a_replaced_snapshot_is_freed_even_if_it_holds_a_cycle(
    collector_off: None, tmp_path: Path
) -> None:
    """Reference counting frees a snapshot without cycles (test_api_snapshot); one with a cycle needs the
    cyclic collector, which must see it although it was frozen when it was loaded."""

    async def build_with_a_cycle(stored: StoredCatalog) -> Snapshot:
        snapshot = await build_off_loop(stored)
        snapshot.__dict__["itself"] = snapshot
        return snapshot

    loader = new_loader(tmp_path, build_with_a_cycle)
    loaded: list[weakref.ref[Snapshot]] = []
    for number in range(6):
        assert await loader.apply(generation(number))
        assert loader.state.snapshot is not None
        loaded.append(weakref.ref(loader.state.snapshot))
    gc.collect()
    alive = [number for number, ref in enumerate(loaded) if ref() is not None]
    assert alive == [5], f"generations still in memory: {alive}"


async def test_no_collection_or_freeze_while_another_thread_has_the_collector_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread building with the collector paused is creating objects by the hundred thousand: a full
    collection then would walk all of them (with the GIL held), and a freeze would pin its temporaries.
    The loader waits until the pause is over, then collects, then freezes."""
    monkeypatch.setattr(loader_module, "SETTLE_RETRY_SECONDS", 0.01, raising=False)
    paused, release = threading.Event(), threading.Event()
    calls: list[tuple[str, bool]] = []  # (what, while the other thread had the collector paused)
    real_freeze, real_collect = gc.freeze, gc.collect

    def freeze() -> None:
        calls.append(("freeze", paused.is_set()))
        real_freeze()

    def collect(generation: int = 2) -> int:
        calls.append(("collect", paused.is_set()))
        return real_collect(generation)

    def builder() -> None:
        with collector_paused():
            paused.set()
            release.wait(10)
            paused.clear()

    monkeypatch.setattr(gc, "freeze", freeze)
    monkeypatch.setattr(gc, "collect", collect)
    other = threading.Thread(target=builder, name="paused-builder")
    other.start()
    try:
        assert paused.wait(5)
        loader = new_loader(tmp_path)
        assert await loader.apply(generation(1))
        assert loader.state.snapshot is not None and loader.state.snapshot.revision == "1"  # served at once
        await asyncio.sleep(0.1)  # several retries while the pause lasts
        during = list(calls)
    finally:
        release.set()
        other.join(5)
    for _ in range(300):
        if ("freeze", False) in calls:
            break
        await asyncio.sleep(0.01)
    assert during == [], f"while another thread had the collector paused: {during}"
    assert ("freeze", False) in calls, f"never frozen once the pause ended: {calls}"
    assert calls.index(("collect", False)) < calls.index(("freeze", False)), calls


def test_a_finalizer_that_pauses_the_collector_does_not_deadlock_the_collection() -> None:
    class PausesWhenFreed:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            with collector_paused():
                pass

    PausesWhenFreed()
    outcome: list[object] = []

    def collect() -> None:
        try:
            outcome.append(gcpause.collect_and_freeze())
        except Exception as exc:
            outcome.append(exc)

    collecting = threading.Thread(target=collect, daemon=True)
    collecting.start()
    collecting.join(10)
    try:
        assert not collecting.is_alive(), "collect_and_freeze deadlocked in a finalizer"
        assert outcome == [True]
    finally:
        gc.unfreeze()
