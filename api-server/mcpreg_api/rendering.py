"""Response bodies as bytes with their ETag, and a bounded per-generation cache of them.

A body is a pure function of (catalogue generation, endpoint, normalised parameters), so its ETag is
derived from those rather than by hashing the bytes, and a rendered page can be reused by every
request that asks for it until the data reloads (each generation has its own cache, so nothing
rendered from one generation is ever served for another). The gzip form is made at most once.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from mcpreg.catalog.served import GZIP_LEVEL, dump_json
from mcpreg.lru import LruCache

__all__ = ["GZIP_LEVEL", "Rendered", "ResponseCache", "dump_json", "make_etag", "render_list"]

MIN_GZIP_SIZE = 1024


def make_etag(*parts: str) -> str:
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
    return f'"{digest}"'


class Rendered:
    """A response body ready to send: bytes, strong ETag, and its gzip form made on first use."""

    __slots__ = ("_gzip", "body", "etag")

    def __init__(self, body: bytes, etag: str, gzipped: bytes | None = None) -> None:
        self.body = body
        self.etag = etag
        self._gzip = gzipped

    @property
    def compressible(self) -> bool:
        return len(self.body) >= MIN_GZIP_SIZE

    def gzipped(self) -> bytes:
        if self._gzip is None:
            self._gzip = gzip.compress(self.body, compresslevel=GZIP_LEVEL, mtime=0)
        return self._gzip

    @property
    def size(self) -> int:
        """Bytes held, counting room for the gzip form (never larger than the body, for our JSON)."""
        return 2 * len(self.body)


def render_list(bodies: Iterable[bytes], count: int, next_cursor: str | None, etag: str) -> Rendered:
    """`{"servers": [...], "metadata": {"nextCursor"?, "count"}}` from pre-serialised entries."""
    metadata: dict[str, Any] = {"count": count}
    if next_cursor is not None:
        metadata = {"nextCursor": next_cursor, "count": count}
    body = b'{"servers":[' + b",".join(bodies) + b'],"metadata":' + dump_json(metadata) + b"}"
    return Rendered(body, etag)


class ResponseCache(LruCache[Hashable, Rendered]):
    """Least-recently-used rendered responses, bounded by count and by bytes."""

    def __init__(self, max_items: int = 4096, max_bytes: int = 64 * 1024 * 1024) -> None:
        super().__init__(max_items, weigh=lambda rendered: rendered.size, max_weight=max_bytes)
        # One response may take an eighth of the room at most, so that a few large lists cannot evict
        # every small entry.
        self.largest = max_bytes // 8

    def put(self, key: Hashable, value: Rendered) -> None:
        if value.size <= self.largest:
            super().put(key, value)

    def get_or_render(self, key: Hashable, render: Callable[[], Rendered]) -> Rendered:
        found = self.get(key)
        if found is None:
            found = render()
            self.put(key, found)
        return found
