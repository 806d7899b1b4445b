"""Building snapshots off the event loop, so that a reload does not stall the requests being served.

Parsing a catalogue is CPU work that holds the GIL for long stretches (decoding an 18 MB document,
validating 10,000 entries), so a worker thread would still starve the event loop: requests answered
during such a reload wait for hundreds of milliseconds. Catalogues larger than `PROCESS_ABOVE` bytes are
therefore prepared in a short-lived child process (spawned, so nothing of this process's state is
shared with it), which sends back plain data (`snapshot.Prepared`: serialised entries and the ToolHive
document) and exits, taking its parsing memory with it; only the cheap `assemble` step runs here.
Smaller catalogues are prepared in a thread: for them, starting an interpreter would cost more than it
saves.

A child that is cancelled (shutdown) is terminated; one that dies (killed for memory, say) fails that
build, and the loader keeps serving the previous snapshot.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

from mcpreg.storage.model import StoredCatalog
from mcpreg_api.snapshot import InvalidCatalog, Prepared, Snapshot, assemble, prepare

PROCESS_ABOVE = 1024 * 1024

SnapshotBuilder = Callable[[StoredCatalog], Awaitable[Snapshot]]


class BuildFailed(RuntimeError):
    """The build process died or failed for a reason other than invalid data."""


async def build_off_loop(stored: StoredCatalog, *, process_above: int = PROCESS_ABOVE) -> Snapshot:
    """The snapshot of `stored`, prepared in a child process when large, else in a thread."""
    started = time.perf_counter()
    if len(stored.data) > process_above:
        prepared = await prepare_in_child(stored.data)
    else:
        prepared = await asyncio.to_thread(prepare, stored.data)
    return await asyncio.to_thread(assemble, prepared, stored, time.perf_counter() - started)


async def build_in_thread(stored: StoredCatalog) -> Snapshot:
    """Always in a thread (tests, and callers that cannot start processes)."""
    return await build_off_loop(stored, process_above=2**63)


ChildMain = Callable[[bytes, Connection], None]


async def prepare_in_child(data: bytes, target: ChildMain | None = None) -> Prepared:
    """`snapshot.prepare(data)` in a spawned child process (`target`: the child's code, for tests)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=target or _child_main, args=(data, sender), name="mcpreg-api-catalogue-build", daemon=True
    )
    process.start()
    sender.close()  # only the child writes: its exit then ends our read with EOF
    try:
        outcome = await asyncio.to_thread(_receive, receiver)
    except BaseException:
        if process.is_alive():
            process.terminate()
        raise
    finally:
        await asyncio.to_thread(process.join, 30)
        receiver.close()
    kind, payload = outcome
    if kind == "ok":
        assert isinstance(payload, Prepared)
        return payload
    if kind == "invalid":
        raise InvalidCatalog(tuple(payload))
    if kind == "died":
        raise BuildFailed(f"the catalogue build process died (exit code {process.exitcode})")
    raise BuildFailed(str(payload))


def _receive(receiver: Connection) -> tuple[str, Any]:
    try:
        outcome: tuple[str, Any] = receiver.recv()
    except EOFError:
        return ("died", None)
    return outcome


def _child_main(data: bytes, sender: Connection) -> None:
    outcome: tuple[str, Any]
    try:
        outcome = ("ok", prepare(data))
    except InvalidCatalog as exc:
        outcome = ("invalid", exc.problems)
    except BaseException as exc:  # reported to the parent, which logs it and keeps serving
        outcome = ("error", f"{type(exc).__name__}: {exc}")
    sender.send(outcome)
    sender.close()
