"""``spec.syncPolicy``: when the operator syncs on its own."""

from __future__ import annotations

from pydantic import Field

from mcpreg_operator.spec.base import ResourceModel
from mcpreg_operator.spec.cel import CelRule, cel, cel_matches
from mcpreg_operator.spec.durations import GO_DURATION_RE, parse_go_duration
from mcpreg_operator.spec.identity import MAX_SYNC_INTERVAL_SECONDS, MIN_SYNC_INTERVAL_SECONDS

_INTERVAL_FORMAT_MESSAGE = (
    "interval must be a Go duration such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns)"
)
_INTERVAL_BOUNDS_MESSAGE = (
    f"interval must be at least {MIN_SYNC_INTERVAL_SECONDS}s and at most {MAX_SYNC_INTERVAL_SECONDS // 3600}h"
)


class SyncPolicy(ResourceModel):
    """When the operator syncs on its own, besides creation, spec changes and manual triggers."""

    interval: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description=(
            "Time between automatic syncs, a Go duration such as 30s, 5m or 1h30m "
            f"(units h, m, s, ms, us, ns; {MIN_SYNC_INTERVAL_SECONDS}s to "
            f"{MAX_SYNC_INTERVAL_SECONDS // 3600}h). Each one first checks cheaply whether the source "
            "changed. Omit for manual-only syncing."
        ),
        json_schema_extra=cel(
            CelRule(
                rule=cel_matches("self", GO_DURATION_RE),
                message=_INTERVAL_FORMAT_MESSAGE,
                reason="FieldValueInvalid",
            ),
            # Guarded by the format check so an unparsable value yields one clear message, not an
            # evaluation error from duration().
            CelRule(
                rule=(
                    "!"
                    + cel_matches("self", GO_DURATION_RE)
                    + f" || (duration(self) >= duration('{MIN_SYNC_INTERVAL_SECONDS}s')"
                    + f" && duration(self) <= duration('{MAX_SYNC_INTERVAL_SECONDS // 3600}h'))"
                ),
                message=_INTERVAL_BOUNDS_MESSAGE,
                reason="FieldValueInvalid",
            ),
        ),
    )

    @property
    def interval_seconds(self) -> float | None:
        """The interval in seconds, or None for manual-only syncing.

        Never below the minimum, even if a CRD without that bound admitted a shorter one: polling
        faster would turn the operator into a load generator for the source.
        """
        if self.interval is None:
            return None
        return max(float(MIN_SYNC_INTERVAL_SECONDS), parse_go_duration(self.interval))
