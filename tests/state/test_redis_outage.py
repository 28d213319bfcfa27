"""Redis failing never fails a request: each replica decides alone, quickly, then resyncs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from state_helpers import eventually

from failover import BreakerPolicy, BreakerState, FakeClock
from failover.resilience.breaker import Result
from failover.state.redis import RedisStore
from redis_server import RedisServer, free_port

T = TypeVar("T")
LOCAL_TIMEOUT = 0.05
SLACK = 0.04  # scheduling noise on a busy test machine


@pytest.fixture
async def stores(own_redis: RedisServer, clock: FakeClock) -> AsyncIterator[list[RedisStore]]:
    made: list[RedisStore] = []
    yield made
    for store in made:
        await store.close()


def new_store(made: list[RedisStore], url: str, clock: FakeClock) -> RedisStore:
    store = RedisStore(url, clock=clock, namespace="outage", local_timeout=LOCAL_TIMEOUT)
    made.append(store)
    return store


async def timed(call: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    started = time.perf_counter()
    result = await call()
    return result, time.perf_counter() - started


async def test_killed_redis_leaves_every_call_fast_and_local(
    own_redis: RedisServer, stores: list[RedisStore], clock: FakeClock
) -> None:
    """With Redis killed mid-use, every call stays within local_timeout and decides locally."""
    store = new_store(stores, own_redis.url, clock)
    await store.start()
    b = store.breaker("p/m", BreakerPolicy(consecutive_failures=3, open_for=1))
    await store.flush()
    own_redis.kill()
    worst = 0.0
    for _ in range(3):
        permit, took = await timed(b.acquire)
        assert permit is not None
        _, took_release = await timed(lambda p=permit: b.release(p, Result.FAILURE))
        worst = max(worst, took, took_release)
    store.cool_down("p/m", clock.now() + 30)
    store.set_healthy("p/m", False)
    held, took = await timed(lambda: store.try_lease("probe:p/m", 5))
    assert held  # alone, every replica probes: better twice than never
    worst = max(worst, took)
    await eventually(lambda: store.degraded, within=1.0)
    # decided locally: the three failures count even though Redis died before they reached it
    await eventually(lambda: b.state is BreakerState.OPEN, within=1.0)
    assert store.redis_errors >= 1 and store.last_error
    assert not store.is_healthy("p/m") and store.cooldown_until("p/m") > clock.now()
    await clock.advance(1.5)
    probe, took = await timed(b.acquire)
    assert probe is not None and probe.probe
    await b.release(probe, Result.SUCCESS)
    assert b.state is BreakerState.CLOSED
    worst = max(worst, took)
    print(f"\nslowest call with Redis down: {worst * 1000:.2f} ms")
    assert worst < LOCAL_TIMEOUT + SLACK


async def test_hung_redis_delays_an_admission_by_local_timeout_at_most(
    own_redis: RedisServer, stores: list[RedisStore], clock: FakeClock
) -> None:
    """Redis that accepts but never answers costs one admission local_timeout, then nothing."""
    store = new_store(stores, own_redis.url, clock)
    await store.start()
    b = store.breaker("p/m", BreakerPolicy(consecutive_failures=1, open_for=1))
    permit = await b.acquire()
    assert permit is not None
    await b.release(permit, Result.FAILURE)
    await store.flush()
    assert b.state is BreakerState.OPEN
    await clock.advance(1.5)
    own_redis.pause()
    try:
        probe, took = await timed(b.acquire)
        assert probe is not None and probe.probe  # granted locally after the timeout
        assert took < LOCAL_TIMEOUT + SLACK
        assert store.degraded and store.redis_errors >= 1
        _, took = await timed(b.acquire)
        assert took < 0.005  # degraded: no more waiting on Redis at all
        _, took = await timed(lambda: store.try_lease("probe:p/m", 5))
        assert took < 0.005
    finally:
        own_redis.resume()
    await eventually(lambda: not store.degraded, within=4.0)


async def test_a_breaker_first_used_while_redis_hangs_still_admits(
    own_redis: RedisServer, stores: list[RedisStore], clock: FakeClock
) -> None:
    """Concurrent first calls through a breaker never heard of get permits within the timeout."""
    store = new_store(stores, own_redis.url, clock)
    await store.start()
    own_redis.pause()
    try:
        b = store.breaker("p/m", BreakerPolicy())
        results = await asyncio.gather(*(timed(b.acquire) for _ in range(20)))
    finally:
        own_redis.resume()
    assert all(permit is not None for permit, _ in results)
    assert max(took for _, took in results) < LOCAL_TIMEOUT + SLACK
    assert store.degraded


async def test_state_resyncs_when_redis_comes_back(
    own_redis: RedisServer, stores: list[RedisStore], clock: FakeClock
) -> None:
    """What a replica decided alone reaches the others once Redis restarts (empty)."""
    a = new_store(stores, own_redis.url, clock)
    b = new_store(stores, own_redis.url, clock)
    await a.start()
    await b.start()
    policy = BreakerPolicy(consecutive_failures=3, open_for=60)
    ba, bb = a.breaker("p/m", policy), b.breaker("p/m", policy)
    await a.flush()
    await b.flush()
    own_redis.kill()
    await eventually(lambda: a.degraded and b.degraded, within=1.0)
    for _ in range(3):
        permit = await ba.acquire()
        assert permit is not None
        await ba.release(permit, Result.FAILURE)
    a.set_healthy("p/m", False)
    a.cool_down("p/m", clock.now() + 30)
    assert ba.state is BreakerState.OPEN and bb.state is BreakerState.CLOSED
    own_redis.start()
    took = await eventually(lambda: not a.degraded and not b.degraded, within=4.0)
    await eventually(lambda: bb.state is BreakerState.OPEN, within=1.0)
    await eventually(lambda: not b.is_healthy("p/m"), within=1.0)
    await eventually(lambda: b.cooldown_until("p/m") > clock.now() + 29, within=1.0)
    print(f"\nresynchronised {took:.2f} s after redis-server restarted")
    assert bb.open_until == pytest.approx(ba.open_until, abs=1e-3)


async def test_a_store_starts_without_redis(stores: list[RedisStore], clock: FakeClock) -> None:
    """Redis down at start-up: start() returns soon, degraded, and the breaker works locally."""
    store = new_store(stores, f"redis://127.0.0.1:{free_port()}/0", clock)
    _, took = await timed(store.start)
    assert took < 2 * store.sync_timeout + 0.2
    assert store.degraded
    b = store.breaker("p/m", BreakerPolicy(consecutive_failures=1))
    permit = await b.acquire()
    assert permit is not None
    await b.release(permit, Result.FAILURE)
    assert b.state is BreakerState.OPEN
