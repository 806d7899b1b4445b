"""The access log: one JSON object per line for every request answered - the audit trail.

Fields: `time` (RFC 3339 UTC, millisecond precision, when the response was sent), `remote` (the peer
address, or the first X-Forwarded-For hop when `trust_forwarded` is on), `method`, `path` (as sent,
still percent-encoded), `query`, `status`, `bytes` (body bytes sent), `latency_ms`, `user_agent`, and
`request_id` (the X-Request-ID header, when given), and `subject` (who the caller is, e.g.
`system:serviceaccount:team-a:agent`, when an auth mode identified one; absent for anonymous reads).

Lines go to an `AccessLogSink`, which buffers them and writes at most every `flush_interval` seconds
(or sooner, when 64 KiB are waiting), like nginx's `access_log ... buffer= flush=`: one write per burst
instead of one per request, which on a busy server is a third of the cost of answering. The buffer is
flushed when the app shuts down; `flush_interval=0` writes every line at once.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import IO, Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

DEFAULT_FLUSH_INTERVAL = 1.0
FLUSH_BYTES = 64 * 1024
_MAX_FIELD = 512

SUBJECT_KEY = web.RequestKey("mcpreg_subject", str)
"""Set by the auth middleware to the caller's username, for the `subject` field."""


class AccessLogSink:
    """Buffered line writer for the access log."""

    def __init__(
        self, stream: IO[str] | None = None, *, flush_interval: float = DEFAULT_FLUSH_INTERVAL
    ) -> None:
        self.stream = stream or sys.stdout
        self.flush_interval = flush_interval
        self._lines: list[str] = []
        self._size = 0
        self._scheduled: asyncio.TimerHandle | None = None

    def write(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line)
        if self.flush_interval <= 0 or self._size >= FLUSH_BYTES:
            self.flush()
        elif self._scheduled is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = loop.call_later(self.flush_interval, self.flush)

    def flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        self._size = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not break serving
            pass


class JsonAccessLogger(AbstractAccessLogger):
    """aiohttp's access-logger hook; the "logger" aiohttp hands it is our `AccessLogSink`."""

    trust_forwarded = False
    _second = -1
    _prefix = ""

    def log(self, request: BaseRequest, response: StreamResponse, time_taken: float) -> None:
        headers = request.headers
        remote = request.remote
        if self.trust_forwarded:
            forwarded = headers.get("X-Forwarded-For")
            if forwarded:
                remote = forwarded.split(",", 1)[0].strip()
        raw_path, _, query = request.raw_path.partition("?")
        record: dict[str, Any] = {
            "time": self._now(),
            "remote": remote,
            "method": request.method,
            "path": _clip(raw_path),
            "query": _clip(query),
            "status": response.status,
            "bytes": response.body_length,
            "latency_ms": round(time_taken * 1000, 3),
            "user_agent": _clip(headers.get("User-Agent", "")),
        }
        request_id = headers.get("X-Request-ID")
        if request_id:
            record["request_id"] = _clip(request_id)
        subject = request.get(SUBJECT_KEY)
        if subject is not None:
            record["subject"] = _clip(subject)
        sink: AccessLogSink = self.logger  # type: ignore[assignment]
        sink.write(json.dumps(record, separators=(",", ":")))

    def _now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:  # formatting the date once a second, not once a request
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"

    @property
    def enabled(self) -> bool:
        return True


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_FIELD else text[:_MAX_FIELD] + "…"
