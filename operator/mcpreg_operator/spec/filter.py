"""``spec.filter``: which servers of the source catalogue are kept."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mcpreg_operator.spec.base import ResourceModel
from mcpreg_operator.spec.identity import MAX_FILTER_PATTERN_LENGTH, MAX_FILTER_PATTERNS

_FilterPattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_FILTER_PATTERN_LENGTH,
        description="A shell-style glob: * matches any run of characters, ? one character, [abc] a set.",
    ),
]


class GlobFilter(ResourceModel):
    """Include and exclude lists of shell-style globs (*, ?, [abc])."""

    include: list[_FilterPattern] = Field(
        default_factory=list,
        max_length=MAX_FILTER_PATTERNS,
        description=(
            "Keep only entries matching at least one of these globs. Empty or absent keeps everything."
        ),
    )
    exclude: list[_FilterPattern] = Field(
        default_factory=list,
        max_length=MAX_FILTER_PATTERNS,
        description="Drop entries matching any of these globs. Exclusion wins over inclusion.",
    )


class Filter(ResourceModel):
    """Which servers of the source catalogue are kept. Both filters must keep a server."""

    names: GlobFilter | None = Field(default=None, description="Globs matched against server names.")
    tags: GlobFilter | None = Field(
        default=None,
        description=(
            "Globs matched against server tags: include keeps a server with at least one matching tag, "
            "exclude drops a server with any matching tag."
        ),
    )
