"""Choosing which servers of a catalogue to keep: name globs and tags, include and exclude.

Semantics (the same for names and for tags):
- an empty include list means "everything"; a non-empty one keeps only entries that match one of its
  patterns;
- an entry matching any exclude pattern is dropped, even when it also matches an include pattern
  (exclude wins);
- a server is kept only when both the name rules and the tag rules keep it.

A name pattern is matched against the full upstream name (`io.github.stacklok/fetch`) and against the
short name after the slash (`fetch`, which is also the ToolHive key), so `fetch`, `*-experimental` and
`io.github.acme/*` all do what they look like. A tag pattern is matched against each of the server's
tags. Patterns are shell-style globs, case-sensitive: `*` any run of characters, `?` one character,
`[abc]`/`[a-z]` one of a set, `[!abc]` one not in it. A malformed pattern is an error, never a silent
no-match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcpreg.catalog.errors import (
    CatalogError,
    CatalogIssue,
    PathPart,
    format_path,
    issues_from_validation_error,
)

MAX_PATTERN_LENGTH = 256
MAX_PATTERNS = 1000


class PatternLists(BaseModel):
    """`include` and `exclude` glob lists, as in the MCPRegistry spec."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    include: list[str] = Field(default_factory=list, max_length=MAX_PATTERNS)
    exclude: list[str] = Field(default_factory=list, max_length=MAX_PATTERNS)


