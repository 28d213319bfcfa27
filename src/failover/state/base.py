"""Where learned state lives: breakers, retry budgets, quotas, passive stats, cool-downs, health.

The router only talks to a `StateStore`. `MemoryStore` keeps everything in this process;
a shared store (Redis) keeps the same things where every replica can see them.

A store subclasses `StateStore` and implements its abstract methods; what only some stores can
do (connect before the first request, share leases, lose their backend, describe themselves)
has a default here that suits a store of one process, so callers call it without asking first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

from ..quota import Quota, QuotaPolicy
from ..resilience.breaker import BreakerEvent, BreakerPolicy, BreakerState, Permit, Result
from ..resilience.retry import RetryBudget
from ..stats import DeploymentStats

__all__ = ["BreakerLike", "StateStore"]


class BreakerLike(Protocol):
    """The breaker interface the router uses (`CircuitBreaker` and `SharedBreaker` have it)."""

    name: str

    @property
    def state(self) -> BreakerState:
        """Where the breaker is now."""
        ...

    @property
    def open_until(self) -> float:
        """When an OPEN breaker lets a probe through, on the router's clock."""
        ...

    def counts(self) -> tuple[int, int]:
        """(failed, total) calls in the breaker's window."""
        ...

    def would_admit(self) -> bool:
        """Whether `acquire` would give a permit now, without taking one."""
        ...

    async def acquire(self) -> Permit | None:
        """A permit to call now, or None while the breaker is open."""
        ...

    async def release(self, permit: Permit, result: Result, *, duration: float = 0.0) -> None:
        """Record how the call admitted by `permit` ended."""
        ...

    def probe_succeeded(self) -> None:
        """A health probe passed: an OPEN breaker may try HALF_OPEN early."""
        ...

    def force_open(self) -> None:
        """Drain: admit nothing until `reset`."""
        ...

    def disable(self) -> None:
        """Admit everything and record nothing until `reset`."""
        ...

    def reset(self) -> None:
        """Back to CLOSED with an empty window."""
        ...


class StateStore(ABC):
    """Per-deployment and per-route state, keyed by name: the base of every store."""

    @abstractmethod
    def breaker(self, key: str, policy: BreakerPolicy) -> BreakerLike:
        """The breaker of deployment `key`, created with `policy` on first use."""

    @abstractmethod
    def budget(self, key: str, *, ratio: float, min_per_second: float, burst: float) -> RetryBudget:
        """The retry (or hedge) budget `key`, created on first use."""

    @abstractmethod
    def quota(self, key: str, policy: QuotaPolicy) -> Quota:
        """What deployment `key` has left of its rate limits, created with `policy` on first use
        (its `rpm` / `tpm` counted by every process that shares the store)."""

    @abstractmethod
    def stats(self, key: str) -> DeploymentStats:
        """What this process measured of deployment `key`."""

    @abstractmethod
    def cooldown_until(self, key: str) -> float:
        """When deployment `key`'s rate-limit cool-down ends, on the store's clock (0: none)."""

    @abstractmethod
    def cool_down(self, key: str, until: float) -> None:
        """Keep deployment `key` out of rotation until `until` (a later end wins)."""

    @abstractmethod
    def is_healthy(self, key: str) -> bool:
        """Whether active health checks last found deployment `key` healthy."""

    @abstractmethod
    def set_healthy(self, key: str, healthy: bool) -> None:
        """Mark deployment `key` healthy or unhealthy."""

    @abstractmethod
    def subscribe(self, listener: Callable[[BreakerEvent], None]) -> None:
        """Call `listener` on every breaker transition of this store."""

    # -- optional behaviour: the defaults of a store that lives in one process ----------------

    @property
    def degraded(self) -> bool:
        """True while a shared store cannot reach its backend and decides alone."""
        return False

    async def start(self) -> None:
        """Connect and read shared state before the first request (nothing to do alone)."""
        return None

    async def try_lease(self, key: str, ttl: float) -> bool:
        """Whether this process may run the job `key` now (e.g. probe a deployment) for `ttl`
        seconds: with replicas only one of them gets it; alone, always."""
        return True

    def describe(self) -> dict[str, Any]:
        """Where the state lives, for the status page (`backend`, and what else matters)."""
        return {"backend": type(self).__name__}

    async def close(self) -> None:
        """Release what the store holds (connections, background tasks)."""
        return None
