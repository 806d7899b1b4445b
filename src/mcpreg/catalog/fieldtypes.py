"""Constrained field types shared by the ToolHive and upstream models.

JSON Schema keywords that pydantic has no direct equivalent for (`uniqueItems`, `format: uri`,
`format: date-time`, `format: hostname`) are expressed here once, so both formats check them the same
way and report them with the same words.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, TypeVar

from pydantic import AfterValidator, Field, StringConstraints

T = TypeVar("T", bound=Hashable)

# RFC 3986 only needs a scheme followed by ':'; whitespace is never part of a URI.
URI_PATTERN = r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*$"
# RFC 3339 date-time, as JSON Schema's `format: date-time` means it. Kept as text (not a datetime) so a
# round trip reproduces the exact characters the author wrote.
DATE_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+\-][0-9]{2}:[0-9]{2})$"
)
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# RFC 1123 host name; checked by pydantic's (Rust) regex engine rather than in Python, for speed.
HOSTNAME_PATTERN = rf"^{_LABEL}(\.{_LABEL})*\.?$"
# ToolHive's allow_host also takes a leading-dot domain suffix (".example.com").
ALLOWED_HOST_PATTERN = rf"^\.?{_LABEL}(\.{_LABEL})*\.?$"
# ... and, in catalogues it served, a wildcard ("*.example.com"), which it passes on as written. The
# ToolHive format reports that as a warning (mcpreg.catalog.legacy); the server.json extension
# carries it as converted, so that a catalogue's own canonical form reads back.
KEPT_ALLOWED_HOST_PATTERN = rf"^(\*\.|\.)?{_LABEL}(\.{_LABEL})*\.?$"


def _unique(items: list[T]) -> list[T]:
    if len(set(items)) != len(items):
        seen: set[T] = set()
        for item in items:
            if item in seen:
                raise ValueError(f"must not contain duplicates (found {item!r} twice)")
            seen.add(item)
    return items


UriString = Annotated[str, StringConstraints(pattern=URI_PATTERN)]
DateTimeString = Annotated[str, StringConstraints(pattern=DATE_TIME_PATTERN)]
HostnameString = Annotated[str, StringConstraints(pattern=HOSTNAME_PATTERN, max_length=253)]
AllowedHostString = Annotated[str, StringConstraints(pattern=ALLOWED_HOST_PATTERN, max_length=254)]
KeptAllowedHostString = Annotated[str, StringConstraints(pattern=KEPT_ALLOWED_HOST_PATTERN, max_length=255)]
Port = Annotated[int, Field(ge=1, le=65535)]


def unique_list_validator() -> AfterValidator:
    """`uniqueItems: true` for a list of hashable values."""
    return AfterValidator(_unique)
