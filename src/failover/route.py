"""A route: the deployments behind one model name, how to order them, and where to fall back."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .config import Timeouts
from .resilience.breaker import BreakerPolicy
from .resilience.hedging import HedgePolicy
from .resilience.retry import RetryBudget, RetryPolicy
from .resilience.strategies import Strategy, strategy_named
from .stats import DeploymentStats
from .types import DeploymentLike

__all__ = ["Plan", "Route", "Slot"]


class Route:
    """Deployments answering for one name, with a strategy and fallbacks to other routes.

    Policies left as None are taken from the router's defaults.
    """

    def __init__(
        self,
        deployments: Sequence[DeploymentLike],
        *,
        strategy: str | Strategy = "priority",
        fallbacks: Sequence[str] = (),
        context_window_fallbacks: Sequence[str] = (),
        content_filter_fallbacks: Sequence[str] = (),
        hedge: HedgePolicy | None = None,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        timeouts: Timeouts | None = None,
        panic: bool | str = True,
    ) -> None:
        if not deployments:
            raise ValueError("a route needs at least one deployment")
        names = [d.name for d in deployments]
        if len(set(names)) != len(names):
            raise ValueError(f"deployment names must be unique in a route: {names}")
        self.deployments = list(deployments)
        self.strategy = strategy
        self.fallbacks = list(fallbacks)
        self.context_window_fallbacks = list(context_window_fallbacks)
        self.content_filter_fallbacks = list(content_filter_fallbacks)
        self.hedge = hedge
        self.retry = retry
        self.breaker = breaker
        self.timeouts = timeouts
        self.panic = panic

    def __repr__(self) -> str:
        names = ", ".join(d.name for d in self.deployments)
        return f"<Route [{names}] strategy={self.strategy!r}>"


@dataclass(slots=True)
class Slot:
    """A deployment as a member of a route."""

    name: str
    deployment: DeploymentLike
    weight: float
    timeout: float | None


@dataclass(slots=True)
class Plan:
    """A route compiled against the router's defaults: everything one request needs."""

    name: str
    slots: list[Slot]
    strategy: Strategy
    fallbacks: list[str]
    context_window_fallbacks: list[str]
    content_filter_fallbacks: list[str]
    hedge: HedgePolicy | None
    retry: RetryPolicy
    breaker: BreakerPolicy
    timeouts: Timeouts
    panic: str  # "health", "all" or "off"
    budget: RetryBudget
    hedge_budget: RetryBudget | None

    def ordered(self, stats: Callable[[str], DeploymentStats]) -> list[Slot]:
        return self.strategy(self.slots, stats)


def slot_of(deployment: DeploymentLike) -> Slot:
    weight = getattr(deployment, "weight", 1.0)
    timeout = getattr(deployment, "timeout", None)
    return Slot(deployment.name, deployment, float(weight), timeout)


def resolve_strategy(strategy: str | Strategy, rng: random.Random) -> Strategy:
    return strategy_named(strategy, rng=rng) if isinstance(strategy, str) else strategy
