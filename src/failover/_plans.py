"""The router's registry: every route compiled into a `Plan`, and single deployments by name.

A client may address one deployment directly as `provider/model`; the resolver builds it and
it gets a one-deployment plan of its own. Those names are the client's choice, so their number
is bounded.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from .config import Timeouts
from .errors import UnknownRoute
from .resilience.breaker import BreakerPolicy
from .resilience.retry import RetryBudget, RetryPolicy
from .resilience.streams import StreamPolicy
from .route import Plan, Route, Slot, resolve_strategy
from .state.base import BreakerLike, StateStore
from .types import BaseDeployment

__all__ = ["MAX_SINGLE_PLANS", "Plans"]

MAX_SINGLE_PLANS = 256  # deployments addressed directly by `provider/model`


class Plans:
    """Compiled routes by name, with the router's default policies filled in."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        retry: RetryPolicy,
        breaker: BreakerPolicy,
        timeouts: Timeouts,
        store: StateStore,
        rng: random.Random,
        streams: StreamPolicy,
        resolver: Callable[[str], BaseDeployment | None] | None = None,
    ) -> None:
        self.streams = streams
        self.retry = retry
        self.breaker_policy = breaker
        self.timeouts = timeouts
        self.store = store
        self.rng = rng
        self.routes = dict(routes)
        self._resolver = resolver
        self._plans = {name: self._compile(name, route) for name, route in routes.items()}
        self._check_fallbacks()

    def names(self) -> list[str]:
        """The configured routes (and the deployments addressed by name so far)."""
        return list(self._plans)

    def get(self, name: str) -> Plan:
        """The plan of a route, or of a single deployment addressed by its name."""
        found = self._plans.get(name)
        if found is not None:
            return found
        deployment = self.deployments().get(name) or self._resolve(name)
        plan = self._plans[name] = self._compile(name, Route([deployment], panic=True))
        return plan

    def deployments(self) -> dict[str, BaseDeployment]:
        """Every deployment of every plan, by name."""
        out: dict[str, BaseDeployment] = {}
        for plan in self._plans.values():
            for slot in plan.slots:
                out.setdefault(slot.name, slot.deployment)
        return out

    def breaker(self, deployment: str) -> BreakerLike:
        """The breaker of a deployment (with the first route's policy that names it)."""
        for plan in self._plans.values():
            for slot in plan.slots:
                if slot.name == deployment:
                    return self.store.breaker(slot.name, plan.breaker)
        raise UnknownRoute(deployment, list(self.deployments()))

    # -- building ----------------------------------------------------------------------------

    def _compile(self, name: str, route: Route) -> Plan:
        retry = route.retry or self.retry
        hedge = route.hedge
        return Plan(
            name=name,
            slots=[Slot.of(d) for d in route.deployments],
            strategy=resolve_strategy(route.strategy, self.rng),
            fallbacks=route.fallbacks,
            context_window_fallbacks=route.context_window_fallbacks,
            content_filter_fallbacks=route.content_filter_fallbacks,
            hedge=hedge,
            retry=retry,
            breaker=route.breaker or self.breaker_policy,
            timeouts=route.timeouts or self.timeouts,
            panic=route.panic,
            streams=route.streams or self.streams,
            budget=self._retry_budget(name, retry),
            hedge_budget=self._hedge_budget(name, hedge.budget) if hedge else None,
        )

    def _retry_budget(self, route: str, retry: RetryPolicy) -> RetryBudget:
        return self.store.budget(
            f"retry:{route}",
            ratio=retry.budget,
            min_per_second=retry.budget_min_per_second,
            burst=retry.budget_burst,
        )

    def _hedge_budget(self, route: str, ratio: float) -> RetryBudget:
        # no time-based floor for hedges: the ratio alone decides
        return self.store.budget(f"hedge:{route}", ratio=ratio, min_per_second=0.0, burst=10.0)

    def _check_fallbacks(self) -> None:
        for plan in self._plans.values():
            for target in plan.targets():
                if target not in self._plans:
                    raise ValueError(f"route {plan.name!r} falls back to unknown route {target!r}")

    def _resolve(self, name: str) -> BaseDeployment:
        """A deployment outside the routes, by name (`provider/model`), from the resolver."""
        known = self.names()
        if self._resolver is None:
            raise UnknownRoute(name, known)
        if len(self._plans) - len(self.routes) >= MAX_SINGLE_PLANS:
            # clients choose these names: without a bound they could grow memory at will
            raise UnknownRoute(
                name,
                known,
                reason=f"too many distinct deployments asked for by name; add {name!r} "
                "to a route in the config",
            )
        found = self._resolver(name)
        if found is None:
            raise UnknownRoute(name, known)
        return found
