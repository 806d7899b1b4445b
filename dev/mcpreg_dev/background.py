"""What the development servers share: a context manager around start()/stop(), and an asyncio
server run on an event loop of its own in a daemon thread, so synchronous tests and benchmarks can
use aiohttp servers without an event loop of their own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Self


class Background:
    """`with server:` starts it and stops it, whatever happens in between."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ThreadLoopServer(Background):
    """An asyncio server on its own loop and thread. A subclass sets `host`, `port` and `what` (for
    messages), and implements `_serve`: listen, set `self._stopping`, then `ready`, and wait for
    `_stopping` before cleaning up; an exception it puts in `failure` makes start() fail."""

    what = "the server"
    host: str
    port: int
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stopping: asyncio.Event | None = None

    async def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        raise NotImplementedError

    def start(self, timeout: float = 10.0) -> Self:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._serve(ready, failure))
            loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            self.stop()
            detail = f": {failure[0]}" if failure else f": not listening within {timeout:.0f}s"
            raise RuntimeError(f"{self.what} could not start on {self.host}:{self.port}{detail}")
        return self

    def stop(self) -> None:
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None:
            return
        if stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        thread.join(15)
        self._thread = None
        self._loop = None
