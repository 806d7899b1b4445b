"""Running a function of catalogue bytes in a short-lived child process, off the event loop.

Parsing a large catalogue is pure-Python (and long single C calls such as decoding a whole document)
that holds the GIL for hundreds of milliseconds, so a worker thread still stalls the event loop. A
child process (`python -m <module>`) does not, and when it exits its parsing memory goes with it.
Both the registry API server (`mcpreg_api.builder`) and the operator (`mcpreg_operator.parsing`) use
this module for that:

    # the parent, on its event loop
    result = await run_in_child(child_command("mcpreg_operator.parsing"), data, options, what="…")

    # the child module's `if __name__ == "__main__": child_main(work)`, with work(data, options)

The protocol, over pipes only the parent holds: on the child's stdin an 8-byte big-endian length, that
many bytes of pickled `options`, then the data until EOF; on its stdout one pickled `("ok", result)`
or `("error", "TypeError: …")` (an exception `work` did not handle). Expected failures (invalid data)
are the caller's to encode in its result, so they come back as values, not tracebacks.

The parent raises `ChildProcessFailed` when the child dies (a signal, say the kernel's OOM killer's
SIGKILL, or a non-zero exit), returns no result, or reports an unhandled exception. Cancelling the
awaiting task kills the child and reaps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, BinaryIO, NoReturn

_LENGTH = struct.Struct(">Q")
# Writes to the child's stdin go in slices, so the pipe transport never copies a whole catalogue.
_WRITE_SLICE = 1024 * 1024


class ChildProcessFailed(RuntimeError):
    """The child process died or was killed, returned nothing readable, or failed unexpectedly.

    `returncode` is the child's exit status (negative: the signal that killed it), or None when it
    exited cleanly but reported an error.
    """

    def __init__(self, message: str, *, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


def child_command(module: str) -> tuple[str, ...]:
    """`python -m module` with this interpreter."""
    return (sys.executable, "-m", module)


def describe_exit(returncode: int) -> str:
    """`exit code 3`, or `exit code -9: killed by SIGKILL` for a signal."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (the memory limit, usually)" if -returncode == signal.SIGKILL else ""
        return f"exit code {returncode}: killed by {name}{hint}"
    return f"exit code {returncode}"


async def run_in_child(
    command: Sequence[str], data: bytes, options: object = None, *, what: str = "the child process"
) -> Any:
    """Run `command` (a `child_main` child) on `data` and `options`; return what its work returned.

    `what` names the child in error messages ("the catalogue build process died (exit code 3)").
    """
    header = pickle.dumps(options, protocol=pickle.HIGHEST_PROTOCOL)
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        _, output = await asyncio.gather(
            _feed(process.stdin, (_LENGTH.pack(len(header)), header, data)), process.stdout.read()
        )
        returncode = await process.wait()
    except BaseException:  # cancelled (shutdown, a deleted registry) or failed: the child goes too
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(Exception):
            await process.wait()
        raise
    if returncode != 0:
        raise ChildProcessFailed(f"{what} died ({describe_exit(returncode)})", returncode=returncode)
    if not output:
        raise ChildProcessFailed(f"{what} exited without a result", returncode=returncode)
    try:
        kind, payload = await asyncio.to_thread(_unpickle, output)
    except Exception as exc:
        raise ChildProcessFailed(f"{what} returned an unreadable result ({exc})") from None
    if kind == "ok":
        return payload
    raise ChildProcessFailed(f"{what} failed: {payload}")


async def _feed(stdin: asyncio.StreamWriter, chunks: Iterable[bytes]) -> None:
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), _WRITE_SLICE):
                stdin.write(view[start : start + _WRITE_SLICE])
                await stdin.drain()
        stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the child stopped reading (it died): its exit status says why


def _unpickle(output: bytes) -> tuple[str, Any]:
    # Our own child's output, over a pipe only we hold: trusted.
    outcome: tuple[str, Any] = pickle.loads(output)  # noqa: S301
    return outcome


# --- the child's side -----------------------------------------------------------------------------


def serve_child(work: Callable[[bytes, Any], object], stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Read options and data from `stdin`, run `work(data, options)`, write the outcome to `stdout`."""
    (length,) = _LENGTH.unpack(stdin.read(_LENGTH.size))
    # Options from our own parent, over a pipe only it holds: trusted.
    options = pickle.loads(stdin.read(length))  # noqa: S301
    data = stdin.read()
    outcome: tuple[str, object]
    try:
        outcome = ("ok", work(data, options))
    except Exception as exc:  # reported to the parent, which raises ChildProcessFailed with it
        outcome = ("error", f"{type(exc).__name__}: {exc}")
    stdout.write(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    stdout.flush()
    return 0


def child_main(work: Callable[[bytes, Any], object]) -> NoReturn:
    """The body of a child module's `__main__`: serve one request on stdin/stdout, then exit.

    Anything the work prints goes to stderr, so it cannot corrupt the result on stdout. The process
    ends with `os._exit`: freeing a parsed catalogue object by object would only delay the parent.
    """
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr
    code = serve_child(work, sys.stdin.buffer, stdout)
    sys.stderr.flush()
    os._exit(code)
