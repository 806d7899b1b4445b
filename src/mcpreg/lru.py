"""A least-recently-used map, bounded by count and optionally by weight.

The operator keeps per-registry source state in one (so that deleted registries do not pile up in its
memory); the API keeps rendered responses in one, weighed by their bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def _unweighed(_: object) -> int:
    return 0


class LruCache(Generic[K, V]):
    """At most `size` values and at most `max_weight` of their total `weigh`; the least recently used
    goes first."""

    def __init__(self, size: int, *, weigh: Callable[[V], int] = _unweighed, max_weight: int = 0) -> None:
        self._size = size
        self._weigh = weigh
        self._max_weight = max_weight
        self._weight = 0
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self.pop(key)
        self._entries[key] = value
        self._weight += self._weigh(value)
        while len(self._entries) > self._size or (self._max_weight and self._weight > self._max_weight):
            _, dropped = self._entries.popitem(last=False)
            self._weight -= self._weigh(dropped)

    def pop(self, key: K) -> None:
        dropped = self._entries.pop(key, None)
        if dropped is not None:
            self._weight -= self._weigh(dropped)

    def clear(self) -> None:
        self._entries.clear()
        self._weight = 0

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
