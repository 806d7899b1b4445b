"""Parse, filter and prepare a catalogue for storage without starving the operator's event loop.

Parsing is pure-Python work with long single steps that hold the GIL (decoding a whole document,
rendering the served one): in a worker thread a 10,000-server catalogue (19.5 MB) still stalls the
event loop - every watch stream, every other registry's sync, Kopf's daemons - for 170-250 ms at a
time (issue 12). Catalogues larger than `PROCESS_ABOVE` bytes are therefore prepared in a short-lived
child process, `python -m mcpreg_operator.parsing` (see `mcpreg.catalog.childproc`): the raw bytes,
format, filter and limits go in, the served document (`mcpreg.catalog.served`: what the registry API
serves, rendered once here so that no API replica validates it again) with its hash, server count and
the report of entries skipped as invalid and of warnings (`quarantine.EntryReport`: counts and the
first few, so the result stays small) comes out, and the parsed model and its memory stay in the
child, which then exits. Smaller catalogues are prepared in a thread: starting an interpreter (~0.5 s,
mostly importing the catalogue models) costs more than their parse stalls.

Invalid entries do not raise: they are left out of the served document and reported
(`quarantine`); whether the rest may be stored is the sync's decision. A document that cannot be
read at all (not UTF-8, not JSON, an unknown shape, over the limits) and an invalid filter raise the
same `CatalogError`, with the same issues, on either path, so status messages do not depend on where
the parse ran. A child that dies (the memory limit's SIGKILL, say) or fails
unexpectedly raises `ParsingFailed`; cancelling the caller kills the child.

At most `MCPREG_PARSE_PROCESSES` children (default: 2, or 1 on a single CPU) run at once: each holds
a whole parse (roughly ten times the catalogue's size), and more of them than cores only adds memory.
`MCPREG_PARSE_PROCESS_ABOVE` (bytes) overrides the size threshold: 0 sends every catalogue to a child,
a huge value keeps them all in threads.

This module is also the child's entry point, so it imports only the catalogue library and the small
`quarantine` module at top level (not the storage backends, whose Kubernetes client would double the
child's start-up time).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mcpreg.catalog import CatalogError, CatalogIssue, CatalogLimits, compile_filter
from mcpreg.catalog.childproc import ChildProcessFailed, child_command, child_main, run_in_child
from mcpreg.catalog.detect import FormatChoice
from mcpreg.catalog.hashing import content_hash
from mcpreg.catalog.quarantine import read_catalog
from mcpreg.catalog.served import render_served
from mcpreg_operator.merge_job import MergeOptions, PreparedMerge, prepare_merged
from mcpreg_operator.quarantine import EntryReport, summarise

if TYPE_CHECKING:
    from mcpreg.storage.model import StoredCatalog

PROCESS_ABOVE = 1024 * 1024
PROCESS_ABOVE_ENV = "MCPREG_PARSE_PROCESS_ABOVE"
MAX_PROCESSES_ENV = "MCPREG_PARSE_PROCESSES"
CHILD_COMMAND = child_command("mcpreg_operator.parsing")
# Issue paths of filter problems name the spec field (`spec.filter.names.include[0]: …`).
FILTER_PATH = "spec.filter"


class ParsingFailed(ChildProcessFailed):
    """The parsing process died, was killed, or failed for a reason other than invalid data."""


@dataclass(frozen=True, slots=True)
class PreparedCatalog:
    """What storage needs of a parsed, filtered catalogue: plain data, so it crosses a process boundary."""

    data: bytes  # the served document
    content_hash: str  # sha256 of `data`
    server_count: int
    entries: EntryReport  # what was skipped as invalid, and the warnings


@dataclass(frozen=True, slots=True)
class ParseOptions:
    format: FormatChoice
    filter_spec: Mapping[str, Any] | None
    limits: CatalogLimits


@dataclass(frozen=True, slots=True)
class _Refused:
    """A CatalogError, as a value (CatalogError itself does not pickle)."""

    issues: tuple[CatalogIssue, ...]


def prepare(data: bytes, options: ParseOptions) -> PreparedCatalog:
    """Read within the limits, leave out invalid entries, filter, and render the served document, here.
    Raises CatalogError for a document that cannot be read at all, or an invalid filter."""
    reading = read_catalog(data, format=options.format, limits=options.limits)
    catalog = reading.catalog.filtered(compile_filter(options.filter_spec, path=FILTER_PATH))
    served = render_served(catalog)
    return PreparedCatalog(served, content_hash(served), catalog.server_count, summarise(reading))


def process_threshold() -> int:
    """Catalogues larger than this many bytes are parsed in a child process."""
    return int(os.environ.get(PROCESS_ABOVE_ENV, PROCESS_ABOVE))


def max_processes() -> int:
    """How many parsing processes may run at once."""
    configured = os.environ.get(MAX_PROCESSES_ENV)
    if configured:
        return max(1, int(configured))
    return min(2, os.cpu_count() or 1)


async def prepare_stored(
    data: bytes,
    *,
    format: FormatChoice,
    filter_spec: Mapping[str, Any] | None,
    limits: CatalogLimits,
    revision: str,
    process_above: int | None = None,
    executor: Executor | None = None,
) -> tuple[StoredCatalog, EntryReport]:
    """The generation to store for catalogue `data` (parsed, validated, invalid entries left out,
    filtered, rendered, hashed), and the report of what was left out.

    In a child process when `data` is larger than `process_above` bytes (default: `process_threshold()`),
    else in a thread of `executor` (None: the loop's default executor). Raises CatalogError for a
    document that cannot be read or an invalid filter, ParsingFailed when the child dies or fails
    otherwise.
    """
    options = ParseOptions(format=format, filter_spec=filter_spec, limits=limits)
    threshold = process_threshold() if process_above is None else process_above
    if len(data) > threshold:
        prepared = await prepare_in_child(data, options)
    else:
        prepared = await asyncio.get_running_loop().run_in_executor(executor, prepare, data, options)
    return _generation(prepared, revision), prepared.entries


async def prepare_merged_stored(
    data: bytes,
    options: MergeOptions,
    *,
    process_above: int | None = None,
    executor: Executor | None = None,
) -> tuple[StoredCatalog, PreparedMerge]:
    """`prepare_stored` for several sources (`merge_job`): `data` holds their documents back to back.
    The same rule picks the child process or a thread, by the total size. The generation's revision
    is left empty: the caller composes it once the merge says which document of each source it used."""
    threshold = process_threshold() if process_above is None else process_above
    if len(data) > threshold:
        result = await _run_child(data, options)
        if not isinstance(result, PreparedMerge):
            raise ParsingFailed(f"the catalogue parsing process returned {type(result).__name__}")
        merged = result
    else:
        merged = await asyncio.get_running_loop().run_in_executor(executor, prepare_merged, data, options)
    return _generation(merged, revision=""), merged


def _generation(prepared: PreparedCatalog | PreparedMerge, revision: str) -> StoredCatalog:
    from mcpreg.storage.model import StoredCatalog  # not at top level: the child does not need it

    return StoredCatalog(
        data=prepared.data,
        content_hash=prepared.content_hash,
        revision=revision,
        stored_at=datetime.now(UTC),
        server_count=prepared.server_count,
    )


async def prepare_in_child(
    data: bytes, options: ParseOptions, command: Sequence[str] | None = None
) -> PreparedCatalog:
    """`prepare(data, options)` in a child process (`command`, default `CHILD_COMMAND`)."""
    result = await _run_child(data, options, command)
    if isinstance(result, PreparedCatalog):
        return result
    raise ParsingFailed(f"the catalogue parsing process returned {type(result).__name__}")


async def _run_child(data: bytes, options: object, command: Sequence[str] | None = None) -> object:
    """The child's result for `data` and `options`; CatalogError when it refused the data."""
    async with _process_slots():
        try:
            result = await run_in_child(
                command or CHILD_COMMAND, data, options, what="the catalogue parsing process"
            )
        except ChildProcessFailed as exc:
            raise ParsingFailed(str(exc), returncode=exc.returncode) from None
    if isinstance(result, _Refused):
        raise CatalogError(result.issues)
    return result


_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _process_slots() -> asyncio.Semaphore:
    # One per event loop: a semaphore belongs to the loop it first waited on.
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(max_processes())
    return slots


def _prepare_in_child(
    data: bytes, options: ParseOptions | MergeOptions
) -> PreparedCatalog | PreparedMerge | _Refused:
    try:
        if isinstance(options, MergeOptions):
            return prepare_merged(data, options)
        return prepare(data, options)
    except CatalogError as exc:
        return _Refused(exc.issues)


if __name__ == "__main__":
    # Run as `-m`, this file is `__main__`: results must be built by the module under its real name,
    # or their classes would pickle as `__main__.PreparedCatalog`, which the parent cannot load.
    from mcpreg_operator import parsing

    child_main(parsing._prepare_in_child)
