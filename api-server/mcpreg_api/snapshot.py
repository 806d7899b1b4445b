"""One catalogue generation, precomputed for serving: built once per reload, then only read.

Everything a hot path returns is ready here: entries sorted by (name, version) with each entry's JSON
already serialised, the four list views (latest or all versions, with or without deleted ones) with
their sort keys for bisecting, an index by name with each name's versions newest first, and the
ToolHive document as bytes (and gzip) with its ETag. A handler takes the current snapshot once and uses
only it, so a reload (which swaps in a new snapshot) can never mix two generations in one response.

A build has two halves: `prepare` (parse with the shared catalogue library, validate, render - seconds
for a large catalogue, so `builder` runs it in a thread or a child process) and `assemble` (views and
indexes over what `prepare` produced - milliseconds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mcpreg.catalog import OFFICIAL_META_KEY, Catalog, CatalogEntry, CatalogError, parse_catalog
from mcpreg.storage.model import StoredCatalog
from mcpreg_api import __version__
from mcpreg_api.pagination import SortKey
from mcpreg_api.rendering import Rendered, ResponseCache, dump_json, make_etag

_SEARCH_SEPARATOR = "\x1f"  # never in a search term (queries refuse control characters)


@dataclass(frozen=True, slots=True)
class EntryView:
    """One server version as served."""

    key: SortKey  # (name, version)
    status: str
    is_latest: bool
    updated_at: datetime | None  # UTC
    published_at: datetime | None  # UTC
    haystack: str  # case-folded name, title and description, for search
    body: bytes  # {"server": ..., "_meta": ...}

    @property
    def name(self) -> str:
        return self.key[0]

    @property
    def version(self) -> str:
        return self.key[1]

    @property
    def deleted(self) -> bool:
        return self.status == "deleted"


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
    ) -> None:
        self.content_hash = content_hash
        self.revision = revision
        self.stored_at = stored_at
        self.loaded_at = datetime.now(UTC)
        self.server_count = server_count
        self.entry_count = len(entries)
        self.build_seconds = build_seconds
        self.toolhive = toolhive
        # Seeds every ETag: same data served by the same server version gives the same tags.
        self.tag = f"{__version__}:{content_hash}"
        self._views: dict[tuple[bool, bool], ListView] = {
            (False, True): ListView.of(entries),
            (False, False): ListView.of(tuple(e for e in entries if not e.deleted)),
            (True, True): ListView.of(tuple(e for e in entries if e.is_latest)),
            (True, False): ListView.of(tuple(e for e in entries if e.is_latest and not e.deleted)),
        }
        self.names: dict[str, NameIndex] = _index_names(entries)
        self.cache = ResponseCache()

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
            "loadedAt": _format_time(self.loaded_at),
            "storedAt": _format_time(self.stored_at.astimezone(UTC)),
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


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything derived from a catalogue's bytes: plain data, so it can cross a process boundary."""

    entries: tuple[EntryView, ...]
    toolhive_body: bytes
    toolhive_gzip: bytes | None
    server_count: int


def prepare(data: bytes) -> Prepared:
    """Parse and validate catalogue bytes, and render what is served. The expensive half of a build."""
    try:
        catalog = parse_catalog(data, format="auto")
    except CatalogError as exc:
        raise InvalidCatalog(tuple(issue.render() for issue in exc.issues[:50])) from None
    toolhive = Rendered(dump_json(catalog.toolhive_view()), etag="")
    return Prepared(
        entries=_entry_views(catalog),
        toolhive_body=toolhive.body,
        toolhive_gzip=toolhive.gzipped() if toolhive.compressible else None,
        server_count=catalog.server_count,
    )


def assemble(prepared: Prepared, stored: StoredCatalog, build_seconds: float) -> Snapshot:
    """The snapshot of `prepared` (indexes and views: the cheap half of a build)."""
    toolhive_etag = make_etag(f"{__version__}:{stored.content_hash}", "toolhive")
    return Snapshot(
        entries=prepared.entries,
        toolhive=Rendered(prepared.toolhive_body, toolhive_etag, prepared.toolhive_gzip),
        content_hash=stored.content_hash,
        revision=stored.revision,
        stored_at=stored.stored_at,
        server_count=prepared.server_count,
        build_seconds=build_seconds,
    )


def build_snapshot(stored: StoredCatalog) -> Snapshot:
    """Parse `stored` and precompute everything served from it, here. Raises InvalidCatalog on bad data."""
    started = time.perf_counter()
    prepared = prepare(stored.data)
    return assemble(prepared, stored, time.perf_counter() - started)


def _entry_views(catalog: Catalog) -> tuple[EntryView, ...]:
    views: dict[SortKey, EntryView] = {}
    for entry in catalog.entries:
        key = (entry.name, entry.version)
        if key not in views:  # the catalogue refuses duplicates; never serve one twice regardless
            views[key] = _entry_view(entry)
    return tuple(views[key] for key in sorted(views))


def _entry_view(entry: CatalogEntry) -> EntryView:
    published = parse_time(entry.published_at)
    updated = parse_time(entry.updated_at)
    official: dict[str, Any] = {"status": entry.status}
    if published is not None:
        official["publishedAt"] = _format_time(published)
    if updated is not None:
        official["updatedAt"] = _format_time(updated)
    official["isLatest"] = entry.is_latest
    meta: dict[str, Any] = dict(entry.response_meta) if entry.response_meta else {}
    meta[OFFICIAL_META_KEY] = official
    server = entry.server
    haystack = _SEARCH_SEPARATOR.join(
        _text(value) for value in (entry.name, server.get("title"), server.get("description"))
    ).casefold()
    return EntryView(
        key=(entry.name, entry.version),
        status=entry.status,
        is_latest=entry.is_latest,
        updated_at=updated,
        published_at=published,
        haystack=haystack,
        body=dump_json({"server": server, "_meta": meta}),
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def parse_time(text: str | None) -> datetime | None:
    """A catalogue timestamp as an aware UTC datetime; None when absent or unreadable.

    The catalogue accepts any RFC 3339 spelling (space separator, lower-case `t`/`z`, offsets); the
    API always answers in one: UTC with a `Z`, which every RFC 3339 parser (Go's too) reads.
    """
    if not text:
        return None
    normal = text.strip().replace(" ", "T").replace("t", "T").replace("z", "Z")
    try:
        moment = datetime.fromisoformat(normal)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def _format_time(moment: datetime) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


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