class FilterSpec(BaseModel):
    """`spec.filter` of an MCPRegistry: `{names: {include, exclude}, tags: {include, exclude}}`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    names: PatternLists = Field(default_factory=PatternLists)
    tags: PatternLists = Field(default_factory=PatternLists)


def glob_to_regex(pattern: str, group_prefix: str = "g") -> str:
    """Translate one glob into an anchored regular expression; ValueError says what is wrong with it.

    Use the result with `re.match` (it ends in `\\Z`). Each `*` between literal chunks becomes an
    "atomic" scan for the chunk's first occurrence (a lookahead captured and replayed through a
    backreference), so matching never backtracks: a pattern like `*a*a*a*a*b` stays linear instead of
    taking exponential time. Taking the first occurrence is always right for globs, whose chunks
    have a fixed length. `group_prefix` keeps group names unique when several patterns are combined.
    """
    if not pattern:
        raise ValueError("is empty; use '*' to match everything")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"is longer than {MAX_PATTERN_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in pattern):
        raise ValueError(f"contains whitespace or control characters ({pattern!r})")
    chunks: list[list[str]] = [[]]  # literal runs between stars, as single-character regexes
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if chunks[-1] or len(chunks) == 1:
                chunks.append([])  # consecutive stars are one star
        elif ch == "?":
            chunks[-1].append(".")
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end == -1:
                raise ValueError(f"has an unclosed '[' at position {i + 1} ({pattern!r})")
            body = pattern[i + 1 : end]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            if not body:
                raise ValueError(f"has an empty character set '[]' ({pattern!r})")
            chunks[-1].append(f"[{'^' if negate else ''}{_class_members(body, pattern)}]")
            i = end
        elif ch == "]":
            raise ValueError(f"has a ']' without a matching '[' ({pattern!r})")
        else:
            chunks[-1].append(re.escape(ch))
        i += 1
    if len(chunks) == 1:
        return "".join(chunks[0]) + r"\Z"
    head, *middle, tail = ("".join(chunk) for chunk in chunks)
    out = [head]
    for index, chunk in enumerate(middle):
        if chunk:
            name = f"{group_prefix}{index}"
            out.append(f"(?=(?P<{name}>.*?{chunk}))(?P={name})")
    out.append(f".*{tail}\\Z")
    return "".join(out)


def _class_members(body: str, pattern: str) -> str:
    members: list[str] = []
    j = 0
    while j < len(body):
        if j + 2 < len(body) and body[j + 1] == "-":
            low, high = body[j], body[j + 2]
            if low > high:
                raise ValueError(f"has a reversed range '{low}-{high}' ({pattern!r})")
            members.append(f"{re.escape(low)}-{re.escape(high)}")
            j += 3
        else:
            members.append(re.escape(body[j]))
            j += 1
    return "".join(members)


def _compile_all(
    patterns: Sequence[str], where: tuple[PathPart, ...], issues: list[CatalogIssue]
) -> re.Pattern[str] | None:
    if not patterns:
        return None
    parts: list[str] = []
    for index, pattern in enumerate(patterns):
        try:
            parts.append(glob_to_regex(pattern, group_prefix=f"p{index}_"))
        except ValueError as exc:
            issues.append(
                CatalogIssue(entry=None, path=format_path([*where, index]), message=f"pattern {exc}")
            )
    if not parts:
        return None
    return re.compile("|".join(f"(?:{part})" for part in parts), re.DOTALL)


@dataclass(frozen=True, slots=True)
class CatalogFilter:
    """A compiled filter, ready to apply to many entries quickly."""

    spec: FilterSpec
    _include_names: re.Pattern[str] | None
    _exclude_names: re.Pattern[str] | None
    _include_tags: re.Pattern[str] | None
    _exclude_tags: re.Pattern[str] | None

    @property
    def is_everything(self) -> bool:
        """True when the filter keeps every entry (no patterns at all)."""
        return not (self._include_names or self._exclude_names or self._include_tags or self._exclude_tags)

    def keeps(self, name: str, tags: Iterable[str]) -> bool:
        """Whether an entry with this upstream `name` and these `tags` stays in the catalogue."""
        short = name.rsplit("/", 1)[-1]
        if self._include_names is not None and not (
            self._include_names.match(name) or self._include_names.match(short)
        ):
            return False
        if self._exclude_names is not None and (
            self._exclude_names.match(name) or self._exclude_names.match(short)
        ):
            return False
        if self._include_tags is None and self._exclude_tags is None:
            return True
        tag_list = tuple(tags)
        if self._include_tags is not None and not any(self._include_tags.match(tag) for tag in tag_list):
            return False
        return not (self._exclude_tags is not None and any(self._exclude_tags.match(tag) for tag in tag_list))


def compile_filter(spec: FilterSpec | Mapping[str, Any] | None, *, path: str = "filter") -> CatalogFilter:
    """Validate and compile a filter spec; raise CatalogError listing every bad pattern.

    `spec` may be a FilterSpec or the raw `spec.filter` mapping of an MCPRegistry (None = keep all).
    Issue paths start with `path` (`filter.names.include[0]: pattern has an unclosed '['`).
    """
    root: tuple[PathPart, ...] = tuple(path.split(".")) if path else ()
    if spec is None:
        spec = FilterSpec()
    elif not isinstance(spec, FilterSpec):
        try:
            spec = FilterSpec.model_validate(spec)
        except ValidationError as exc:
            raise CatalogError(issues_from_validation_error(exc, root, None)) from None
    issues: list[CatalogIssue] = []
    compiled = CatalogFilter(
        spec=spec,
        _include_names=_compile_all(spec.names.include, (*root, "names", "include"), issues),
        _exclude_names=_compile_all(spec.names.exclude, (*root, "names", "exclude"), issues),
        _include_tags=_compile_all(spec.tags.include, (*root, "tags", "include"), issues),
        _exclude_tags=_compile_all(spec.tags.exclude, (*root, "tags", "exclude"), issues),
    )
    if issues:
        raise CatalogError(issues)
    return compiled


def make_filter(
    *,
    include_names: Sequence[str] = (),
    exclude_names: Sequence[str] = (),
    include_tags: Sequence[str] = (),
    exclude_tags: Sequence[str] = (),
) -> CatalogFilter:
    """Convenience constructor from plain pattern lists."""
    return compile_filter(
        FilterSpec(
            names=PatternLists(include=list(include_names), exclude=list(exclude_names)),
            tags=PatternLists(include=list(include_tags), exclude=list(exclude_tags)),
        )
    )
