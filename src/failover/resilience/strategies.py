"""Candidate ordering: which deployment of a route to try first, second, ...

A strategy is any callable `(candidates, stats, state) -> ordered list`; the built-ins are
`priority` (the order written), `round_robin`, `weighted` (random, by weight), `least_latency`
(EWMA of latency and time-to-first-token) and `least_busy` (fewest calls in flight).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, TypeVar, get_args

from ..stats import DeploymentStats

__all__ = [
    "STRATEGIES",
    "STRATEGY_NAMES",
    "Candidate",
    "LeastBusy",
    "LeastLatency",
    "Priority",
    "RoundRobin",
    "Strategy",
    "StrategyName",
    "Weighted",
    "strategy_named",
]

# The one list of built-in strategy names: the config schema and `failover explain` use it.
StrategyName = Literal["priority", "round_robin", "weighted", "least_latency", "least_busy"]
STRATEGY_NAMES: tuple[StrategyName, ...] = get_args(StrategyName)


class Candidate(Protocol):
    """What strategies see of a deployment."""

    @property
    def name(self) -> str: ...

    @property
    def weight(self) -> float: ...


C = TypeVar("C", bound=Candidate)
StatsOf = Callable[[str], DeploymentStats]


class Strategy(Protocol):
    """Orders a route's candidates for one request."""

    def __call__(self, candidates: Sequence[C], stats: StatsOf) -> list[C]: ...


class Priority:
    """The order written in the config: a fallback chain."""

    def __call__(self, candidates: Sequence[C], stats: StatsOf) -> list[C]:
        return list(candidates)


class RoundRobin:
    """Each request starts one further along the list; the rest follow in order."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def __call__(self, candidates: Sequence[C], stats: StatsOf) -> list[C]:
        if not candidates:
            return []
        start = next(self._counter) % len(candidates)
        return [*candidates[start:], *candidates[:start]]


class Weighted:
    """Random order, each position drawn in proportion to weight (without replacement)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def __call__(self, candidates: Sequence[C], stats: StatsOf) -> list[C]:
        # Efraimidis-Spirakis: key = u ** (1 / w); sort descending. Weight 0 goes last.
        rng = self._rng

        def key(c: C) -> float:
            return rng.random() ** (1.0 / c.weight) if c.weight > 0 else -1.0

        return sorted(candidates, key=key, reverse=True)


class LeastLatency:
    """Fastest recent EWMA first; deployments not yet measured go first to get measured."""

    def __call__(self, candidates: Sequence[C], stats: StatsOf) -> list[C]:
        return sorted(candidates, key=lambda c: stats(c.name).speed_key())


class LeastBusy:
    """Fewest calls in flight first; ties keep the written order."""

    def __call__(self, candidates: Sequence[C], stats: StatsOf) -> list[C]:
        return sorted(candidates, key=lambda c: stats(c.name).in_flight)


STRATEGIES: dict[StrategyName, Callable[[], Strategy]] = {
    "priority": Priority,
    "round_robin": RoundRobin,
    "weighted": Weighted,
    "least_latency": LeastLatency,
    "least_busy": LeastBusy,
}


def strategy_named(name: str, *, rng: random.Random | None = None) -> Strategy:
    """A fresh strategy object for `name`; ValueError names the choices."""
    if name == "weighted":
        return Weighted(rng)
    if name not in STRATEGY_NAMES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGY_NAMES)}")
    return STRATEGIES[name]()
