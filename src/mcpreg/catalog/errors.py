"""Structured catalogue problems: what is wrong, in which entry, at which JSON path.

Every problem found while reading a catalogue becomes a `CatalogIssue`. They are collected rather than
raised one by one so that a user sees every problem in a file at once, and they render to a single
line (`servers.fetch.transport: must be one of 'stdio', 'sse' or 'streamable-http' (got 'http')`)
that a person can act on without reading a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails

PathPart = str | int
# An error makes an entry unservable; a warning says what normalisation did to an entry that is served.
Severity = Literal["error", "warning"]

# Keys that can be written after a dot without ambiguity; anything else is written as ["key"].
_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_SHOWN_VALUE_MAX = 60


def format_path(parts: Iterable[PathPart]) -> str:
    """Render a JSON path the way users write it: `servers.fetch.env_vars[0].name`.

    Keys that contain dots, slashes or other punctuation (image references, `_meta` namespaces) are
    quoted so the path stays unambiguous: `_meta["io.github.stacklok"]["ghcr.io/x:1"].tools`.
    """
    out: list[str] = []
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            out.append(f".{part}" if out else part)
        else:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{escaped}"]')
    return "".join(out)


def show_value(value: object) -> str:
    """A short, single-line rendering of an offending value for messages."""
    text = repr(value) if isinstance(value, str) else _compact(value)
    if len(text) > _SHOWN_VALUE_MAX:
        text = text[: _SHOWN_VALUE_MAX - 1] + "…"
    return text


def json_kind(value: object) -> str:
    """The JSON name of a decoded value's type: object, list, string, boolean, null or number."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _compact(value: object) -> str:
    kind = json_kind(value)
    if kind == "object":
        return "an object"
    if kind == "list":
        return "a list"
    if kind == "boolean":
        return "true" if value else "false"
    return "null" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class CatalogIssue:
    """One problem in a catalogue.

    `entry` is the server the problem belongs to (its catalogue key or upstream name), or None for
    problems with the document as a whole. `path` is the JSON path from the document root, already
    rendered (`servers.fetch.transport`); it is empty when the problem is the document itself (not
    JSON, too large, unknown format). `severity` is "error" (the entry, or the document, cannot be
    served) or "warning" (the entry is served after the normalisation the message describes).
    """

    entry: str | None
    path: str
    message: str
    severity: Severity = "error"

    def render(self) -> str:
        """One line: `path: message`, naming the entry when the path does not already show it."""
        location = self.path or "(document)"
        line = f"{location}: {self.message}"
        if self.entry is not None and not _path_names_entry(self.path, self.entry):
            line += f" (entry {self.entry})"
        return line

    def __str__(self) -> str:
        return self.render()

    def as_dict(self) -> dict[str, str | None]:
        """JSON-ready form, for API bodies and machine-readable output."""
        return {"entry": self.entry, "path": self.path, "message": self.message, "severity": self.severity}


def _path_names_entry(path: str, entry: str) -> bool:
    return f".{entry}" in path or f'["{entry}"]' in path or path.startswith(entry)


class CatalogError(Exception):
    """A catalogue could not be read; `issues` lists every problem found (at least one)."""

    def __init__(self, issues: Sequence[CatalogIssue]) -> None:
        if not issues:
            raise ValueError("CatalogError needs at least one issue")
        self.issues: tuple[CatalogIssue, ...] = tuple(issues)
        first = self.issues[0].render()
        more = len(self.issues) - 1
        super().__init__(first if more == 0 else f"{first} (and {more} more problem{'s' * (more > 1)})")

    def render(self) -> str:
        """Every issue, one per line."""
        return "\n".join(issue.render() for issue in self.issues)


def document_issue(message: str) -> CatalogIssue:
    """A problem with the document as a whole (not JSON, too big, unknown format, …)."""
    return CatalogIssue(entry=None, path="", message=message)


# --- translating pydantic's errors into catalogue issues -------------------------------------------------


Locator = Callable[[Sequence[PathPart]], tuple[Sequence[PathPart], str | None]]


def issues_from_validation_error(
    error: ValidationError,
    prefix: Sequence[PathPart] = (),
    entry: str | None = None,
    *,
    locate: Locator | None = None,
) -> list[CatalogIssue]:
    """Convert a pydantic ValidationError into issues.

    By default each error's location is appended to `prefix` and every issue names `entry`. When
    the validated value was assembled from several places (a list of entries pulled out of different
    wrappers, a whole `servers` mapping), `locate` maps pydantic's location to the real document path
    and the entry it belongs to.
    """
    return issues_from_error_details(error.errors(include_url=False), prefix, entry, locate=locate)


def issues_from_error_details(
    details: Iterable[ErrorDetails],
    prefix: Sequence[PathPart] = (),
    entry: str | None = None,
    *,
    locate: Locator | None = None,
) -> list[CatalogIssue]:
    """`issues_from_validation_error` for error details already taken out of their ValidationError."""
    issues: list[CatalogIssue] = []
    for detail in details:
        loc: list[PathPart] = [p if isinstance(p, int) else str(p) for p in detail["loc"]]
        is_key_error = bool(loc) and loc[-1] == "[key]"
        if is_key_error:
            # pydantic reports a bad mapping key as <mapping>.<key>.[key]; the key is the entry name.
            loc = loc[:-1]
        loc = _without_union_tags(loc)
        if locate is not None:
            parts, issue_entry = locate(loc)
        else:
            parts, issue_entry = [*prefix, *loc], entry
        message = validation_message(detail)
        if is_key_error:
            message = f"name {message}"
        issues.append(CatalogIssue(entry=issue_entry, path=format_path(parts), message=message))
    return issues


# pydantic puts the chosen member of a discriminated union into the location
# (`transport.sse.url`); the document has no such level, so it is dropped from paths.
_UNION_TAGS = frozenset({"stdio", "sse", "streamable-http", "positional", "named"})
_ARGUMENT_LISTS = frozenset({"packageArguments", "runtimeArguments"})


def _without_union_tags(loc: list[PathPart]) -> list[PathPart]:
    out: list[PathPart] = []
    for part in loc:
        if part in _UNION_TAGS and out:
            before = out[-1]
            if before == "transport" or (
                isinstance(before, int) and len(out) >= 2 and out[-2] in _ARGUMENT_LISTS
            ):
                continue
        out.append(part)
    return out


def validation_message(detail: ErrorDetails) -> str:
    """One pydantic error as a short phrase that follows its location (`must be at least 1 (got 0)`)."""
    kind = detail["type"]
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    value = detail.get("input")
    got = f" (got {show_value(value)})"
    simple = _SIMPLE_MESSAGES.get(kind)
    if simple is not None:
        return simple + (got if kind.endswith("_type") else "")
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}{got}"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern', '?')}{got}"
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} characters long{got}"
    if kind == "string_too_long":
        length = len(value) if isinstance(value, str) else "?"
        return f"must be at most {ctx.get('max_length')} characters long (got {length})"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s)"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        return f"must be {_BOUNDS[kind]} {bound}{got}"
    if kind == "union_tag_invalid":
        return f"type must be one of {ctx.get('expected_tags', '?')}{got.replace('got', 'got type')}"
    if kind == "union_tag_not_found":
        return f"is missing its discriminator field {ctx.get('discriminator', 'type')}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", detail["msg"]))
    msg = detail["msg"]
    return msg[:1].lower() + msg[1:]


_BOUNDS = {
    "greater_than_equal": "at least",
    "greater_than": "more than",
    "less_than_equal": "at most",
    "less_than": "less than",
}
_SIMPLE_MESSAGES: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a recognised field here",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}
