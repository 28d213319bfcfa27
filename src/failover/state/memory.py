"""The default store: everything in this process's memory."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ..clock import Clock, SystemClock
from ..quota import Quota, QuotaPolicy
from ..resilience.breaker import BreakerEvent, BreakerPolicy, CircuitBreaker
from ..resilience.retry import RetryBudget
from ..stats import DeploymentStats
from .base import StateStore

__all__ = ["MemoryStore"]


class MemoryStore(StateStore):
    """State for one process. Breakers and stats are created on first use."""

    def __init__(self, *, clock: Clock | None = None, rng: random.Random | None = None) -> None:
        self.clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._budgets: dict[str, RetryBudget] = {}
        self._quotas: dict[str, Quota] = {}
        self._stats: dict[str, DeploymentStats] = {}
        self._cooldowns: dict[str, float] = {}
        self._unhealthy: set[str] = set()
        self._listeners: list[Callable[[BreakerEvent], None]] = []

    def breaker(self, key: str, policy: BreakerPolicy) -> CircuitBreaker:
        found = self._breakers.get(key)
        if found is None:
            found = CircuitBreaker(key, policy, clock=self.clock, rng=self._rng)
            found.on_change(self._emit)
            self._breakers[key] = found
        return found

    def breakers(self) -> dict[str, CircuitBreaker]:
        return dict(self._breakers)

    def budget(self, key: str, *, ratio: float, min_per_second: float, burst: float) -> RetryBudget:
        found = self._budgets.get(key)
        if found is None:
            found = RetryBudget(
                key, ratio=ratio, min_per_second=min_per_second, burst=burst, clock=self.clock
            )
            self._budgets[key] = found
        return found

    def quota(self, key: str, policy: QuotaPolicy) -> Quota:
        found = self._quotas.get(key)
        if found is None:
            found = self._quotas[key] = Quota(key, policy)
        return found

    def stats(self, key: str) -> DeploymentStats:
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = DeploymentStats(key)
        return found

    def cooldown_until(self, key: str) -> float:
        return self._cooldowns.get(key, 0.0)

    def cool_down(self, key: str, until: float) -> None:
        self._cooldowns[key] = max(until, self._cooldowns.get(key, 0.0))

    def is_healthy(self, key: str) -> bool:
        return key not in self._unhealthy

    def set_healthy(self, key: str, healthy: bool) -> None:
        if healthy:
            self._unhealthy.discard(key)
        else:
            self._unhealthy.add(key)

    def subscribe(self, listener: Callable[[BreakerEvent], None]) -> None:
        self._listeners.append(listener)

    def _emit(self, event: BreakerEvent) -> None:
        for listener in self._listeners:
            listener(event)

    def describe(self) -> dict[str, Any]:
        """State in this process's memory."""
        return {"backend": "memory"}

    def __repr__(self) -> str:
        return f"<MemoryStore breakers={len(self._breakers)} unhealthy={len(self._unhealthy)}>"
