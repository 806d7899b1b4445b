"""When to sync next: the interval after a success, exponential backoff (`mcpreg.backoff`) after failures."""

from __future__ import annotations

from datetime import datetime, timedelta

from mcpreg.backoff import exponential

FIRST_RETRY_S = 5.0
# With no interval (manual syncing only) failures are still retried, at most this far apart.
MANUAL_ONLY_RETRY_CAP_S = 600.0


def retry_delay(attempt_count: int, interval_s: float | None) -> float:
    """Seconds to wait before retrying after `attempt_count` consecutive failures (>= 1).

    5 s, 10 s, 20 s, … doubling, capped by the sync interval (a retry never waits longer than a
    regular sync would) or, without an interval, by ten minutes.
    """
    cap = interval_s if interval_s else MANUAL_ONLY_RETRY_CAP_S
    return exponential(attempt_count, initial=FIRST_RETRY_S, maximum=cap)


def next_due(
    *,
    now: datetime,
    last_success: datetime | None,
    last_attempt: datetime | None,
    attempt_count: int,
    interval_s: float | None,
    source_failures: int = 0,
) -> datetime | None:
    """The next time a sync is due without anyone asking; None means only on request.

    `source_failures`: after a sync that succeeded with some of its sources failing, the most
    consecutive failures of one of them; they are retried on the same backoff as a failed sync."""
    failures = attempt_count or source_failures
    if failures > 0 and last_attempt is not None:
        return last_attempt + timedelta(seconds=retry_delay(failures, interval_s))
    if interval_s and last_success is not None:
        return last_success + timedelta(seconds=interval_s)
    if interval_s:
        return now
    return None
