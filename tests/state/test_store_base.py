"""The base of every store: what a store must implement, and the defaults of the rest."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from failover import BreakerPolicy, FakeClock, MemoryStore, StateStore
from failover.quota import Quota, QuotaPolicy
from failover.resilience.breaker import BreakerEvent
from failover.resilience.retry import RetryBudget
from failover.state.base import BreakerLike
from failover.state.redis import RedisStore
from failover.stats import DeploymentStats


class Minimal(StateStore):
    """A store implementing only the abstract methods (on top of a MemoryStore)."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner = MemoryStore(clock=clock)

    def breaker(self, key: str, policy: BreakerPolicy) -> BreakerLike:
        return self.inner.breaker(key, policy)

    def budget(self, key: str, *, ratio: float, min_per_second: float, burst: float) -> RetryBudget:
        return self.inner.budget(key, ratio=ratio, min_per_second=min_per_second, burst=burst)

    def quota(self, key: str, policy: QuotaPolicy) -> Quota:
        return self.inner.quota(key, policy)

    def stats(self, key: str) -> DeploymentStats:
        return self.inner.stats(key)

    def cooldown_until(self, key: str) -> float:
        return self.inner.cooldown_until(key)

    def cool_down(self, key: str, until: float) -> None:
        self.inner.cool_down(key, until)

    def is_healthy(self, key: str) -> bool:
        return self.inner.is_healthy(key)

    def set_healthy(self, key: str, healthy: bool) -> None:
        self.inner.set_healthy(key, healthy)

    def subscribe(self, listener: Callable[[BreakerEvent], None]) -> None:
        self.inner.subscribe(listener)


def test_a_store_missing_a_required_method_cannot_be_made() -> None:
    """StateStore's abstract methods must be implemented before a store exists."""
    with pytest.raises(TypeError, match="breaker"):
        StateStore()  # type: ignore[abstract]


async def test_optional_behaviour_has_one_process_defaults(clock: FakeClock) -> None:
    """Without overrides a store starts and closes at once, holds every lease, never degrades."""
    store = Minimal(clock)
    await store.start()
    assert await store.try_lease("health:a", 10.0) is True
    assert store.degraded is False
    await store.close()


def test_a_store_describes_itself_by_its_class_by_default(clock: FakeClock) -> None:
    """The default description names the store's class as its backend."""
    assert Minimal(clock).describe() == {"backend": "Minimal"}


def test_memory_store_describes_itself_as_memory(clock: FakeClock) -> None:
    """MemoryStore reports the memory backend and nothing else."""
    assert MemoryStore(clock=clock).describe() == {"backend": "memory"}


def test_redis_store_describes_its_namespace_replica_and_health(clock: FakeClock) -> None:
    """RedisStore reports its Redis (without the password), namespace, replica id and whether
    Redis has failed it."""
    store = RedisStore("redis://:secret@127.0.0.1:1/0", clock=clock, namespace="prod")
    assert store.describe() == {
        "backend": "redis",
        "mode": "server",
        "redis": "redis://127.0.0.1:1/0",
        "namespace": "prod",
        "replica": store.replica_id,
        "degraded": False,
        "redis_errors": 0,
        "last_error": None,
    }
