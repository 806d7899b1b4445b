"""``spec.validation``: what a sync does with catalogue entries that cannot be served (issue 14)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mcpreg_operator.spec.base import JsonInt32, ResourceModel

#: Default of ``maxSkippedPercent``: a sync that would drop more than half the entries is refused.
DEFAULT_MAX_SKIPPED_PERCENT = 50


#: What a sync does with an entry that has an error.
OnInvalidEntry = StrEnum("OnInvalidEntry", {"SKIP": "Skip", "REJECT": "Reject"})


class Validation(ResourceModel):
    """How strictly a sync treats entries that cannot be served (an image-less server, a value of the
    wrong type, an invalid or duplicate name, a transport ToolHive cannot run). Problems with the
    document as a whole (not UTF-8, not JSON, an unknown shape, over the size limits) always fail the
    sync, whatever is set here; warnings (legacy shapes normalised) never do."""

    on_invalid_entry: OnInvalidEntry = Field(
        default=OnInvalidEntry.SKIP,
        description=(
            "Skip: an invalid entry is left out and the rest is stored and served; the sync succeeds, "
            "and status (syncStatus.skippedCount, the DataValid condition, a Warning Event) names what "
            "was left out. Reject: any invalid entry fails the sync, and the last good catalogue stays "
            "served."
        ),
    )
    max_skipped_percent: JsonInt32 = Field(
        default=DEFAULT_MAX_SKIPPED_PERCENT,
        ge=0,
        le=100,
        description=(
            "With Skip, the largest share of the document's entries (0 to 100 percent) that a sync may "
            "leave out; a sync that would skip more fails with reason TooManyEntriesSkipped and the "
            "last good catalogue stays served, so that a broken file cannot silently shrink the "
            "catalogue. A sync that would leave no server at all always fails (reason "
            "NoValidEntries). 0 refuses any skipped entry, like Reject but with its own reason."
        ),
    )
