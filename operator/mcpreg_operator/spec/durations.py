"""Go-style durations (``30s``, ``5m``, ``1h30m``), as ``syncPolicy.interval`` holds them."""

from __future__ import annotations

import re
from fractions import Fraction

#: The unsigned subset of Go's ``time.ParseDuration`` the CRD accepts (its CEL rule uses it too).
GO_DURATION_RE = r"([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+"

_DURATION_UNITS: dict[str, Fraction] = {
    "ns": Fraction(1, 1_000_000_000),
    "us": Fraction(1, 1_000_000),
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}
_DURATION_PART = re.compile(r"([0-9]+(?:[.][0-9]+)?)(ns|us|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go-style duration such as ``30s``, ``5m``, ``1h30m``, ``1.5h`` or ``250ms``.

    Accepts the unsigned subset of Go's ``time.ParseDuration`` that the CRD accepts (no sign, no bare
    ``0``, no ``µs``). Raises ``ValueError`` for anything else. Each component is truncated to whole
    nanoseconds, as Go does, so comparisons with the bounds agree with the API server.
    """
    if re.fullmatch(GO_DURATION_RE, text) is None:
        raise ValueError(
            f"{text!r} is not a Go duration such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns)"
        )
    total = Fraction(0)
    for number, unit in _DURATION_PART.findall(text):
        nanos = int(Fraction(number) * _DURATION_UNITS[unit] * 1_000_000_000)
        total += Fraction(nanos, 1_000_000_000)
    return float(total)
