"""Where learned state lives: breakers, retry budgets, passive stats, cool-downs, health.

The router only talks to a `StateStore`. `MemoryStore` keeps everything in this process;
a shared store (Redis) keeps the same things where every replica can see them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..resilience.breaker import BreakerEvent, BreakerPolicy, BreakerState, Permit, Result
from ..resilience.retry import RetryBudget
from ..stats import DeploymentStats

__all__ = ["BreakerLike", "StateStore"]


class BreakerLike(Protocol):
    """The breaker interface the router uses (`CircuitBreaker` implements it)."""

    name: str

    @property
    def state(self) -> BreakerState: ...

    def would_admit(self) -> bool: ...

    async def acquire(self) -> Permit | None: ...

    async def release(self, permit: Permit, result: Result, *, duration: float = 0.0) -> None: ...

    def probe_succeeded(self) -> None: ...

    def force_open(self) -> None: ...

    def disable(self) -> None: ...

    def reset(self) -> None: ...


class StateStore(Protocol):
    """Per-deployment and per-route state, keyed by name."""

    def breaker(self, key: str, policy: BreakerPolicy) -> BreakerLike: ...

    def budget(
        self, key: str, *, ratio: float, min_per_second: float, burst: float
    ) -> RetryBudget: ...

    def stats(self, key: str) -> DeploymentStats: ...

    def cooldown_until(self, key: str) -> float: ...

    def cool_down(self, key: str, until: float) -> None: ...

    def is_healthy(self, key: str) -> bool: ...

    def set_healthy(self, key: str, healthy: bool) -> None: ...

    def subscribe(self, listener: Callable[[BreakerEvent], None]) -> None: ...

    async def try_lease(self, key: str, ttl: float) -> bool:
        """Whether this process may run the job `key` now (e.g. probe a deployment) for `ttl`
        seconds: with replicas only one of them gets it; alone, always."""
        ...

    async def close(self) -> None: ...
