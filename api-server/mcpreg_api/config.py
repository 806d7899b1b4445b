"""Tunables of the API server, with defaults fit for a cluster Service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Bounds on what a client may send and how long it may take (aiohttp enforces the first three).

    A request line longer than `max_line_size`, a header longer than `max_field_size` or more than
    `max_headers` headers are refused (400/431) before any handler runs. `keepalive_timeout` closes a
    connection that has not completed a request within that time of opening or of its previous
    response - idle, or dribbling its headers byte by byte (aiohttp does not reset it on partial
    input), so a slow client cannot hold connections open. Handlers never wait on anything (every
    answer is precomputed), so they need no time limit of their own. `shutdown_timeout` is how long
    requests in flight may take to finish on shutdown. `drain_seconds` is how long the server keeps
    answering after SIGTERM before it closes its listener, with `/readiness` at 503 and every response
    closing its connection: a Service routes new requests elsewhere once its endpoints are updated,
    which takes a moment after a pod is told to stop (0: close at once, for local use).
    """

    max_line_size: int = 16384  # room for every parameter at its documented maximum, percent-encoded
    max_field_size: int = 8190
    max_headers: int = 64
    keepalive_timeout: float = 20.0
    shutdown_timeout: float = 10.0
    drain_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the app answers.

    `cache_max_age`: seconds clients and proxies may reuse a catalogue response without asking again
    (after that they revalidate with If-None-Match and get a 304 when nothing changed).
    `access_log`: write one JSON line per request (see `accesslog`), buffered for at most
    `access_log_flush_interval` seconds (0: write each line at once).
    """

    cache_max_age: int = 30
    access_log: bool = True
    access_log_flush_interval: float = 1.0
    limits: HttpLimits = HttpLimits()

    @property
    def data_cache_control(self) -> str:
        return f"public, max-age={self.cache_max_age}"


NO_STORE = "no-store"
DOCUMENT_CACHE_CONTROL = "public, max-age=300"
