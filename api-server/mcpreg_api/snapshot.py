"""One catalogue generation, precomputed for serving: built once per reload, then only read.

Everything a hot path returns is ready here: entries sorted by (name, version) with each entry's JSON
already serialised, the four list views (latest or all versions, with or without deleted ones) with
their sort keys for bisecting, an index by name with each name's versions newest first, and the
ToolHive document as bytes (and gzip) with its ETag. A handler takes the current snapshot once and uses
only it, so a reload (which swaps in a new snapshot) can never mix two generations in one response.

Storage holds the served document the operator rendered (`mcpreg.catalog.served`): the bodies, the
facts the API indexes and the ToolHive document, already validated. A build reads it (`assemble`:
decode small lines, check the shape, build the views and indexes - a tenth of a second for 10,000
servers) without validating anything again. Anything else - a catalogue file in `mcpreg serve --file`,
or a generation stored by an operator older than the served format - is a catalogue to parse, validate
and render first (`served_form`: seconds for a large catalogue, so `builder` runs it in a thread or a
child process).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mcpreg.catalog import CatalogError, parse_catalog
from mcpreg.catalog.provenance import entries_manifest, entry_digest, manifest_row
from mcpreg.catalog.served import (
    ServedEntry,
    ServedFormatError,
    format_time,
    is_served,
    read_served,
    render_served,
    upstream_list,
)
from mcpreg.signing import ENTRIES_DOCUMENT, GenerationSignatures
from mcpreg.storage.model import StoredCatalog, generation_id
from mcpreg_api import __version__
from mcpreg_api.pagination import SortKey
from mcpreg_api.rendering import Rendered, ResponseCache, dump_json, make_etag

EntryView = ServedEntry  # one server version as served
FORMAT_SERVED = "served"  # what /readiness says of a generation read as stored
FORMAT_PARSED = "catalogue"  # …and of one this server parsed and validated itself


@dataclass(frozen=True, slots=True)
class ListView:
    entries: tuple[EntryView, ...]
    keys: tuple[SortKey, ...]

    @classmethod
    def of(cls, entries: tuple[EntryView, ...]) -> ListView:
        return cls(entries, tuple(entry.key for entry in entries))


@dataclass(frozen=True, slots=True)
class NameIndex:
    """Every version of one server name."""

    versions: tuple[EntryView, ...]  # newest first; the latest version leads
    by_version: dict[str, EntryView]
    latest: EntryView | None


class Snapshot:
    """A catalogue generation ready to serve. Treat as immutable (its response cache aside)."""

    def __init__(
        self,
        *,
        entries: tuple[EntryView, ...],
        toolhive: Rendered,
        content_hash: str,
        revision: str,
        stored_at: datetime,
        server_count: int,
        build_seconds: float,
        stored_format: str = FORMAT_SERVED,
        signatures: GenerationSignatures | None = None,
    ) -> None:
        self.content_hash = content_hash
        self.signatures = signatures  # the operator's, over `toolhive.body`, `upstream.body`, `entries`
        self.generation_id = generation_id(content_hash, signatures.key_id if signatures else None)
        self.revision = revision
        self.stored_at = stored_at
        self.loaded_at = datetime.now(UTC)
        self.server_count = server_count
        self.entry_count = len(entries)
        self.build_seconds = build_seconds
        self.stored_format = stored_format
        self.toolhive = toolhive
        # Seeds every ETag: same data served by the same server version gives the same tags (and a new
        # key, which every entry's provenance block names, new tags).
        self.tag = f"{__version__}:{self.generation_id}"
        self._views: dict[tuple[bool, bool], ListView] = {
            (False, True): ListView.of(entries),
            (False, False): ListView.of(tuple(e for e in entries if not e.deleted)),
            (True, True): ListView.of(tuple(e for e in entries if e.is_latest)),
            (True, False): ListView.of(tuple(e for e in entries if e.is_latest and not e.deleted)),
        }
        self.names: dict[str, NameIndex] = _index_names(entries)
        self.cache = ResponseCache()
        self._upstream: Rendered | None = None
        # Per-entry provenance, when the operator signed the entries manifest: each entry's digest and
        # the manifest, made here, in the build's worker thread, not on the event loop (70-230 ms for
        # 10,000 entries, bench/signing_bench.py). A generation signed before entries were is served
        # without provenance blocks.
        self.entry_digests: dict[SortKey, str] | None = None
        self.entries_manifest: Rendered | None = None
        if signatures is not None and ENTRIES_DOCUMENT in signatures.documents:
            self.entry_digests, manifest = entry_provenance(entries, content_hash)
            self.entries_manifest = Rendered(manifest, self.etag("entries"))

    @property
    def upstream(self) -> Rendered:
        """The upstream server list served whole (every version, deleted ones too): the bytes the
        operator signed, made on first use and kept (too large for the response cache)."""
        if self._upstream is None:
            bodies = [entry.body for entry in self._views[(False, True)].entries]
            self._upstream = Rendered(upstream_list(bodies), self.etag("upstream"))
        return self._upstream

    def view(self, *, latest_only: bool, with_deleted: bool) -> ListView:
        return self._views[(latest_only, with_deleted)]

    def etag(self, *parts: str) -> str:
        return make_etag(self.tag, *parts)

    def info(self) -> dict[str, Any]:
        """What /readiness and /version say about the loaded data."""
        return {
            "contentHash": self.content_hash,
            "revision": self.revision,
            "servers": self.server_count,
            "entries": self.entry_count,
            "loadedAt": format_time(self.loaded_at),
            "storedAt": format_time(self.stored_at),
            "storedFormat": self.stored_format,
        }


class InvalidCatalog(Exception):
    """The stored bytes are not a valid catalogue; `problems` says why (entry, path, message)."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__(problems)  # args stay (problems,), so it pickles back intact
        self.problems = problems

    def __str__(self) -> str:
        shown = "; ".join(self.problems[:5])
        more = len(self.problems) - 5
        return shown + (f" (and {more} more)" if more > 0 else "")


