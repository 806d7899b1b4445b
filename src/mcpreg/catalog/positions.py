"""Line and column of JSON paths in a document's text, for messages a person can jump to.

The standard json module keeps no positions, so this walks the text itself, but only along the paths
it is asked about: at each object or list on the way it reads keys one by one and skips every other
member with the C scanner of the json module (one call per skipped value), so locating a hundred
paths in a 10,000-entry catalogue costs about one extra decode, and nothing when nothing is asked.

    index = PositionIndex(text)
    index.locate_all(["servers.fetch.tier", "data.servers[3]"])   # {path: (line, column)}, 1-based

A path that does not exist in the text (a missing field) is placed at its nearest existing ancestor.
Columns count characters, as editors and GitHub annotations do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mcpreg.catalog.errors import PathPart
from mcpreg.catalog.gcpause import collector_paused

Position = tuple[int, int]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_QUOTED_PART = re.compile(r'\["((?:[^"\\]|\\.)*)"\]')
_INDEX_PART = re.compile(r"\[(\d+)\]")
_PLAIN_PART = re.compile(r"\.?([A-Za-z_$][A-Za-z0-9_$-]*)")
_UTF8_BOM = "\ufeff"

# The json module's own scanners: one value, or one string, from a position (C when available).
_DECODER = json.JSONDecoder()
# (The type stubs do not describe these attributes; the json module has had them since Python 2.6.)
_SCAN_VALUE: Callable[[str, int], tuple[object, int]] = getattr(_DECODER, "scan_once")  # noqa: B009
_SCAN_STRING: Callable[[str, int], tuple[str, int]] = getattr(_DECODER, "parse_string")  # noqa: B009


def parse_path(path: str) -> list[PathPart]:
    """The parts of a path rendered by `format_path` (`servers.fetch.env_vars[0]` → servers, fetch, …)."""
    parts: list[PathPart] = []
    position = 0
    while position < len(path):
        for pattern in (_QUOTED_PART, _INDEX_PART, _PLAIN_PART):
            match = pattern.match(path, position)
            if match is not None and (pattern is not _PLAIN_PART or position == 0 or path[position] == "."):
                break
        else:
            raise ValueError(f"not a JSON path as format_path writes them: {path!r}")
        text = match.group(1)
        if pattern is _INDEX_PART:
            parts.append(int(text))
        elif pattern is _QUOTED_PART:
            parts.append(text.replace('\\"', '"').replace("\\\\", "\\"))
        else:
            parts.append(text)
        position = match.end()
    return parts


@dataclass(frozen=True, slots=True)
class _Wanted:
    prefixes: set[tuple[PathPart, ...]]
    inner: set[tuple[PathPart, ...]]


class PositionIndex:
    """Positions of paths in one JSON text (which must be valid JSON)."""

    def __init__(self, text: str) -> None:
        self._offset_base = 1 if text.startswith(_UTF8_BOM) else 0
        self._text = text

    def locate(self, path: str) -> Position:
        return self.locate_all([path])[path]

    def locate_all(self, paths: Iterable[str]) -> dict[str, Position]:
        """Line and column (1-based) of each rendered path; unparseable paths sit at the document."""
        wanted: dict[str, list[PathPart]] = {}
        for path in paths:
            try:
                wanted[path] = parse_path(path)
            except ValueError:
                wanted[path] = []
        offsets = self._offsets({tuple(parts) for parts in wanted.values()})
        positions = self._line_columns(set(offsets.values()))
        return {path: positions[offsets[tuple(parts)]] for path, parts in wanted.items()}

    # --- the walk ----------------------------------------------------------------------------------------

    def _offsets(self, targets: set[tuple[PathPart, ...]]) -> dict[tuple[PathPart, ...], int]:
        """The offset of each target path (or of its nearest existing ancestor)."""
        # Paths to record, and the (strictly shorter) paths to descend into on the way to them.
        prefixes: set[tuple[PathPart, ...]] = set()
        inner: set[tuple[PathPart, ...]] = set()
        for target in targets:
            prefixes.update(target[:length] for length in range(len(target) + 1))
            inner.update(target[:length] for length in range(len(target)))
        found: dict[tuple[PathPart, ...], int] = {}
        start = self._skip_space(self._offset_base)
        if () in inner:
            with collector_paused():  # skipped values are decoded and dropped by the hundred thousand
                self._walk(start, start, (), _Wanted(prefixes, inner), found)
        else:  # only the document itself (or nothing) asked about: no need to read it
            found[()] = start
        result: dict[tuple[PathPart, ...], int] = {}
        for target in targets:
            length = len(target)
            while target[:length] not in found:
                length -= 1
            result[target] = found[target[:length]]
        return result

    def _walk(
        self,
        value_at: int,
        shown_at: int,
        path: tuple[PathPart, ...],
        wanted: _Wanted,
        found: dict[tuple[PathPart, ...], int],
    ) -> int:
        """Record `path` (at `shown_at`), descend where a wanted path continues; return the value's end."""
        found[path] = shown_at
        text = self._text
        opener = text[value_at : value_at + 1]
        if opener not in ("{", "[") or path not in wanted.inner:
            return self._skip_value(value_at)
        position = self._skip_space(value_at + 1)
        closer = "}" if opener == "{" else "]"
        index = 0
        while text[position] != closer:
            if opener == "{":
                key_at = position
                key, position = _SCAN_STRING(text, position + 1)
                position = self._skip_space(position)
                position = self._skip_space(position + 1)  # the colon
                child: PathPart = key
                shown = key_at
            else:
                child = index
                shown = position
                index += 1
            child_path = (*path, child)
            if child_path in wanted.prefixes:
                position = self._walk(position, shown, child_path, wanted, found)
            else:
                position = self._skip_value(position)
            position = self._skip_space(position)
            if text[position] == ",":
                position = self._skip_space(position + 1)
        return position + 1

    def _skip_value(self, position: int) -> int:
        _value, end = _SCAN_VALUE(self._text, position)
        return int(end)

    def _skip_space(self, position: int) -> int:
        match = _WHITESPACE.match(self._text, position)
        return match.end() if match is not None else position

    def _line_columns(self, offsets: set[int]) -> dict[int, Position]:
        """Line and column of each offset, counting newlines between sorted offsets (in C, by str.count)."""
        text = self._text
        positions: dict[int, Position] = {}
        line, counted_to = 1, 0
        for offset in sorted(offsets):
            line += text.count("\n", counted_to, offset)
            counted_to = offset
            line_start = text.rfind("\n", 0, offset) + 1
            column = offset - line_start + 1 - (self._offset_base if line == 1 else 0)
            positions[offset] = (line, column)
        return positions
