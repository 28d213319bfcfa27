"""Passive signals per deployment: latency and time-to-first-token EWMAs, a bounded window of
recent latencies for percentiles, recent outcomes for a success rate, calls in flight, and
what its streams were like (time to first content, longest silence) for learned limits.

`percentile` is the one percentile rule of the project (nearest rank): the router's p95, the
simulator's reports and charts, the demo's view and the benchmarks all use it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

__all__ = ["DeploymentStats", "Samples", "percentile"]


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile `q` (0..100) of `ordered` (sorted ascending), None when empty:
    the ceil(q/100 * n)-th smallest value, so always one of the values seen."""
    if not ordered:
        return None
    # q * n / 100, not q / 100 * n: 0.07 * 100 is 7.000000000000001, which would round up
    rank = max(1, math.ceil(q * len(ordered) / 100))
    return ordered[min(rank, len(ordered)) - 1]


class Samples:
    """The last `size` values of one quantity, with a p99 that is recomputed at most every
    `refresh` new values (a limit learned from it need not follow every sample)."""

    __slots__ = ("_fresh", "_p99", "_refresh", "_values")

    def __init__(self, size: int = 200, *, refresh: int = 10) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._refresh = refresh
        self._p99: float | None = None
        self._fresh = 0  # values added since the p99 was computed

    def add(self, value: float) -> None:
        self._values.append(value)
        self._fresh += 1

    def __len__(self) -> int:
        return len(self._values)

    @property
    def p99(self) -> float | None:
        if self._p99 is None or self._fresh >= self._refresh:
            self._p99 = percentile(sorted(self._values), 99)
            self._fresh = 0
        return self._p99


class DeploymentStats:
    """What routing strategies and hedging learn from recent calls. Bounded in memory."""

    __slots__ = (
        "_latencies",
        "_outcomes",
        "_p95_cache",
        "alpha",
        "first_content",
        "in_flight",
        "last_error",
        "latency_ewma",
        "name",
        "silences",
        "ttft_ewma",
    )

    def __init__(self, name: str, *, window: int = 200, alpha: float = 0.2) -> None:
        self.name = name
        self.alpha = alpha
        self.latency_ewma: float | None = None
        self.ttft_ewma: float | None = None
        self.in_flight = 0
        self.last_error: str | None = None
        self._latencies: deque[float] = deque(maxlen=window)
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._p95_cache: float | None = None
        self.first_content = Samples()  # streams: seconds to the first content
        self.silences = Samples()  # streams: the longest gap between two chunks of each

    def started(self) -> None:
        self.in_flight += 1

    def finished(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def observe(self, ok: bool, latency: float, ttft: float | None = None) -> None:
        """Record one finished call."""
        self._outcomes.append(ok)
        if not ok:
            return
        self._latencies.append(latency)
        self._p95_cache = None
        self.latency_ewma = self._blend(self.latency_ewma, latency)
        if ttft is not None:
            self.ttft_ewma = self._blend(self.ttft_ewma, ttft)

    def observe_stream(self, first_content: float, longest_silence: float) -> None:
        """Record how a stream that ended well paced its answer."""
        self.first_content.add(first_content)
        self.silences.add(longest_silence)

    def _blend(self, old: float | None, new: float) -> float:
        return new if old is None else old + self.alpha * (new - old)

    @property
    def samples(self) -> int:
        return len(self._latencies)

    def percentile(self, q: float) -> float | None:
        """Latency percentile `q` (0..100) of recent successful calls, nearest-rank."""
        return percentile(sorted(self._latencies), q)

    @property
    def p95(self) -> float | None:
        if self._p95_cache is None:
            self._p95_cache = self.percentile(95)
        return self._p95_cache

    @property
    def success_rate(self) -> float | None:
        if not self._outcomes:
            return None
        return sum(self._outcomes) / len(self._outcomes)

    def speed_key(self) -> float:
        """Sort key for least_latency: unmeasured deployments first, so they get measured."""
        if self.latency_ewma is None:
            return 0.0
        if self.ttft_ewma is not None:
            return (self.latency_ewma + self.ttft_ewma) / 2
        return self.latency_ewma

    def __repr__(self) -> str:
        ewma = f"{self.latency_ewma * 1000:.1f}ms" if self.latency_ewma is not None else "-"
        return f"<DeploymentStats {self.name} ewma={ewma} in_flight={self.in_flight}>"
