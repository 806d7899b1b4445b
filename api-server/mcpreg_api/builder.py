"""Building snapshots off the event loop, so that a reload does not stall the requests being served.

Parsing a catalogue is CPU work that holds the GIL for long stretches (decoding an 18 MB document,
validating 10,000 entries), so a worker thread still starves the event loop: requests answered during
such a reload wait for hundreds of milliseconds. Catalogues larger than `PROCESS_ABOVE` bytes are
therefore prepared in a short-lived child process (`python -m mcpreg_api.builder`: catalogue bytes on
its stdin, the pickled `snapshot.Prepared` - serialised entries and the ToolHive document - on its
stdout), which exits afterwards and takes its parsing memory with it; only the cheap `assemble` step
runs here. Smaller catalogues are prepared in a thread: for them, starting an interpreter costs more
than it saves.

A child that is cancelled (shutdown) is killed; one that dies (killed for memory, say) fails that build,
and the loader keeps serving the previous snapshot. The process handling is shared with the operator's
parsing: `mcpreg.catalog.childproc`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from mcpreg.catalog.childproc import ChildProcessFailed, child_command, child_main, run_in_child
from mcpreg.storage.model import StoredCatalog
from mcpreg_api.snapshot import InvalidCatalog, Prepared, Snapshot, assemble, prepare

PROCESS_ABOVE = 1024 * 1024
CHILD_COMMAND = child_command("mcpreg_api.builder")

SnapshotBuilder = Callable[[StoredCatalog], Awaitable[Snapshot]]


class BuildFailed(ChildProcessFailed):
    """The build process died or failed for a reason other than invalid data."""


async def build_off_loop(stored: StoredCatalog, *, process_above: int = PROCESS_ABOVE) -> Snapshot:
    """The snapshot of `stored`, prepared in a child process when large, else in a thread."""
    started = time.perf_counter()
    if len(stored.data) > process_above:
        prepared = await prepare_in_child(stored.data)
    else:
        prepared = await asyncio.to_thread(prepare, stored.data)
    return await asyncio.to_thread(assemble, prepared, stored, time.perf_counter() - started)


async def prepare_in_child(data: bytes, command: Sequence[str] = CHILD_COMMAND) -> Prepared:
    """`snapshot.prepare(data)` in a child process (see `mcpreg.catalog.childproc`)."""
    try:
        result = await run_in_child(command, data, what="the catalogue build process")
    except ChildProcessFailed as exc:
        raise BuildFailed(str(exc), returncode=exc.returncode) from None
    if isinstance(result, Prepared):
        return result
    if isinstance(result, InvalidCatalog):  # invalid data comes back as a value, not a traceback
        raise InvalidCatalog(result.problems)
    raise BuildFailed(f"the catalogue build process returned {type(result).__name__}")


def _prepare_in_child(data: bytes, _options: object) -> Prepared | InvalidCatalog:
    try:
        return prepare(data)
    except InvalidCatalog as exc:
        return exc


if __name__ == "__main__":
    child_main(_prepare_in_child)
