"""Retries: full-jitter exponential backoff, Retry-After handling, and a retry budget.

Backoff is AWS's "full jitter": sleep = uniform(0, min(max_backoff, base * 2**n)).
The budget is a token bucket in the spirit of gRPC's retry throttling and Envoy's retry budgets:
every request deposits `ratio` tokens, every retry (or hedge) spends one, and a floor of
`min_per_second` keeps low-traffic routes able to retry. During an outage the bucket empties
and retries stop, so failures fail over instead of multiplying load on a dying provider.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..clock import Clock, SystemClock

__all__ = ["RetryBudget", "RetryPolicy", "backoff"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one deployment is retried. Durations in seconds."""

    attempts: int = 2  # calls per deployment per request, the first included
    base: float = 0.2
    max_backoff: float = 5.0
    retry_after_max: float = 30.0  # longer Retry-After: fail over instead of waiting
    cooldown: float = 1.0  # rate-limit cool-down when the provider gave no Retry-After
    budget: float = 0.2  # retries may add at most this share of requests...
    budget_min_per_second: float = 1.0  # ...plus this many per second, whatever the traffic
    budget_burst: float = 10.0

    def __post_init__(self) -> None:
        checks = (
            (self.attempts >= 1, "attempts must be >= 1"),
            (self.base >= 0, "base must be >= 0"),
            (self.max_backoff >= self.base, "max_backoff must be >= base"),
            (self.retry_after_max >= 0, "retry_after_max must be >= 0"),
            (self.cooldown >= 0, "cooldown must be >= 0"),
            (0 <= self.budget <= 10, "budget must be in [0, 1000%]"),
            (self.budget_min_per_second >= 0, "budget_min_per_second must be >= 0"),
            (self.budget_burst >= 1, "budget_burst must be >= 1"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def backoff(policy: RetryPolicy, retry: int, rng: random.Random) -> float:
    """Seconds to sleep before retry number `retry` (0 for the first retry)."""
    ceiling = min(policy.max_backoff, policy.base * 2 ** min(retry, 62))
    return rng.uniform(0.0, ceiling)


class RetryBudget:
    """A token bucket shared by the requests of one route: `spend` says if a retry may go."""

    __slots__ = ("_clock", "_last", "_tokens", "burst", "min_per_second", "name", "ratio")

    def __init__(
        self,
        name: str,
        *,
        ratio: float,
        min_per_second: float = 1.0,
        burst: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.burst = burst
        self._clock = clock or SystemClock()
        self._tokens = burst
        self._last = self._clock.now()

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def deposit(self) -> None:
        """A request arrived: it earns the route `ratio` of a retry."""
        self._tokens = min(self.burst, self._tokens + self.ratio)

    def spend(self) -> bool:
        """Take one retry's worth of tokens if there is one."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = now - self._last
        self._last = now
        if elapsed > 0 and self.min_per_second:
            self._tokens = min(self.burst, self._tokens + elapsed * self.min_per_second)

    def __repr__(self) -> str:
        return f"<RetryBudget {self.name} {self.tokens:.1f}/{self.burst:g} tokens>"
