"""Running the app: listen with the configured HTTP limits, log access as JSON lines, stop gracefully.

On SIGTERM or SIGINT the listener closes, requests in flight get `shutdown_timeout_seconds` to finish,
then the catalogue loader is cancelled and the app's cleanup runs.

`serve()` runs inside an event loop the caller owns, so whatever the reader needs (a Kubernetes API
client, say) is created on that same loop; `run()` is the synchronous wrapper.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import IO, Any

from aiohttp import web

from mcpreg_api.accesslog import AccessLogSink, JsonAccessLogger
from mcpreg_api.app import CONFIG, STATE

log = logging.getLogger("mcpreg_api")

AppFactory = Callable[[], contextlib.AbstractAsyncContextManager[web.Application]]


def runner_options(app: web.Application, access_stream: IO[str] | None = None) -> dict[str, Any]:
    """Keyword arguments for `web.AppRunner`: HTTP limits, shutdown grace, the access logger.

    Call it before the runner is set up: it registers the access log's final flush on app cleanup.
    """
    config = app[CONFIG]
    limits = config.limits
    options: dict[str, Any] = {
        "keepalive_timeout": limits.keepalive_timeout_seconds,
        "max_line_size": limits.max_line_size,
        "max_field_size": limits.max_field_size,
        "max_headers": limits.max_headers,
        "shutdown_timeout": limits.shutdown_timeout_seconds,
    }
    if config.access_log.enabled:
        sink = AccessLogSink(access_stream, flush_interval=config.access_log.flush_interval_seconds)

        async def flush_access_log(app: web.Application) -> None:
            sink.flush()

        app.on_cleanup.append(flush_access_log)
        options["access_log_class"] = JsonAccessLogger
        options["access_log"] = sink
    else:
        options["access_log"] = None
    return options


async def serve(
    app: web.Application,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    access_stream: IO[str] | None = None,
    stop: asyncio.Event | None = None,
    on_listening: Callable[[int], Awaitable[None] | None] | None = None,
) -> None:
    """Serve `app` until `stop` is set or the process gets SIGTERM/SIGINT."""
    stop = stop or asyncio.Event()
    runner = web.AppRunner(app, **runner_options(app, access_stream))
    await runner.setup()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        bound = _bound_port(site, port)
        log.info("registry API listening on http://%s:%d", host, bound)
        if on_listening is not None:
            result = on_listening(bound)
            if result is not None:
                await result
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
        await stop.wait()
        await _drain(app, stop)
        log.info("shutting down: finishing requests in flight")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await runner.cleanup()


async def _drain(app: web.Application, stop: asyncio.Event) -> None:
    """Keep serving for the drain period, marked not ready; a second signal ends it early."""
    seconds = app[CONFIG].limits.drain_seconds
    if seconds <= 0:
        return
    app[STATE].draining = True
    log.info("draining for %.1fs: /readiness answers 503, connections close after each response", seconds)
    stop.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _bound_port(site: web.TCPSite, requested: int) -> int:
    server = site._server  # the asyncio Server; the only way to learn the port when 0 was asked for
    sockets = getattr(server, "sockets", None) or ()
    for sock in sockets:
        return int(sock.getsockname()[1])
    return requested


def run(
    make_app: AppFactory,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    access_stream: IO[str] | None = None,
) -> None:
    """Build the app on a fresh event loop (inside `make_app`'s context) and serve it until signalled."""

    async def main() -> None:
        async with make_app() as app:
            await serve(app, host=host, port=port, access_stream=access_stream)

    try:  # optional: about 10% more requests per second when installed (not a dependency)
        uvloop: Any = importlib.import_module("uvloop")
    except ImportError:
        asyncio.run(main())
    else:
        log.info("using uvloop")
        uvloop.run(main())


def configure_logging(level: str = "INFO") -> None:
    """Plain log lines on stderr for everything but the access log (which has its own stream)."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
