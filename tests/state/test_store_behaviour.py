"""One replica on Redis behaves like one process on memory: the same tests run on both stores.

A RedisStore sends outcomes in the background; `settle` waits for that (a no-op on memory),
so each step below is compared after the cluster has decided.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from failover import BreakerPolicy, BreakerState, FakeClock, MemoryStore
from failover.resilience.breaker import BreakerEvent, Result
from failover.state.base import BreakerLike, StateStore
from failover.state.redis import RedisStore


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[StateStore]:
    """Each test runs once per store."""
    if request.param == "memory":
        memory = MemoryStore(clock=clock, rng=random.Random(1))
        yield memory
        await memory.close()
        return
    server = request.getfixturevalue("redis_server")  # fails when redis-server is missing
    namespace = request.getfixturevalue("namespace")
    redis_store = RedisStore(
        server.url,
        clock=clock,
        rng=random.Random(1),
        namespace=namespace,
        local_timeout=0.5,  # these tests are about decisions; test_redis_outage about time
    )
    await redis_store.start()
    assert not redis_store.degraded, redis_store.last_error
    yield redis_store
    await redis_store.close()
    assert not redis_store.degraded, f"Redis was lost mid-test: {redis_store.last_error}"


async def settle(store: StateStore) -> None:
    flush = getattr(store, "flush", None)
    if flush is not None:
        await flush()


def breaker(store: StateStore, **policy: Any) -> BreakerLike:
    return store.breaker("p/m", BreakerPolicy(**policy))


async def call(store: StateStore, b: BreakerLike, result: Result, *, duration: float = 0.0) -> bool:
    permit = await b.acquire()
    if permit is None:
        return False
    await b.release(permit, result, duration=duration)
    await settle(store)
    return True


async def open_it(store: StateStore, b: BreakerLike) -> None:
    for _ in range(3):
        await call(store, b, Result.FAILURE)
    assert b.state is BreakerState.OPEN


# -- opening -------------------------------------------------------------------------------------


async def test_opens_after_consecutive_failures(store: StateStore) -> None:
    """Three failures in a row open the breaker; an open breaker admits nothing."""
    b = breaker(store, consecutive_failures=3, min_calls=100)
    for _ in range(2):
        await call(store, b, Result.FAILURE)
    assert b.state is BreakerState.CLOSED
    await call(store, b, Result.FAILURE)
    assert b.state is BreakerState.OPEN
    assert not b.would_admit()
    assert await b.acquire() is None


async def test_success_resets_the_streak(store: StateStore) -> None:
    """A success between failures resets the consecutive count."""
    b = breaker(store, consecutive_failures=3, min_calls=100)
    for result in (Result.FAILURE, Result.FAILURE, Result.SUCCESS, Result.FAILURE, Result.FAILURE):
        await call(store, b, result)
    assert b.state is BreakerState.CLOSED


async def test_opens_on_failure_rate_once_min_calls_reached(store: StateStore) -> None:
    """The failure rate opens the breaker, but only with at least min_calls in the window."""
    b = breaker(store, consecutive_failures=0, min_calls=6, failure_rate=0.5, window=10)
    for result in (Result.FAILURE, Result.SUCCESS) * 2 + (Result.FAILURE,):
        await call(store, b, result)
    assert b.state is BreakerState.CLOSED
    await call(store, b, Result.SUCCESS)
    assert b.state is BreakerState.OPEN


async def test_count_window_forgets_old_calls(store: StateStore) -> None:
    """Only the last `window` calls count."""
    b = breaker(store, consecutive_failures=0, min_calls=4, failure_rate=0.5, window=4)
    for result in (Result.FAILURE,) + (Result.SUCCESS,) * 4 + (Result.FAILURE,):
        await call(store, b, result)
    assert b.counts() == (1, 4)  # type: ignore[attr-defined]
    assert b.state is BreakerState.CLOSED
    await call(store, b, Result.FAILURE)
    assert b.state is BreakerState.OPEN  # 2 of the last 4


async def test_time_window_forgets_old_calls(store: StateStore, clock: FakeClock) -> None:
    """With window_seconds, calls older than the window stop counting."""
    b = breaker(store, consecutive_failures=0, min_calls=3, failure_rate=0.5, window_seconds=10)
    await call(store, b, Result.FAILURE)
    await call(store, b, Result.FAILURE)
    await clock.advance(11)
    for result in (Result.SUCCESS, Result.SUCCESS, Result.FAILURE):
        await call(store, b, result)
    assert b.counts() == (1, 3)  # type: ignore[attr-defined]
    assert b.state is BreakerState.CLOSED


async def test_slow_calls_open_when_configured(store: StateStore) -> None:
    """Successful but slow calls open the breaker at the slow-call rate."""
    b = breaker(
        store, consecutive_failures=0, min_calls=2, slow_call_rate=0.5, slow_call_duration=1.0
    )
    await call(store, b, Result.SUCCESS, duration=0.1)
    assert b.state is BreakerState.CLOSED
    await call(store, b, Result.SUCCESS, duration=2.0)
    assert b.state is BreakerState.OPEN


async def test_ignored_outcomes_do_not_count(store: StateStore) -> None:
    """IGNORE (a bad request, a lost hedge) neither fails nor succeeds."""
    b = breaker(store, consecutive_failures=2)
    await call(store, b, Result.FAILURE)
    await call(store, b, Result.IGNORE)
    await call(store, b, Result.FAILURE)
    assert b.state is BreakerState.OPEN


# -- open, half-open, closed ------------------------------------------------------------------


async def test_half_opens_after_open_for_and_closes_on_success(
    store: StateStore, clock: FakeClock
) -> None:
    """After open_for (+-jitter) one probe goes; its success closes the breaker."""
    b = breaker(store, open_for=10, jitter=0.2)
    await open_it(store, b)
    await clock.advance(7.9)
    assert await b.acquire() is None
    await clock.advance(4.2)
    assert b.would_admit()
    permit = await b.acquire()
    assert permit is not None and permit.probe
    assert b.state is BreakerState.HALF_OPEN
    await b.release(permit, Result.SUCCESS)
    await settle(store)
    assert b.state is BreakerState.CLOSED


async def test_failed_probe_reopens_for_twice_as_long(store: StateStore, clock: FakeClock) -> None:
    """A failed probe opens the breaker again, for open_for * 2 (+-jitter)."""
    b = breaker(store, open_for=10, jitter=0.2)
    await open_it(store, b)
    await clock.advance(12.1)
    assert await call(store, b, Result.FAILURE)
    assert b.state is BreakerState.OPEN
    await clock.advance(15.9)  # the shortest second opening is 16s
    assert await b.acquire() is None
    await clock.advance(8.2)
    assert await b.acquire() is not None


async def test_half_open_admits_exactly_half_open_calls(
    store: StateStore, clock: FakeClock
) -> None:
    """HALF_OPEN admits half_open_calls probes; all must succeed to close."""
    b = breaker(store, open_for=1, half_open_calls=2)
    await open_it(store, b)
    await clock.advance(1.3)
    first, second = await b.acquire(), await b.acquire()
    assert first is not None and second is not None
    assert await b.acquire() is None
    await b.release(first, Result.SUCCESS)
    await settle(store)
    assert b.state is BreakerState.HALF_OPEN
    await b.release(second, Result.SUCCESS)
    await settle(store)
    assert b.state is BreakerState.CLOSED


async def test_ignored_probe_lets_another_go(store: StateStore, clock: FakeClock) -> None:
    """A probe that proves nothing hands its slot back."""
    b = breaker(store, open_for=1)
    await open_it(store, b)
    await clock.advance(1.3)
    probe = await b.acquire()
    assert probe is not None
    assert await b.acquire() is None
    await b.release(probe, Result.IGNORE)
    await settle(store)
    assert await b.acquire() is not None


async def test_permit_from_an_earlier_state_does_not_count(store: StateStore) -> None:
    """A call admitted while CLOSED cannot close a breaker that opened meanwhile."""
    b = breaker(store)
    early = await b.acquire()
    assert early is not None
    await open_it(store, b)
    await b.release(early, Result.SUCCESS)
    await settle(store)
    assert b.state is BreakerState.OPEN


# -- by hand ------------------------------------------------------------------------------------


async def test_forced_open_admits_nothing_until_reset(store: StateStore) -> None:
    """FORCED_OPEN drains the deployment; reset brings it back CLOSED."""
    b = breaker(store)
    b.force_open()
    await settle(store)
    assert b.state is BreakerState.FORCED_OPEN
    assert await b.acquire() is None
    b.reset()
    await settle(store)
    assert b.state is BreakerState.CLOSED
    assert await b.acquire() is not None


async def test_disabled_admits_everything_and_records_nothing(store: StateStore) -> None:
    """DISABLED admits every call and failures do not open it."""
    b = breaker(store, consecutive_failures=1)
    b.disable()
    await settle(store)
    for _ in range(5):
        assert await call(store, b, Result.FAILURE)
    assert b.state is BreakerState.DISABLED


async def test_probe_succeeded_half_opens_early(store: StateStore) -> None:
    """A passed health probe lets an OPEN breaker try HALF_OPEN before open_for is up."""
    b = breaker(store, open_for=60)
    await open_it(store, b)
    b.probe_succeeded()
    await settle(store)
    assert b.state is BreakerState.HALF_OPEN
    assert await b.acquire() is not None


async def test_every_transition_is_an_event(store: StateStore, clock: FakeClock) -> None:
    """Subscribers hear each transition once, in order."""
    events: list[BreakerEvent] = []
    store.subscribe(events.append)
    b = breaker(store, open_for=1)
    await open_it(store, b)
    await clock.advance(1.3)
    assert await call(store, b, Result.SUCCESS)
    b.force_open()
    b.reset()
    await settle(store)
    assert [(e.old, e.new) for e in events] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
        (BreakerState.CLOSED, BreakerState.FORCED_OPEN),
        (BreakerState.FORCED_OPEN, BreakerState.CLOSED),
    ]
    assert events[0].name == "p/m" and events[0].open_for is not None


# -- the rest of the store ------------------------------------------------------------------------


async def test_cool_down_keeps_the_latest_time(store: StateStore, clock: FakeClock) -> None:
    """A cool-down lasts until the latest time asked for; an earlier one changes nothing."""
    assert store.cooldown_until("a") == 0.0
    store.cool_down("a", clock.now() + 5)
    store.cool_down("a", clock.now() + 2)
    await settle(store)
    assert store.cooldown_until("a") == pytest.approx(clock.now() + 5, abs=1e-3)


async def test_health_marks(store: StateStore) -> None:
    """Deployments are healthy until marked otherwise, and can be marked back."""
    assert store.is_healthy("a")
    store.set_healthy("a", False)
    await settle(store)
    assert not store.is_healthy("a")
    assert store.is_healthy("b")
    store.set_healthy("a", True)
    await settle(store)
    assert store.is_healthy("a")


async def test_retry_budget_spends_and_refills(store: StateStore, clock: FakeClock) -> None:
    """The budget spends whole tokens, earns `ratio` per request and refills over time."""
    budget = store.budget("retry:r", ratio=0.5, min_per_second=1.0, burst=3.0)
    assert [budget.spend() for _ in range(4)] == [True, True, True, False]
    await settle(store)
    budget.deposit()
    budget.deposit()
    await settle(store)
    assert budget.spend()
    assert not budget.spend()
    await clock.advance(1.0)
    await settle(store)
    assert budget.spend()
    await settle(store)
    assert budget.tokens == pytest.approx(0.0, abs=1e-6)


async def test_same_objects_per_key(store: StateStore) -> None:
    """A key always gives the same breaker, budget and stats."""
    policy = BreakerPolicy()
    assert store.breaker("a", policy) is store.breaker("a", policy)
    assert store.stats("a") is store.stats("a")
    kwargs: dict[str, float] = {"ratio": 0.2, "min_per_second": 1.0, "burst": 10.0}
    assert store.budget("r", **kwargs) is store.budget("r", **kwargs)


async def test_alone_the_lease_is_always_ours(store: StateStore) -> None:
    """A single process always gets the lease, again and again."""
    assert await store.try_lease("probe:a", 5.0)
    assert await store.try_lease("probe:a", 5.0)
