"""Building snapshots off the event loop, so that a reload does not stall the requests being served.

A served document (what the operator stores) is read and indexed in a worker thread: a tenth of a
second for 10,000 servers, in Python steps short enough to let the event loop in between (the longest
single C call, splitting the document into lines, takes milliseconds; gzipping the ToolHive document
lets go of the GIL). A child process would cost more (starting an interpreter, pickling the entries
back) than it would spare.

Anything else is a catalogue to parse and validate first: a catalogue file (`mcpreg serve --file`) or a
generation stored by an operator older than the served format, which is served so (with a warning)
until the operator rewrites it. Parsing is CPU work that holds the GIL for long stretches (decoding an
18 MB document, validating 10,000 entries), so a worker thread would starve the event loop: catalogues
larger than `PROCESS_ABOVE` bytes are rendered in a short-lived child process (`python -m
mcpreg_api.builder`: catalogue bytes on its stdin, the served document on its stdout), which exits
afterwards and takes its parsing memory with it. Smaller catalogues are rendered in a thread: for them,
starting an interpreter costs more than it saves.

A child that is cancelled (shutdown) is killed; one that dies (killed for memory, say) fails that build,
and the loader keeps serving the previous snapshot. The process handling is shared with the operator's
parsing: `mcpreg.catalog.childproc`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from mcpreg.catalog.childproc import ChildProcessFailed, child_command, child_main, run_in_child
from mcpreg.catalog.parse import CANONICAL_PREFIX
from mcpreg.catalog.served import is_served
from mcpreg.storage.model import StoredCatalog
from mcpreg_api.snapshot import FORMAT_PARSED, FORMAT_SERVED, InvalidCatalog, Snapshot, assemble, served_form

PROCESS_ABOVE = 1024 * 1024
CHILD_COMMAND = child_command("mcpreg_api.builder")

SnapshotBuilder = Callable[[StoredCatalog], Awaitable[Snapshot]]

log = logging.getLogger("mcpreg_api.builder")


class BuildFailed(ChildProcessFailed):
    """The build process died or failed for a reason other than invalid data."""


async def build_off_loop(stored: StoredCatalog, *, process_above: int = PROCESS_ABOVE) -> Snapshot:
    """The snapshot of `stored`, read in a thread; a catalogue is first rendered, in a child process
    when large."""
    started = time.perf_counter()
    served = stored.data
    stored_format = FORMAT_SERVED
    if not is_served(served):
        stored_format = FORMAT_PARSED
        if served.startswith(CANONICAL_PREFIX):
            log.warning(
                "catalogue %s is canonical catalogue JSON (what operators stored before the served format): "
                "parsing and validating it here, until the operator rewrites it as a served document",
                stored.content_hash,
            )
        if len(served) > process_above:
            served = await render_in_child(served)
        else:
            served = await asyncio.to_thread(served_form, served)
    return await asyncio.to_thread(assemble, served, stored, started, stored_format)


async def render_in_child(data: bytes, command: Sequence[str] = CHILD_COMMAND) -> bytes:
    """`snapshot.served_form(data)` in a child process (see `mcpreg.catalog.childproc`)."""
    try:
        result = await run_in_child(command, data, what="the catalogue build process")
    except ChildProcessFailed as exc:
        raise BuildFailed(str(exc), returncode=exc.returncode) from None
    if isinstance(result, bytes):
        return result
    if isinstance(result, InvalidCatalog):  # invalid data comes back as a value, not a traceback
        raise InvalidCatalog(result.problems)
    raise BuildFailed(f"the catalogue build process returned {type(result).__name__}")


def _render_in_child(data: bytes, _options: object) -> bytes | InvalidCatalog:
    try:
        return served_form(data)
    except InvalidCatalog as exc:
        return exc


if __name__ == "__main__":
    child_main(_render_in_child)