def served_form(data: bytes) -> bytes:
    """`data` as a served document: itself when it is one, else a catalogue parsed, validated and
    rendered here (the expensive half of a build, for catalogue files and older generations only).
    Raises InvalidCatalog."""
    if is_served(data):
        return data
    try:
        return render_served(parse_catalog(data, format="auto"))
    except CatalogError as exc:
        raise InvalidCatalog(tuple(issue.render() for issue in exc.issues[:50])) from None


def assemble(
    served: bytes, stored: StoredCatalog, started: float, stored_format: str = FORMAT_SERVED
) -> Snapshot:
    """The snapshot of a served document: read it, index it.

    `started` is the `time.perf_counter()` at which the build began. Raises InvalidCatalog when the
    document is in an unknown format or malformed.
    """
    try:
        document = read_served(served)
    except ServedFormatError as exc:
        raise InvalidCatalog((str(exc),)) from None
    etag = make_etag(f"{__version__}:{stored.content_hash}", "toolhive")
    # Compressed by the operator: no replica spends a second of CPU compressing 13 MB again.
    toolhive = Rendered(document.toolhive, etag, document.toolhive_gzip)
    return Snapshot(
        entries=document.entries,
        toolhive=toolhive,
        content_hash=stored.content_hash,
        revision=stored.revision,
        stored_at=stored.stored_at,
        server_count=document.server_count,
        build_seconds=time.perf_counter() - started,
        stored_format=stored_format,
        signatures=stored.signatures,
    )


def build_snapshot(stored: StoredCatalog) -> Snapshot:
    """Everything served from `stored`, built here. Raises InvalidCatalog on bad data."""
    started = time.perf_counter()
    stored_format = FORMAT_SERVED if is_served(stored.data) else FORMAT_PARSED
    return assemble(served_form(stored.data), stored, started, stored_format)


def _index_names(entries: tuple[EntryView, ...]) -> dict[str, NameIndex]:
    grouped: dict[str, list[EntryView]] = {}
    for entry in entries:
        grouped.setdefault(entry.name, []).append(entry)
    return {name: _name_index(versions) for name, versions in grouped.items()}


def _name_index(versions: list[EntryView]) -> NameIndex:
    latest = next((v for v in versions if v.is_latest), None)
    newest_first = sorted(versions, key=_newest_first_key, reverse=True)
    if latest is not None:
        newest_first.remove(latest)
        newest_first.insert(0, latest)
    return NameIndex(
        versions=tuple(newest_first),
        by_version={v.version: v for v in versions},
        latest=latest,
    )


_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


def _newest_first_key(entry: EntryView) -> tuple[datetime, str]:
    return (entry.published_at or _EPOCH, entry.version)


def entry_provenance(entries: Sequence[EntryView], generation: str) -> tuple[dict[SortKey, str], bytes]:
    """Each entry's digest, and the entries manifest of `generation`: the bytes the operator signed
    (`served_documents`), made from the entries as read."""
    digests = {entry.key: entry_digest(entry.body) for entry in entries}
    rows = (manifest_row(dump_json(e.name), dump_json(e.version), digests[e.key]) for e in entries)
    return digests, entries_manifest(generation, rows)
