"""Go-style durations (``30s``, ``5m``, ``1h30m``), as ``syncPolicy.interval`` and the timeouts of the
HTTP sources hold them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pydantic import Field

from mcpreg_operator.spec.cel import CelRule, cel, cel_matches

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


def _describe_seconds(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class DurationSetting:
    """A Go duration field with a default and bounds in seconds: its schema (the bounds checked by a CEL
    rule at admission) and its value in seconds."""

    name: str  # as the CRD spells it, for the rule's message
    default: str
    min_s: int
    max_s: int

    def field(self, what: str) -> Any:
        low, high = _describe_seconds(self.min_s), _describe_seconds(self.max_s)
        return Field(
            default=self.default,
            min_length=1,
            max_length=32,
            description=f"{what}, a Go duration ({low} to {high}; default {self.default}).",
            json_schema_extra=cel(
                CelRule(
                    rule=(
                        cel_matches("self", GO_DURATION_RE)
                        + f" && duration(self) >= duration('{self.min_s}s')"
                        + f" && duration(self) <= duration('{self.max_s}s')"
                    ),
                    message=f"{self.name} must be a Go duration from {low} to {high}, such as {self.default}",
                    reason="FieldValueInvalid",
                )
            ),
        )

    def seconds(self, text: str) -> float:
        """The seconds of a duration the CRD admitted, held inside the bounds whatever admitted it."""
        return min(float(self.max_s), max(float(self.min_s), parse_go_duration(text)))
