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
and the loader keeps serving the previous snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mcpreg.storage.model import StoredCatalog
from mcpreg_api.snapshot import InvalidCatalog, Prepared, Snapshot, assemble, prepare

PROCESS_ABOVE = 1024 * 1024
CHILD_COMMAND = (sys.executable, "-m", "mcpreg_api.builder")

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


async def prepare_in_child(data: bytes, command: Sequence[str] = CHILD_COMMAND) -> Prepared:
    """`snapshot.prepare(data)` in a child process."""
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    try:
        output, _ = await process.communicate(data)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(Exception):
            await process.wait()
        raise
    if process.returncode != 0 or not output:
        raise BuildFailed(f"the catalogue build process died (exit code {process.returncode})")
    kind, payload = await asyncio.to_thread(_unpickle, output)
    if kind == "ok" and isinstance(payload, Prepared):
        return payload
    if kind == "invalid":
        raise InvalidCatalog(tuple(payload))
    raise BuildFailed(str(payload))


def _unpickle(output: bytes) -> tuple[str, Any]:
    # Our own child's output, over a pipe only we hold: trusted.
    outcome: tuple[str, Any] = pickle.loads(output)  # noqa: S301
    return outcome


def child_main() -> int:
    """`python -m mcpreg_api.builder`: catalogue bytes in, `(kind, payload)` pickled out."""
    data = sys.stdin.buffer.read()
    outcome: tuple[str, Any]
    try:
        outcome = ("ok", prepare(data))
    except InvalidCatalog as exc:
        outcome = ("invalid", exc.problems)
    except Exception as exc:  # reported to the parent, which logs it and keeps serving
        outcome = ("error", f"{type(exc).__name__}: {exc}")
    sys.stdout.buffer.write(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
