"""Two replicas (two RedisStores, separate connections) sharing one namespace on a real Redis."""

from __future__ import annotations

import asyncio
import random

import pytest
from redis.asyncio import Redis
from state_helpers import MakeStore, eventually

from failover import (
    BreakerPolicy,
    BreakerState,
    Config,
    FakeClock,
    RetryPolicy,
    Route,
    Router,
    SystemClock,
)
from failover.factory import build_store
from failover.resilience.breaker import Result
from failover.state.redis import RedisStore
from failover.state.shared import SharedBreaker
from failover.testing import ScriptedDeployment, fail, ok
from redis_server import RedisServer


async def fail_calls(b: SharedBreaker, times: int = 1) -> None:
    for _ in range(times):
        permit = await b.acquire()
        assert permit is not None
        await b.release(permit, Result.FAILURE)


async def replicas(make_store: MakeStore, **kwargs: object) -> tuple[RedisStore, RedisStore]:
    a, b = make_store(**kwargs), make_store(**kwargs)
    await asyncio.gather(a.start(), b.start())
    assert not a.degraded and not b.degraded, (a.last_error, b.last_error)
    return a, b


# -- breakers ------------------------------------------------------------------------------------


async def test_open_reaches_the_other_replica_within_100ms(make_store: MakeStore) -> None:
    """Replica A's failures open the breaker; replica B sees OPEN in well under 100 ms."""
    a, b = await replicas(make_store, clock=SystemClock())
    policy = BreakerPolicy(consecutive_failures=3)
    ba, bb = a.breaker("p/m", policy), b.breaker("p/m", policy)
    await asyncio.gather(a.flush(), b.flush())
    timings = []
    for _ in range(5):
        ba.reset()
        await a.flush()
        await eventually(lambda: bb.state is BreakerState.CLOSED)
        await fail_calls(ba, 3)
        timings.append(await eventually(lambda: bb.state is BreakerState.OPEN, within=1.0))
    worst = max(timings)
    best = min(timings)
    print(f"\nOPEN propagation A -> B: best {best * 1000:.2f} ms, worst {worst * 1000:.2f} ms")
    assert worst < 0.1
    assert bb.open_until == pytest.approx(ba.open_until, abs=0.05)


async def test_replicas_open_together_after_consecutive_failures(make_store: MakeStore) -> None:
    """Failures from two replicas add up: three in a row open it, not three per replica."""
    a, b = await replicas(make_store)
    policy = BreakerPolicy(consecutive_failures=3, min_calls=100)
    ba, bb = a.breaker("p/m", policy), b.breaker("p/m", policy)
    await fail_calls(ba)
    await a.flush()
    await fail_calls(bb)
    await b.flush()
    assert bb.state is BreakerState.CLOSED
    await fail_calls(ba)
    await a.flush()
    assert ba.state is BreakerState.OPEN
    await eventually(lambda: bb.state is BreakerState.OPEN)


