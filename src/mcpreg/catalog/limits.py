"""Bounds on what a catalogue may contain, so that hostile or broken input fails fast and clearly.

Catalogue files come from repositories and ConfigMaps that other people write. Without bounds a
single file could exhaust the operator's memory (a huge document, millions of entries, a gigabyte
string) or its stack (nesting thousands of levels deep). Each bound is checked before the expensive
work it protects, and breaking one is reported as an ordinary catalogue problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

MIB = 1024 * 1024

DEFAULT_MAX_BYTES = 50 * MIB
DEFAULT_MAX_ENTRIES = 50_000
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_STRING_LENGTH = 1 * MIB
# How much deeper a canonical document nests than the source it came from (at most 6 levels today).
CANONICAL_EXTRA_DEPTH = 16


@dataclass(frozen=True, slots=True)
class CatalogLimits:
    """Configurable input bounds; the defaults suit catalogues far larger than any public one.

    max_bytes: size of the raw document (default 50 MiB).
    max_entries: server entries (container, remote or upstream versions, groups included).
    max_depth: nesting of JSON objects and arrays anywhere in the document.
    max_string_length: characters in any single JSON string (keys included).
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_depth: int = DEFAULT_MAX_DEPTH
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_entries", "max_depth", "max_string_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer")

    def for_canonical_form(self) -> CatalogLimits:
        """The limits for reading back a catalogue's own canonical form.

        The canonical form of an accepted catalogue is bigger and deeper than its source (ToolHive
        fields move under `_meta`, a server.json is added per server), so reading it with the same limits
        could refuse what was accepted a moment before. The allowance is bounded: twice the size and
        sixteen more levels; the entry count and string length do not grow.
        """
        return dataclasses.replace(
            self, max_bytes=self.max_bytes * 2, max_depth=self.max_depth + CANONICAL_EXTRA_DEPTH
        )


DEFAULT_LIMITS = CatalogLimits()


def describe_bytes(size: int) -> str:
    """Human-friendly size for messages: `50 MiB`, `812 KiB`, `17 bytes`."""
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MiB"
    if size >= MIB:
        return f"{size / MIB:.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"
