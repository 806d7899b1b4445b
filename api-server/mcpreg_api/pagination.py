"""Cursor pagination over a sorted list of entries.

Entries are ordered by (name, version) - plain code-point order, total and stable across reloads. A
cursor names the last entry a page returned, so the next page starts strictly after it: pages never
repeat or skip an entry that exists in both generations, even when the data reloads between pages,
and a walk always ends because every page moves strictly forward.

The cursor is opaque to clients: base64url of a small JSON array. Anything that does not decode to
one is refused with 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from mcpreg_api.errors import bad_request

SortKey = tuple[str, str]
_CURSOR_VERSION = 1


class Keyed(Protocol):
    @property
    def key(self) -> SortKey: ...


E = TypeVar("E", bound=Keyed)


def encode_cursor(key: SortKey) -> str:
    raw = json.dumps([_CURSOR_VERSION, key[0], key[1]], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> SortKey:
    """The (name, version) a cursor points after; ApiError(400) when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error):
        raise bad_request("query.cursor", "is not a cursor this server issued", cursor) from None
    if (
        isinstance(value, list)
        and len(value) == 3
        and value[0] == _CURSOR_VERSION
        and isinstance(value[1], str)
        and isinstance(value[2], str)
    ):
        return value[1], value[2]
    raise bad_request("query.cursor", "is not a cursor this server issued", cursor)


@dataclass(frozen=True, slots=True)
class Page(Generic[E]):
    items: list[E]
    next_cursor: str | None


def paginate(
    entries: Sequence[E],
    keys: Sequence[SortKey],
    *,
    after: SortKey | None,
    limit: int,
    keep: Callable[[E], bool] | None = None,
) -> Page[E]:
    """Up to `limit` entries after `after` that `keep` accepts, and the cursor of the next page.

    `keys[i]` is `entries[i].key`, sorted. The next cursor is given only when at least one more entry
    would follow, so a client's walk ends on a full page instead of fetching an empty one.
    """
    start = 0 if after is None else bisect_right(keys, after)
    if keep is None:
        items = list(entries[start : start + limit])
        more = start + limit < len(entries)
    else:
        items = []
        more = False
        for index in range(start, len(entries)):
            entry = entries[index]
            if keep(entry):
                if len(items) == limit:
                    more = True
                    break
                items.append(entry)
    next_cursor = encode_cursor(items[-1].key) if more and items else None
    return Page(items, next_cursor)
