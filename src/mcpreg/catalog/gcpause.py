"""Pausing Python's cyclic garbage collector while a catalogue is built or rendered.

Building a large catalogue creates hundreds of thousands of small objects in one go, and each automatic
collection rescans all of them: on a 10,000-server catalogue that is a large share of the time. None
of these objects form reference cycles, so reference counting frees them as usual and nothing is lost
by pausing. The pause is shared between threads (the API server builds in a worker thread while the
event loop serves): the collector is re-enabled when the last concurrent pause ends, and only if it
was enabled when the first one began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
