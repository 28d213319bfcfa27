"""Service level objectives of a route (`routes.<name>.slo`, `defaults.slo`): how available
and how fast its answers must be, over which rolling window.

They change nothing the router does. The gateway exports them as gauges beside the counts and
latencies they are measured by, so the alert rules and the dashboard in `deploy/` read every
number from `/metrics` (see docs/observability.md#slos).
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .base import Duration, Rate, StrictModel, parse_duration

__all__ = [
    "QUANTILES",
    "SLO_WINDOWS",
    "LatencyObjectives",
    "SloConfig",
    "SloWindow",
    "parse_window",
]

# field of `latency` -> the quantile it bounds (the `quantile` label of the exported gauge)
QUANTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}

DAY = 86400.0
# The rolling windows deploy/prometheus/alerts.yaml records an error ratio for: PromQL ranges
# are fixed in the rule text, so a window outside this set would have no error budget to show.
SLO_WINDOWS: dict[str, float] = {"7d": 7 * DAY, "14d": 14 * DAY, "28d": 28 * DAY, "30d": 30 * DAY}

_DAYS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|w)\s*$")


def parse_window(value: Any) -> float:
    """Seconds from 30d / 4w (or any duration), if it is one of `SLO_WINDOWS`."""
    if isinstance(value, str) and (m := _DAYS.match(value)):
        seconds = float(m[1]) * DAY * (7 if m[2] == "w" else 1)
    else:
        seconds = parse_duration(value)
    if seconds not in SLO_WINDOWS.values():
        known = ", ".join(SLO_WINDOWS)
        raise ValueError(f"an SLO window must be one of {known} (the windows the rules record)")
    return seconds


SloWindow = Annotated[float, BeforeValidator(parse_window)]


class LatencyObjectives(StrictModel):
    """Latency objectives: `p99: 2s` asks that 99% of answered requests take at most 2s."""

    p50: Duration | None = Field(None, gt=0)
    p90: Duration | None = Field(None, gt=0)
    p95: Duration | None = Field(None, gt=0)
    p99: Duration | None = Field(None, gt=0)
    p999: Duration | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LatencyObjectives:
        bounds = self.objectives()
        if not bounds:
            raise ValueError(f"name at least one objective: {', '.join(QUANTILES)}")
        names = {q: name for name, q in QUANTILES.items()}
        pairs = sorted(bounds.items())
        for (low_q, low), (high_q, high) in itertools.pairwise(pairs):
            if low > high:
                raise ValueError(
                    f"{names[low_q]} ({low:g}s) is longer than {names[high_q]} ({high:g}s): "
                    "a higher quantile cannot be faster"
                )
        return self

    def objectives(self) -> dict[float, float]:
        """Quantile -> the longest latency it allows, in seconds, for the objectives set."""
        return {
            q: seconds
            for name, q in QUANTILES.items()
            if (seconds := getattr(self, name)) is not None
        }


class SloConfig(StrictModel):
    """A route's objectives: availability (answered / valid requests) and latency, over `window`."""

    availability: Rate | None = None
    latency: LatencyObjectives | None = None
    window: SloWindow = SLO_WINDOWS["30d"]

    @field_validator("availability")
    @classmethod
    def _below_100(cls, value: float | None) -> float | None:
        if value is not None and value >= 1:
            raise ValueError("100% leaves no error budget: use 99.9% or similar")
        if value is not None and value <= 0:
            raise ValueError("must be above 0%")
        # 99.9% parses as 0.9990000000000001: export the number people wrote
        return None if value is None else round(value, 9)

    @property
    def error_budget(self) -> float | None:
        """The share of valid requests allowed to fail (1 - availability), if one is set."""
        return None if self.availability is None else 1 - self.availability
