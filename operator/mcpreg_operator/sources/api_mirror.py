"""The pure part of `source.type: api`: reading v0.1 list pages, deciding the walk, merging what changed
upstream into the mirror, and assembling the mirror as one upstream-format list document.

The mirror holds each entry as the canonical JSON of its list item (`{"server": …, "_meta": …}`, keys
sorted), so that 10,000 entries cost about as much memory as their text, and assembling the document is
a join of bytes in (name, version) order: identical upstream data gives identical bytes, whatever the
page order, so the revision (the sha256 of those bytes) is stable across walks.

Upstream facts this follows (the official registry; this product's API behaves the same):
- `updated_since` is strict (`>`) and reports deleted versions, so a mirror can drop them;
- the official `_meta` block (`io.modelcontextprotocol.registry/official`) carries `status`
  (active, deprecated, deleted), `updatedAt` and `isLatest`: deprecated entries are kept as they are
  (their `_meta` says so), deleted ones removed;
- a version that stops being the latest (another was published, or it was deleted and an older one took
  its place) keeps its `updatedAt`: an incremental refresh never hears of it. So the refresh asks for
  every version changed (no `version=latest`: a deleted latest loses its flag and would be missed), and
  in `latest` mode a server whose mirrored latest went away is looked up again by name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from mcpreg_operator.spec.source_api import ApiVersions

OFFICIAL_META = "io.modelcontextprotocol.registry/official"
PAGE_LIMIT = 100  # the largest page the official registry serves
EntryKey = tuple[str, str]  # (name, version)


class NotARegistryAnswer(Exception):
    """An answer that is not what a v0.1 registry sends; the text says what was wrong with it."""


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _ServerHead(_Loose):
    name: StrictStr = Field(min_length=1)
    version: StrictStr = Field(min_length=1)


class _Official(_Loose):
    status: StrictStr | None = None
    updatedAt: StrictStr | None = None
    isLatest: StrictBool | None = None


class _Item(_Loose):
    server: _ServerHead
    meta: dict[str, Any] | None = Field(default=None, alias="_meta")


class _Metadata(_Loose):
    nextCursor: StrictStr | None = None


class _Page(_Loose):
    servers: list[Any]
    metadata: _Metadata | None = None


@dataclass(frozen=True, slots=True)
class MirroredEntry:
    """One mirrored version: its list item as canonical JSON, and what the merge decides on."""

    body: bytes
    updated_at: datetime | None
    updated_text: str | None  # as upstream wrote it: sent back verbatim as updated_since
    is_latest: bool | None  # None: the registry does not say
    deleted: bool


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[tuple[EntryKey, MirroredEntry]]
    next_cursor: str | None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        start = body[:60].decode("utf-8", errors="replace").strip()
        raise NotARegistryAnswer(f"the answer is not JSON (it starts with {start!r})") from None


def _timestamp(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


def read_item(raw: Any, where: str) -> tuple[EntryKey, MirroredEntry]:
    """One list item (or the answer of GET /servers/{name}/versions/{version}, the same shape)."""
    try:
        item = _Item.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise NotARegistryAnswer(
            f"{where} is not a server response ({location or 'the item'}: {first['msg']})"
        ) from None
    official_raw = (item.meta or {}).get(OFFICIAL_META)
    official = _Official.model_validate(official_raw) if isinstance(official_raw, dict) else _Official()
    body = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    entry = MirroredEntry(
        body=body,
        updated_at=_timestamp(official.updatedAt),
        updated_text=official.updatedAt if _timestamp(official.updatedAt) else None,
        is_latest=official.isLatest,
        deleted=official.status == "deleted",
    )
    return (item.server.name, item.server.version), entry


def read_page(body: bytes) -> Page:
    """A `GET /v0.1/servers` answer; NotARegistryAnswer when it is not one."""
    document = _json(body)
    if not isinstance(document, dict):
        raise NotARegistryAnswer(f"the answer is a JSON {type(document).__name__}, not an object")
    if not isinstance(document.get("servers"), list):
        raise NotARegistryAnswer("the answer has no 'servers' array")
    try:
        page = _Page.model_validate(document)
    except ValidationError:
        raise NotARegistryAnswer(
            "the answer's 'metadata' is not an object with a string nextCursor"
        ) from None
    entries = [read_item(raw, f"servers[{index}]") for index, raw in enumerate(page.servers)]
    cursor = page.metadata.nextCursor if page.metadata is not None else None
    return Page(entries, cursor or None)


def read_detail(body: bytes) -> tuple[EntryKey, MirroredEntry]:
    return read_item(_json(body), "the answer")


class WalkError(Exception):
    """The walk cannot go on (a cursor that repeats); the text says why."""


def next_cursor(page: Page, seen: set[str]) -> str | None:
    """The cursor of the next page, or None when the walk is over. A cursor given twice would walk for
    ever: refused."""
    cursor = page.next_cursor
    if cursor is None:
        return None
    if cursor in seen:
        raise WalkError(f"the registry gave the cursor {cursor[:40]!r} twice: its pagination loops")
    seen.add(cursor)
    return cursor


def list_query(versions: ApiVersions, *, cursor: str | None, since: str | None) -> dict[str, str]:
    """The query of one page: a full walk asks for `version=latest` in latest mode; a refresh asks for
    every version changed since the watermark (see the module's notes)."""
    query = {"limit": str(PAGE_LIMIT)}
    if since is not None:
        query["updated_since"] = since
    elif versions is ApiVersions.LATEST:
        query["version"] = "latest"
    if cursor is not None:
        query["cursor"] = cursor
    return query


def _keep_flagged_latest(entries: MutableMapping[EntryKey, MirroredEntry]) -> None:
    """Where a server has a version flagged latest, drop its other versions (a registry that ignored
    `version=latest`); a server with no flagged version keeps what it has."""
    flagged = {name for (name, _), entry in entries.items() if entry.is_latest}
    for key in [k for k, e in entries.items() if k[0] in flagged and not e.is_latest]:
        del entries[key]


def full_walk_entries(
    items: Iterable[tuple[EntryKey, MirroredEntry]], versions: ApiVersions
) -> dict[EntryKey, MirroredEntry]:
    """The mirror after a full walk: every entry listed, deleted ones left out."""
    entries = {key: entry for key, entry in items if not entry.deleted}
    if versions is ApiVersions.LATEST:
        _keep_flagged_latest(entries)
    return entries


def apply_changes(
    entries: MutableMapping[EntryKey, MirroredEntry],
    changes: Iterable[tuple[EntryKey, MirroredEntry]],
    versions: ApiVersions,
) -> set[str]:
    """Merge the entries an `updated_since` walk reported into `entries`. Returns the servers (latest
    mode) whose mirrored version went away without a successor being reported: to look up by name."""
    names: dict[str, set[EntryKey]] = {}
    for key in entries:
        names.setdefault(key[0], set()).add(key)
    lookups: set[str] = set()
    for key, entry in changes:
        name = key[0]
        held = names.setdefault(name, set())
        if versions is ApiVersions.ALL:
            if entry.deleted:
                entries.pop(key, None)
                held.discard(key)
            else:
                entries[key] = entry
                held.add(key)
            continue
        if entry.deleted or entry.is_latest is False:
            # Gone, or no longer the latest: an older version of this server may be the latest now.
            if key in held:
                del entries[key]
                held.discard(key)
                lookups.add(name)
            continue
        for other in held - {key}:
            del entries[other]
        entries[key] = entry
        names[name] = {key}
    return {name for name in lookups if not names.get(name)}


def apply_lookup(
    entries: MutableMapping[EntryKey, MirroredEntry], found: tuple[EntryKey, MirroredEntry] | None
) -> None:
    """The answer to a look-up of a server's latest version (None: the registry has none)."""
    if found is not None and not found[1].deleted:
        entries[found[0]] = found[1]


def watermark(
    current: tuple[datetime, str] | None, items: Iterable[tuple[EntryKey, MirroredEntry]]
) -> tuple[datetime, str] | None:
    """The latest `updatedAt` seen (deleted entries included), with its text as upstream wrote it."""
    best = current
    for _, entry in items:
        stamp, text = entry.updated_at, entry.updated_text
        if stamp is not None and text is not None and (best is None or stamp > best[0]):
            best = (stamp, text)
    return best


def assemble(entries: Mapping[EntryKey, MirroredEntry]) -> bytes:
    """The mirror as one v0.1 list document, entries in (name, version) order: the same entries give
    the same bytes."""
    ordered = [entries[key].body for key in sorted(entries)]
    head = b'{"metadata":{"count":' + str(len(ordered)).encode() + b'},"servers":['
    return head + b",".join(ordered) + b"]}"


def revision_of(document: bytes) -> str:
    return "sha256:" + hashlib.sha256(document).hexdigest()
