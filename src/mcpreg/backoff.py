"""Retry delays, one rule for every retry in the product: exponential, capped, optionally jittered.

The operator's sync retries (no jitter: the delay is shown in status and must be predictable), the
storage readers' reconnects and the API loader's retries (jittered, so many replicas recovering at once
do not stampede the apiserver or S3) all take their delays from here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# 2**30 times any sane initial delay exceeds every cap; bounding the exponent keeps the power finite.
_MAX_EXPONENT = 30


def exponential(attempt: int, *, initial: float, maximum: float) -> float:
    """The delay before retry number `attempt` (1-based): initial, then doubling, up to `maximum`."""
    exponent = max(0, min(attempt - 1, _MAX_EXPONENT))
    return float(min(initial * float(2**exponent), maximum))


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential delays with ±`jitter` (a fraction) around each."""

    initial: float = 0.2
    maximum: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based)."""
        base = exponential(attempt, initial=self.initial, maximum=self.maximum)
        return base * (1 + random.uniform(-self.jitter, self.jitter))
