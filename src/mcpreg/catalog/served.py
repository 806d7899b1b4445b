"""The served document: a validated catalogue as the registry API serves it, rendered once.

The operator validates a catalogue and renders this document from it (in its parsing step, in a child
process for large catalogues); storage holds it and hashes it; every API replica reads it back without
validating anything: a JSON decode of small lines, cheap shape checks, and the bytes it sends. So a
catalogue is parsed and validated once, not once more per replica and once more for the S3 writer.

JSON Lines, ASCII (every value is ASCII-escaped JSON), one `\\n` after each line::

    {"format":"mcpreg.served/v1","servers":N,"entries":E}     the header
    "H4sIAAAAAAAC/+y9…"                                        the ToolHive document, gzipped, base64
    ["name","version","status",isLatest,"publishedAt","updatedAt","haystack"]
                                                              entry 1: what the API indexes
    {"server":{…},"_meta":{…}}                                entry 1: the body, as the v0.1 API sends it
                                                              (keys sorted: its canonical form, whose
                                                              hash is its digest, see provenance)
    …                                                         E entries in all, in (name, version) order

The header's `format` comes first, so a reader knows a served document by its first bytes
(`is_served`). Times are RFC 3339 in UTC with a `Z` (or null); the haystack is the case-folded name,
title and description joined by U+001F, what `search` looks in.

The ToolHive document is stored whole, already compressed as `GET /api/v1/registry` sends it to
clients that accept gzip (`GZIP_LEVEL`, no timestamp: the bytes the API used to compress itself); the
reader decompresses it for the others, which takes a fraction of the time compressing took (for
10,000 servers: 13 MB of JSON, 2.4 MB of gzip; 0.05 s to decompress, 0.25-0.9 s to compress). Leaving
it out would save that 2.4 MB of the 6 MB stored (storage compresses the whole document again) but
have every replica convert and validate each server again to rebuild it: the very work this document
exists to do once. Stored in full JSON it would add 13 MB to the 21 MB every reader hashes and splits.
The ConfigMap backend's limit (64 parts of 900 KiB) is ten times what is stored.

The document is rendered from the catalogue's canonical form (keys sorted, ToolHive forms derived from
server.json, as `parse_catalog(catalog.canonical_json())` would give it back), so the same content
gives the same bytes - and the same content hash - whatever the key order of the source, and the API
serves exactly what it served when it parsed canonical JSON itself.

    data = render_served(catalog)          # the operator
    document = read_served(data)           # the API server; ServedFormatError when unreadable
    toolhive_document(data)                # the S3 writer's extra object (any catalogue bytes)
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import gzip
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mcpreg.catalog.gcpause import collector_paused
from mcpreg.catalog.model import CATALOG_META_KEY, Catalog, CatalogEntry, CatalogGroup
from mcpreg.catalog.parse import parse_catalog
from mcpreg.catalog.provenance import (
    entries_manifest,
    entry_digest,
    keep_upstream_provenance,
    manifest_row,
    name_and_version_in,
    render_body,
)
from mcpreg.catalog.upstream_models import OFFICIAL_META_KEY
from mcpreg.signing import ENTRIES_DOCUMENT, TOOLHIVE_DOCUMENT, UPSTREAM_DOCUMENT

SERVED_FORMAT = "mcpreg.served/v1"
# Every version of the format begins so: how a reader tells a served document from a catalogue.
SERVED_PREFIX = b'{"format":"mcpreg.served/'
GZIP_LEVEL = 6  # what the API compresses responses with
MAX_TOOLHIVE_BYTES = 256 * 1024 * 1024  # decompressed; far beyond the catalogue library's input limit
SEARCH_SEPARATOR = "\x1f"  # never in a search term (the API refuses control characters in queries)
STATUSES = frozenset({"active", "deprecated", "deleted"})
_BODY_PREFIX = b'{"server":'

SortKey = tuple[str, str]


class ServedFormatError(ValueError):
    """The bytes are not a served document this code reads (unknown format version, or malformed)."""


def dump_json(value: Any) -> bytes:
    """Compact JSON bytes. ASCII-escaped, so any text the catalogue holds is always encodable."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def is_served(data: bytes) -> bool:
    """Whether `data` is a served document (of any format version), judged by its first bytes."""
    return data[: len(SERVED_PREFIX)] == SERVED_PREFIX


