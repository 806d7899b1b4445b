"""The access log: one JSON object per line for every request answered - the audit trail.

Fields: `time` (RFC 3339 UTC, when the response was sent), `remote` (peer address, or the first
X-Forwarded-For hop when `trust_forwarded` is on), `method`, `path` (as sent, still percent-encoded),
`query`, `status`, `bytes` (body bytes sent), `latency_ms`, `user_agent`, `request_id` (X-Request-ID,
when given). Lines go to the `mcpreg_api.access` logger; `configure_access_log` points it at a stream.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

ACCESS_LOGGER_NAME = "mcpreg_api.access"
_MAX_FIELD = 512


class JsonAccessLogger(AbstractAccessLogger):
    trust_forwarded = False

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        headers = request.headers
        remote = request.remote
        if self.trust_forwarded:
            forwarded = headers.get("X-Forwarded-For")
            if forwarded:
                remote = forwarded.split(",", 1)[0].strip()
        record: dict[str, Any] = {
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "remote": remote,
            "method": request.method,
            "path": _clip(request.raw_path.split("?", 1)[0]),
            "query": _clip(request.rel_url.raw_query_string),
            "status": response.status,
            "bytes": response.body_length,
            "latency_ms": round(time * 1000, 3),
            "user_agent": _clip(headers.get("User-Agent", "")),
        }
        request_id = headers.get("X-Request-ID")
        if request_id:
            record["request_id"] = _clip(request_id)
        self.logger.info(json.dumps(record, separators=(",", ":")))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_FIELD else text[:_MAX_FIELD] + "…"


def configure_access_log(stream: IO[str] | None = None) -> logging.Logger:
    """Send access-log lines, bare (the line is the record), to `stream` (default stdout)."""
    logger = logging.getLogger(ACCESS_LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return logger
