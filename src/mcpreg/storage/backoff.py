"""Retry delays: exponential with jitter, so many readers recovering at once do not stampede."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 0.2
    maximum: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based)."""
        base = min(self.maximum, self.initial * (2.0 ** max(0, attempt - 1)))
        return base * (1 + random.uniform(-self.jitter, self.jitter))