# --- times ---------------------------------------------------------------------------------------------


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


def format_time(moment: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with a `Z` (fraction only when there is one)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


# --- rendering (the operator) -------------------------------------------------------------------------


def render_served(catalog: Catalog) -> bytes:
    """The served document of a validated catalogue (seconds for 10,000 servers: run it off the loop)."""
    with collector_paused():
        canonical = _read_back(catalog)
        toolhive = gzip.compress(dump_json(canonical.toolhive_view()), compresslevel=GZIP_LEVEL, mtime=0)
        lines = [b"", b'"' + base64.b64encode(toolhive) + b'"']
        rendered: dict[SortKey, tuple[bytes, bytes]] = {}
        for entry in canonical.entries:
            key = (entry.name, entry.version)
            if key not in rendered:  # the catalogue refuses duplicates; never serve one twice regardless
                rendered[key] = _render_entry(entry)
        for key in sorted(rendered):
            lines.extend(rendered[key])
        header = {"format": SERVED_FORMAT, "servers": catalog.server_count, "entries": len(rendered)}
        lines[0] = dump_json(header)
        lines.append(b"")
        return b"\n".join(lines)


def _read_back(catalog: Catalog) -> Catalog:
    """`catalog` as reading its canonical form gives it back: keys sorted, no source ToolHive forms."""
    document = json.loads(catalog.canonical_json())
    meta = document["_meta"][CATALOG_META_KEY]
    groups = [
        CatalogGroup(group.name, group.description, _restored(group.entries, stored["servers"]))
        for group, stored in zip(catalog.groups, meta.get("groups") or (), strict=True)
    ]
    registry = dataclasses.replace(catalog.registry, extra=meta["registry"].get("extra") or {})
    return Catalog(
        _restored(catalog.entries, document["servers"]),
        source_format=catalog.source_format,
        registry=registry,
        groups=groups,
        namespace=catalog.namespace,
    )


def _restored(entries: tuple[CatalogEntry, ...], items: list[dict[str, Any]]) -> tuple[CatalogEntry, ...]:
    return tuple(
        dataclasses.replace(
            entry,
            server=item["server"],
            toolhive=None,
            response_meta={k: v for k, v in item["_meta"].items() if k != OFFICIAL_META_KEY} or None,
        )
        for entry, item in zip(entries, items, strict=True)
    )


def _render_entry(entry: CatalogEntry) -> tuple[bytes, bytes]:
    """The facts line and the body line of one entry."""
    published = parse_time(entry.published_at)
    updated = parse_time(entry.updated_at)
    published_text = format_time(published) if published is not None else None
    updated_text = format_time(updated) if updated is not None else None
    official: dict[str, Any] = {"status": entry.status}
    if entry.status_message is not None:
        official["statusMessage"] = entry.status_message
    if published_text is not None:
        official["publishedAt"] = published_text
    if updated_text is not None:
        official["updatedAt"] = updated_text
    official["isLatest"] = entry.is_latest
    meta: dict[str, Any] = dict(entry.response_meta) if entry.response_meta else {}
    keep_upstream_provenance(meta)
    meta[OFFICIAL_META_KEY] = official
    server = entry.server
    haystack = SEARCH_SEPARATOR.join(
        value if isinstance(value, str) else ""
        for value in (entry.name, server.get("title"), server.get("description"))
    ).casefold()
    facts = [entry.name, entry.version, entry.status, entry.is_latest, published_text, updated_text, haystack]
    return dump_json(facts), render_body(server, meta)


# --- reading (the API server) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServedEntry:
    """One server version as served: what the API indexes, and the body it sends."""

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
class ServedDocument:
    entries: tuple[ServedEntry, ...]  # in (name, version) order, each key once
    toolhive: bytes  # the ToolHive registry document
    toolhive_gzip: bytes  # …compressed, as sent to clients that accept gzip
    server_count: int  # distinct names


def read_served(data: bytes) -> ServedDocument:
    """The entries and documents of a served document; ServedFormatError saying what is wrong.

    Checks the format version and the shape (line count, types, order, counts), not the content: the
    operator validated it, and storage verified its hash.
    """
    header = _header(data)
    lines = data.split(b"\n")
    if lines[-1]:
        raise ServedFormatError("the served document does not end with a newline (truncated?)")
    lines.pop()
    count = header["entries"]
    if len(lines) != 2 + 2 * count:
        raise ServedFormatError(
            f"the served document has {len(lines)} lines; its header announces {count} entries, "
            f"which take {2 + 2 * count}"
        )
    toolhive_gzip = _toolhive_gzip(lines[1])
    toolhive = _gunzip(toolhive_gzip)
    with collector_paused():
        entries = tuple(_entries(lines))
    names = len({entry.key[0] for entry in entries})
    if names != header["servers"]:
        raise ServedFormatError(
            f"the served document's header announces {header['servers']} servers; its entries name {names}"
        )
    return ServedDocument(entries=entries, toolhive=toolhive, toolhive_gzip=toolhive_gzip, server_count=names)


def _header(data: bytes) -> Mapping[str, Any]:
    if not is_served(data):
        raise ServedFormatError(f"the data is not a served document (it does not begin {SERVED_PREFIX!r})")
    end = data.find(b"\n")
    try:
        header = json.loads(data[: end if end >= 0 else len(data)])
    except ValueError as exc:
        raise ServedFormatError(f"the served document's header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ServedFormatError("the served document's header is not a JSON object")
    found = header.get("format")
    if found != SERVED_FORMAT:
        raise ServedFormatError(
            f"the data is a served document in format {found!r}; this version reads only {SERVED_FORMAT!r} "
            "(was it written by a newer operator?)"
        )
    for field in ("servers", "entries"):
        value = header.get(field)
        if type(value) is not int or value < 0:
            raise ServedFormatError(f"the served document's header has no valid {field!r} count")
    return header


def _toolhive_gzip(line: bytes) -> bytes:
    try:
        if not (line.startswith(b'"') and line.endswith(b'"')):
            raise ValueError
        packed = base64.b64decode(line[1:-1], validate=True)
    except (ValueError, binascii.Error):
        raise ServedFormatError("line 2 of the served document is not a base64 JSON string") from None
    if not packed.startswith(b"\x1f\x8b"):
        raise ServedFormatError("line 2 of the served document is not a gzipped ToolHive document")
    return packed


def _gunzip(packed: bytes) -> bytes:
    # zlib lets go of the GIL while it works: the event loop keeps serving meanwhile.
    inflater = zlib.decompressobj(wbits=31)
    try:
        document = inflater.decompress(packed, MAX_TOOLHIVE_BYTES)
    except zlib.error as exc:
        raise ServedFormatError(f"the served document's ToolHive document is not gzip ({exc})") from None
    if not inflater.eof or inflater.unconsumed_tail:
        raise ServedFormatError("the served document's ToolHive document is truncated or too large")
    if not (document.startswith(b"{") and document.endswith(b"}")):
        raise ServedFormatError("the served document's ToolHive document is not a JSON object")
    return document


def _entries(lines: list[bytes]) -> list[ServedEntry]:
    entries: list[ServedEntry] = []
    times: dict[str, datetime] = {}
    previous: SortKey | None = None
    for position in range(2, len(lines), 2):
        line = position + 1  # 1-based, for messages
        try:
            facts = json.loads(lines[position])
            name, version, status, is_latest, published, updated, haystack = facts
        except (ValueError, TypeError):
            raise ServedFormatError(f"line {line} of the served document is not an entry's facts") from None
        if not (
            type(name) is str
            and type(version) is str
            and status in STATUSES
            and type(is_latest) is bool
            and type(haystack) is str
            and (published is None or type(published) is str)
            and (updated is None or type(updated) is str)
        ):
            raise ServedFormatError(f"line {line} of the served document has facts of the wrong types")
        key = (name, version)
        if previous is not None and key <= previous:
            raise ServedFormatError(f"line {line} of the served document is out of (name, version) order")
        previous = key
        body = lines[position + 1]
        if not (body.startswith(_BODY_PREFIX) and body.endswith(b"}")):
            raise ServedFormatError(f"line {line + 1} of the served document is not an entry's body")
        updated_at = _time(updated, times, line)
        published_at = _time(published, times, line)
        entries.append(ServedEntry(key, status, is_latest, updated_at, published_at, haystack, body))
    return entries


def _time(value: str | None, times: dict[str, datetime], line: int) -> datetime | None:
    """The moment `value` names, parsed once per distinct value (entries share most of theirs)."""
    if value is None:
        return None
    found = times.get(value)
    if found is None:
        found = times[value] = _parse_stored_time(value, line)
    return found


def _parse_stored_time(value: str, line: int) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        if moment.tzinfo is not None:
            return moment
    raise ServedFormatError(f"line {line} of the served document has a time that is not RFC 3339 UTC")


# --- the documents served whole (what the operator signs) --------------------------------------------


def upstream_list(bodies: Sequence[bytes | memoryview]) -> bytes:
    """The upstream server list served whole (`GET /v0.1/x/dev.mcpregistry/servers.json`): every entry's
    body in (name, version) order, in the shape of a v0.1 list response. Built from the bodies alone,
    so the operator (which signs it) and the API (which serves it) produce the same bytes."""
    head, tail = b'{"servers":[', b'],"metadata":' + dump_json({"count": len(bodies)}) + b"}"
    if not bodies:
        return head + tail
    # One join, the list's ends glued to the first and last body: 18 MB copied once, not three times.
    parts: list[bytes | memoryview] = list(bodies)
    parts[0] = head + parts[0]
    parts[-1] = bytes(parts[-1]) + tail
    return b",".join(parts)


def served_documents(data: bytes, generation: str) -> dict[str, bytes]:
    """The documents of a served document that the API serves whole, by name, as it sends them:
    `toolhive` (`GET /api/v1/registry`), `upstream` (`upstream_list`) and `entries` (the entries
    manifest of `generation`, the data's content hash).

    What signing costs per sync is mostly this (and the signature's own hashing): so no line is copied
    out of `data` (the bodies are views, hashed and joined in place), no entry is decoded (the manifest
    takes each name and version as its facts line writes them), and the ToolHive document is
    decompressed once."""
    _header(data)
    bounds = [-1]  # the newline before each line, then the one after the last
    find, at = data.find, data.find(b"\n")
    while at >= 0:
        bounds.append(at)
        at = find(b"\n", at + 1)
    if len(bounds) < 3 or bounds[-1] != len(data) - 1 or len(bounds) % 2 == 0:
        raise ServedFormatError("the served document is truncated")
    view = memoryview(data)
    bodies = [view[bounds[line] + 1 : bounds[line + 1]] for line in range(3, len(bounds) - 1, 2)]
    rows = [
        manifest_row(*name_and_version_in(data, bounds[line] + 1, bounds[line + 1]), entry_digest(body))
        for line, body in zip(range(2, len(bounds) - 1, 2), bodies, strict=True)
    ]
    return {
        TOOLHIVE_DOCUMENT: _gunzip(_toolhive_gzip(data[bounds[1] + 1 : bounds[2]])),
        UPSTREAM_DOCUMENT: upstream_list(bodies),
        ENTRIES_DOCUMENT: entries_manifest(generation, rows),
    }


# --- the ToolHive document alone (the S3 writer's extra object) ---------------------------------------


def toolhive_document(data: bytes) -> bytes:
    """The ToolHive registry document of stored catalogue bytes, as `GET /api/v1/registry` sends it.

    Of a served document: its second line, decompressed (nothing else decoded, nothing validated). Of
    anything else (a catalogue stored by an older operator): parsed, validated and rendered.
    """
    if is_served(data):
        _header(data)
        lines = data.split(b"\n", 2)
        if len(lines) < 3:
            raise ServedFormatError("the served document has no ToolHive registry document")
        return _gunzip(_toolhive_gzip(lines[1]))
    return dump_json(parse_catalog(data, format="auto").toolhive_view())
