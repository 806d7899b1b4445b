"""Errors a request can end in, each rendered as a JSON problem body (RFC 9457).

Handlers raise `ApiError`; the middleware in `manners` renders it. Every bad input is a 4xx with a
body that says which parameter was wrong and why; nothing a client sends can produce a 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One problem with the request: where (`query.limit`, `path.name`) and what."""

    location: str
    message: str
    value: str | None = None

    def to_json(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"location": self.location, "message": self.message}
        if self.value is not None:
            detail["value"] = self.value
        return detail


@dataclass(slots=True)
class ApiError(Exception):
    """A request that ends in an error response."""

    status: int
    detail: str
    errors: tuple[ErrorDetail, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}"

    def body(self) -> bytes:
        return problem_body(self.status, self.detail, self.errors)


def problem_body(status: int, detail: str, errors: tuple[ErrorDetail, ...] = ()) -> bytes:
    """`{"title", "status", "detail", "errors"?}` as bytes."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    document: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    if errors:
        document["errors"] = [error.to_json() for error in errors]
    return json.dumps(document, separators=(",", ":")).encode()


def bad_request(location: str, message: str, value: str | None = None) -> ApiError:
    """400 naming the one parameter that was wrong."""
    return ApiError(400, f"{location}: {message}", (ErrorDetail(location, message, _clip(value)),))


def not_found(detail: str) -> ApiError:
    return ApiError(404, detail)


def _clip(value: str | None, limit: int = 200) -> str | None:
    # Echo what was sent (it helps), but never a megabyte of it.
    if value is None or len(value) <= limit:
        return value
    return value[:limit] + "…"
