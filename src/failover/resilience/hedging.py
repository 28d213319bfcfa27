"""Hedged requests ("The Tail at Scale", gRPC hedging): when the first attempt has not answered
(or, for a stream, sent its first chunk) after `delay`, the same request starts on the next
candidate; the first success wins and the others are cancelled. Opt-in per route.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HedgePolicy"]


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """When to hedge. `delay` in seconds, or "p95" for the deployment's observed p95."""

    delay: float | str = "p95"
    max_hedges: int = 1  # extra attempts in flight at once, beyond the first
    budget: float = 0.1  # hedges may add at most this share of requests
    min_delay: float = 0.01  # never hedge sooner than this, whatever p95 says
    default_delay: float = 1.0  # p95 delay before enough latency samples exist
    min_samples: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.delay, str) and self.delay != "p95":
            raise ValueError('delay must be a duration or "p95"')
        if not isinstance(self.delay, str) and self.delay < 0:
            raise ValueError("delay must be >= 0")
        if self.max_hedges < 1:
            raise ValueError("max_hedges must be >= 1")
        if not 0 <= self.budget <= 10:
            raise ValueError("budget must be in [0, 1000%]")

    def delay_for(self, p95: float | None, samples: int) -> float:
        """The hedge delay given the primary's observed p95 (seconds) and sample count."""
        if not isinstance(self.delay, str):
            return self.delay
        if p95 is None or samples < self.min_samples:
            return self.default_delay
        return max(self.min_delay, p95)
