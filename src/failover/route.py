"""A route: the deployments behind one model name, how to order them, and where to fall back.

`Route` is what users write; `Plan` is a route compiled against the router's defaults and
state store, holding everything one request through it needs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .config import Timeouts
from .kinds import Failover
from .quota import QuotaPolicy
from .resilience.breaker import BreakerPolicy
from .resilience.hedging import HedgePolicy
from .resilience.panic import Panic
from .resilience.retry import RetryBudget, RetryPolicy
from .resilience.strategies import Strategy, strategy_named
from .resilience.streams import StreamPolicy
from .stats import DeploymentStats
from .types import BaseDeployment

__all__ = [
    "Plan",
    "Route",
    "Slot",
    "resolve_strategy",
]


class Route:
    """Deployments answering for one name, with a strategy and fallbacks to other routes.

    Policies left as None are taken from the router's defaults.
    """

    def __init__(
        self,
        deployments: Sequence[BaseDeployment],
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
        streams: StreamPolicy | None = None,
    ) -> None:
        if not deployments:
            raise ValueError("a route needs at least one deployment")
        for deployment in deployments:
            if not isinstance(deployment, BaseDeployment):
                raise TypeError(
                    f"{deployment!r} is not a deployment: wrap callables in failover.Deployment "
                    "or subclass failover.BaseDeployment"
                )
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
        self.panic = Panic.parse(panic)
        self.streams = streams

    def __repr__(self) -> str:
        names = ", ".join(d.name for d in self.deployments)
        return f"<Route [{names}] strategy={self.strategy!r}>"


@dataclass(slots=True)
class Slot:
    """A deployment as a member of a route."""

    name: str
    deployment: BaseDeployment
    weight: float
    timeout: float | None
    quota: QuotaPolicy  # its configured rpm / tpm, made once

    @classmethod
    def of(cls, deployment: BaseDeployment) -> Slot:
        quota = QuotaPolicy(rpm=deployment.rpm, tpm=deployment.tpm)
        return cls(deployment.name, deployment, float(deployment.weight), deployment.timeout, quota)


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
    panic: Panic
    streams: StreamPolicy
    budget: RetryBudget
    hedge_budget: RetryBudget | None

    def ordered(self, stats: Callable[[str], DeploymentStats]) -> list[Slot]:
        """The candidates in the order this request tries them."""
        return self.strategy(self.slots, stats)

    def fallbacks_for(self, failover: Failover) -> list[str]:
        """The routes a failure that fails over this way continues with."""
        if failover is Failover.NEXT:
            return self.fallbacks
        if failover is Failover.CONTEXT_WINDOW:
            return self.context_window_fallbacks
        if failover is Failover.CONTENT_FILTER:
            return self.content_filter_fallbacks
        return []

    def targets(self) -> list[str]:
        """Every route this one may fall back to, for any reason."""
        return [*self.fallbacks, *self.context_window_fallbacks, *self.content_filter_fallbacks]


def resolve_strategy(strategy: str | Strategy, rng: random.Random) -> Strategy:
    """A strategy object from its name, or the object itself."""
    return strategy_named(strategy, rng=rng) if isinstance(strategy, str) else strategy
