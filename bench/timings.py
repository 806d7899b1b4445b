"""Summaries of a benchmark's repeated timings."""

from __future__ import annotations

import statistics


def spread(seconds: list[float]) -> dict[str, float]:
    """How many rounds, and their median, p90 and maximum in seconds (to the millisecond); the p90 is
    the sorted value at index int(0.9 * (rounds - 1)), no interpolation."""
    ordered = sorted(seconds)
    return {
        "rounds": len(ordered),
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "max": round(ordered[-1], 3),
    }