async def test_half_open_probes_are_granted_cluster_wide(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """Many concurrent acquires on both replicas get exactly half_open_calls probes in all."""
    a, b = await replicas(make_store)
    policy = BreakerPolicy(consecutive_failures=1, open_for=1, half_open_calls=3)
    ba, bb = a.breaker("p/m", policy), b.breaker("p/m", policy)
    await fail_calls(ba)
    await a.flush()
    await eventually(lambda: bb.state is BreakerState.OPEN)
    await clock.advance(1.5)
    permits = await asyncio.gather(*(x.acquire() for _ in range(40) for x in (ba, bb)))
    granted = [p for p in permits if p is not None]
    assert len(granted) == 3
    assert all(p.probe for p in granted)
    assert not ba.would_admit() and not bb.would_admit()  # both know every probe is out


async def test_a_probe_on_one_replica_closes_the_breaker_everywhere(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """B's successful probe closes the breaker on A too; A's later probes are refused meanwhile."""
    a, b = await replicas(make_store)
    policy = BreakerPolicy(consecutive_failures=1, open_for=1)
    ba, bb = a.breaker("p/m", policy), b.breaker("p/m", policy)
    await fail_calls(ba)
    await a.flush()
    await eventually(lambda: bb.state is BreakerState.OPEN)
    await clock.advance(1.5)
    probe = await bb.acquire()
    assert probe is not None and probe.probe
    assert await ba.acquire() is None
    await bb.release(probe, Result.SUCCESS)
    await b.flush()
    await eventually(lambda: ba.state is BreakerState.CLOSED)


async def test_drain_by_hand_reaches_every_replica(make_store: MakeStore) -> None:
    """force_open on one replica drains the deployment everywhere; reset undoes it everywhere."""
    a, b = await replicas(make_store)
    ba, bb = a.breaker("p/m", BreakerPolicy()), b.breaker("p/m", BreakerPolicy())
    ba.force_open()
    await a.flush()
    await eventually(lambda: bb.state is BreakerState.FORCED_OPEN)
    assert await bb.acquire() is None
    bb.reset()
    await b.flush()
    await eventually(lambda: ba.state is BreakerState.CLOSED)


async def test_a_new_replica_starts_from_the_shared_state(make_store: MakeStore) -> None:
    """A replica started after the breaker opened sees it OPEN once it has looked."""
    a = make_store()
    ba = a.breaker("p/m", BreakerPolicy(consecutive_failures=2))
    await fail_calls(ba, 2)
    await a.flush()
    late = make_store()
    await late.start()
    b_late = late.breaker("p/m", BreakerPolicy(consecutive_failures=2))
    await late.flush()
    assert b_late.state is BreakerState.OPEN
    assert b_late.open_until == pytest.approx(ba.open_until, abs=1e-3)


async def test_a_new_replica_never_calls_a_deployment_the_cluster_holds_open(
    make_store: MakeStore,
) -> None:
    """The first acquire of a breaker asks Redis: OPEN elsewhere means no call from here."""
    a = make_store()
    policy = BreakerPolicy(consecutive_failures=1)
    await fail_calls(a.breaker("p/m", policy))
    await a.flush()
    late = make_store()
    b_late = late.breaker("p/m", policy)
    assert await b_late.acquire() is None
    assert b_late.state is BreakerState.OPEN


async def test_routers_on_two_replicas_fail_over_together(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """Once replica A's router has opened the primary's breaker, B's router skips it too."""
    a, b = await replicas(make_store)

    def router(store: RedisStore) -> tuple[Router, ScriptedDeployment]:
        primary = ScriptedDeployment("primary", fail(500), clock=clock)
        backup = ScriptedDeployment("backup", ok("from backup"), clock=clock)
        routes = {"chat": Route([primary, backup])}
        policy = BreakerPolicy(consecutive_failures=3)
        retry = RetryPolicy(attempts=1)
        return Router(routes, store=store, clock=clock, breaker=policy, retry=retry), primary

    (router_a, primary_a), (router_b, primary_b) = router(a), router(b)
    request = {"messages": [{"role": "user", "content": "hi"}]}
    for _ in range(3):
        assert (await router_a.complete("chat", request)).text == "from backup"
    await a.flush()
    await eventually(lambda: router_b.breaker("primary").state is BreakerState.OPEN)
    for _ in range(5):
        assert (await router_b.complete("chat", request)).text == "from backup"
    assert primary_a.calls == 3 and primary_b.calls == 0


# -- cool-downs, health, budgets, leases --------------------------------------------------------


async def test_cool_downs_are_shared(make_store: MakeStore, clock: FakeClock) -> None:
    """A Retry-After seen by A cools the deployment down on B as well."""
    a, b = await replicas(make_store)
    a.cool_down("p/m", clock.now() + 30)
    await a.flush()
    await eventually(lambda: b.cooldown_until("p/m") > clock.now())
    assert b.cooldown_until("p/m") == pytest.approx(clock.now() + 30, abs=1e-3)


async def test_health_marks_are_shared(make_store: MakeStore) -> None:
    """A health mark set by the replica that probed holds on the others."""
    a, b = await replicas(make_store)
    a.set_healthy("p/m", False)
    await a.flush()
    await eventually(lambda: not b.is_healthy("p/m"))
    a.set_healthy("p/m", True)
    await a.flush()
    await eventually(lambda: b.is_healthy("p/m"))


async def test_retry_budget_is_shared(make_store: MakeStore) -> None:
    """Retries spent on A leave fewer for B: the budget is the cluster's."""
    a, b = await replicas(make_store)
    kwargs: dict[str, float] = {"ratio": 0.5, "min_per_second": 0.0, "burst": 3.0}
    budget_a, budget_b = a.budget("retry:r", **kwargs), b.budget("retry:r", **kwargs)
    assert [budget_a.spend() for _ in range(3)] == [True, True, True]
    await a.flush()
    budget_b.deposit()
    await b.flush()
    assert budget_b.tokens == pytest.approx(0.5)
    assert not budget_b.spend()


async def test_the_lease_goes_to_one_replica_at_a_time(make_store: MakeStore) -> None:
    """Only one replica holds a lease; its holder renews it; it passes on when it expires."""
    a, b = await replicas(make_store)
    assert await a.try_lease("probe:p/m", 0.2)
    assert not await b.try_lease("probe:p/m", 0.2)
    assert await a.try_lease("probe:p/m", 0.2)
    await asyncio.sleep(0.25)
    assert await b.try_lease("probe:p/m", 0.2)
    assert not await a.try_lease("probe:p/m", 0.2)


# -- keys ----------------------------------------------------------------------------------------


async def test_every_key_expires(
    make_store: MakeStore, redis_server: RedisServer, namespace: str, clock: FakeClock
) -> None:
    """Breakers, windows, cool-downs, health marks, budgets and leases all carry a TTL."""
    store = make_store(ttl=600)
    await store.start()
    b = store.breaker("p/m", BreakerPolicy(consecutive_failures=5))
    await fail_calls(b, 2)
    store.cool_down("p/m", clock.now() + 10)
    store.set_healthy("p/m", False)
    store.budget("retry:r", ratio=0.2, min_per_second=1.0, burst=10.0).deposit()
    await store.try_lease("probe:p/m", 5)
    await store.flush()
    async with Redis.from_url(redis_server.url, decode_responses=True) as client:
        keys = sorted([k async for k in client.scan_iter(f"{namespace}:*")])
        assert [k.split(":", 2)[1] for k in keys] == [
            "breaker", "budget", "cooldown", "health", "lease", "window"
        ]  # fmt: skip
        ttls = {key: await client.pttl(key) for key in keys}
    assert all(0 < ttl <= 600_000 for ttl in ttls.values()), ttls


async def test_a_drained_breaker_is_never_forgotten(
    make_store: MakeStore, redis_server: RedisServer, namespace: str
) -> None:
    """FORCED_OPEN is set by hand and lasts until reset by hand: no TTL while it holds."""
    store = make_store(ttl=600)
    b = store.breaker("p/m", BreakerPolicy())
    b.force_open()
    await store.flush()
    key = f"{namespace}:breaker:p/m"
    async with Redis.from_url(redis_server.url, decode_responses=True) as client:
        assert await client.pttl(key) == -1
        b.reset()
        await store.flush()
        assert 0 < await client.pttl(key) <= 600_000


# -- building -------------------------------------------------------------------------------


async def test_build_store_makes_a_redis_store_for_redis_urls(redis_server: RedisServer) -> None:
    """`state: redis://...?namespace=x` builds a RedisStore in namespace x, connected lazily."""
    config = Config.from_dict({"state": f"{redis_server.url}?namespace=blue"})
    store = build_store(config, FakeClock())
    try:
        assert isinstance(store, RedisStore)
        assert store.namespace == "blue"
        await store.start()
        assert not store.degraded
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "namespace", "expected"),
    [
        ("redis://h:1/0", None, "failover"),
        ("redis://h:1/0?namespace=x", None, "x"),
        ("rediss://u:p@h:1/2?ssl_cert_reqs=none&namespace=y", None, "y"),
        ("redis://h:1/0?namespace=x", "given", "given"),
    ],
)
def test_namespace_comes_from_the_url_unless_given(
    url: str, namespace: str | None, expected: str
) -> None:
    """The URL's namespace= names the store's namespace; the `namespace` argument wins."""
    assert RedisStore(url, namespace=namespace).namespace == expected


async def test_close_stops_everything(make_store: MakeStore) -> None:
    """After close no task of the store is left and closing again is harmless."""
    store = make_store(rng=random.Random(2))
    await store.start()
    store.breaker("p/m", BreakerPolicy())
    await store.close()
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert not any(name.startswith("failover-redis") for name in names)
    await store.close()
