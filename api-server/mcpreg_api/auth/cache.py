"""A small cache of decisions by token: entries live `ttl` seconds, at most `max_entries` of them (the
least recently used go first), and concurrent first requests with one token share one review."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")


def token_key(token: str) -> bytes:
    # Kept by digest: the cache holds no usable credential.
    return hashlib.sha256(token.encode()).digest()


class TtlCache(Generic[V]):
    def __init__(self, ttl: float, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[bytes, tuple[float, V]] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self.clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: bytes, value: V, ttl: float | None = None) -> None:
        """Keep `value` for `ttl` seconds (at most the cache's own TTL)."""
        lifetime = self.ttl if ttl is None else min(ttl, self.ttl)
        self._entries[key] = (self.clock() + lifetime, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def get_or_compute(
        self,
        key: bytes,
        compute: Callable[[], Awaitable[V]],
        ttl_of: Callable[[V], float | None] | None = None,
    ) -> V:
        """The cached value, or `compute()`'s (cached, for `ttl_of(value)` seconds when that says less
        than the TTL), computed once for concurrent callers. A failure is not cached: every waiter sees
        it, and the next request tries again."""
        value = self.get(key)
        if value is not None:
            return value
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            self.put(key, value, ttl_of(value) if ttl_of is not None else None)
            future.set_result(value)
            return value
        finally:
            del self._pending[key]
