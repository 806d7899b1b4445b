"""``spec.sources``: several named sources merged into one catalogue (issue 15).

Each item is a ``Source`` (the same fields and rules as ``spec.source``) with a ``name`` and an
optional ``filter`` of its own. Entries are merged by server name in list order: the first source
that has a name wins it, and later sources' entries of that name are reported as conflicts. The
registry-wide ``spec.filter`` applies to the merged catalogue.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mcpreg_operator.spec.filter import Filter
from mcpreg_operator.spec.identity import DNS1123_LABEL_MAX_LENGTH, DNS1123_LABEL_PATTERN
from mcpreg_operator.spec.source import Source

MAX_SOURCES = 16


class NamedSource(Source):
    """One source of a registry that merges several, in priority order."""

    name: str = Field(
        min_length=1,
        max_length=DNS1123_LABEL_MAX_LENGTH,
        pattern=DNS1123_LABEL_PATTERN,
        description=(
            "Name of the source, unique in the list (a DNS-1123 label): status.sources and the "
            "conditions name it, and every served entry records it under "
            "_meta['dev.mcpregistry/source']."
        ),
    )
    filter: Filter | None = Field(
        default=None,
        description=(
            "Which servers of this source are kept, before the merge. Omit to keep all of them; "
            "spec.filter then applies to the merged catalogue."
        ),
    )


def sources_field() -> Any:
    """The ``spec.sources`` field: ordered, keyed by name (a list-map, so a patch merges by name)."""
    return Field(
        default=None,
        min_length=1,
        max_length=MAX_SOURCES,
        description=(
            "Several sources merged into one catalogue, in priority order: when two sources have a "
            "server of the same name, the first one's entries are served and the conflict is reported "
            "(status.conflicts, Event NameConflicts). A failing source keeps serving its last good "
            "entries. Exactly one of source and sources must be set."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
