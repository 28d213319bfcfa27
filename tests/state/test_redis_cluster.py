"""Stores on a real Redis Cluster (three masters): every deployment's keys in one slot, the
deployments spread over the nodes, and changes and counts heard by every replica wherever they
happen."""

from __future__ import annotations

import asyncio

import pytest
from redis import RedisCluster as SyncCluster
from redis.crc import key_slot
from state_helpers import MakeStore, eventually

from failover import BreakerPolicy, BreakerState, FakeClock, SystemClock
from failover.quota import QuotaPolicy
from failover.resilience.breaker import Result
from failover.state.redis import RedisStore
from failover.state.shared import SharedBreaker
from redis_server import ClusterRedis

pytestmark = pytest.mark.timeout(60)


def spread(count: int) -> list[str]:
    """`count` deployment names, as many in each third of the slots (one per node, the way
    redis-cli hands slots to three masters)."""
    names: list[str] = []
    for third in range(3):
        low, high = third * 16384 // 3, (third + 1) * 16384 // 3
        found = (f"provider-{i}/model" for i in range(10_000))
        names += [n for n in found if low <= key_slot(n.encode()) < high][: count // 3]
    return names


DEPLOYMENTS = spread(9)


async def fail_calls(breaker: SharedBreaker, times: int) -> None:
    for _ in range(times):
        permit = await breaker.acquire()
        assert permit is not None
        await breaker.release(permit, Result.FAILURE)


async def on_cluster(make_store: MakeStore, cluster: ClusterRedis) -> tuple[RedisStore, ...]:
    """Two replicas' stores on the cluster, started and sharing one namespace."""
    stores = tuple(make_store(url=cluster.url(namespace="x"), clock=SystemClock()) for _ in "ab")
    await asyncio.gather(*(store.start() for store in stores))
    assert not any(store.degraded for store in stores), [s.last_error for s in stores]
    return stores


def owners(cluster: ClusterRedis, keys: list[str]) -> set[str]:
    """The nodes that own `keys`' slots."""
    client = SyncCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    try:
        return {client.get_node_from_key(key).name for key in keys}
    finally:
        client.close()


async def test_breakers_opened_on_any_node_are_seen_open_by_the_other_store(
    make_store: MakeStore, redis_cluster: ClusterRedis, namespace: str
) -> None:
    """Breakers whose keys live on all three masters open through store A (one script call
    each, on two keys of one slot) and B hears every transition, whichever node published."""
    a, b = await on_cluster(make_store, redis_cluster)
    assert a.describe()["mode"] == "cluster" and a.namespace == namespace
    keys = [f"{namespace}:breaker:{{{name}}}" for name in DEPLOYMENTS]
    assert len(owners(redis_cluster, keys)) == 3
    policy = BreakerPolicy(consecutive_failures=2, open_for=60)
    pairs = [(a.breaker(name, policy), b.breaker(name, policy)) for name in DEPLOYMENTS]
    await asyncio.gather(a.flush(), b.flush())
    for ba, _ in pairs:
        await fail_calls(ba, 2)
    await a.flush()
    await eventually(lambda: all(bb.state is BreakerState.OPEN for _, bb in pairs), within=2.0)
    assert all(ba.state is BreakerState.OPEN for ba, _ in pairs)
    assert (a.redis_errors, b.redis_errors) == (0, 0)


async def test_cool_downs_health_and_leases_are_shared_on_a_cluster(
    make_store: MakeStore, redis_cluster: ClusterRedis
) -> None:
    """Cool-downs and health marks set through A reach B; a lease held by A is refused to B."""
    a, b = await on_cluster(make_store, redis_cluster)
    now = a.clock.now()
    for name in DEPLOYMENTS:
        a.cool_down(name, now + 30)
        a.set_healthy(name, False)
    await a.flush()
    await eventually(
        lambda: all(
            not b.is_healthy(name) and b.cooldown_until(name) > now + 29 for name in DEPLOYMENTS
        ),
        within=2.0,
    )
    assert await a.try_lease("probe:some/job", 5)
    assert not await b.try_lease("probe:some/job", 5)
    assert (a.redis_errors, b.redis_errors) == (0, 0)


async def test_a_retry_budget_is_one_bucket_on_a_cluster(
    make_store: MakeStore, redis_cluster: ClusterRedis
) -> None:
    """Tokens spent through A are gone for B too: the budget's key settles on one node."""
    a, b = await on_cluster(make_store, redis_cluster)
    budget_a = a.budget("chat", ratio=0.0, min_per_second=0.0, burst=5)
    budget_b = b.budget("chat", ratio=0.0, min_per_second=0.0, burst=5)
    assert all(budget_a.spend() for _ in range(5))
    await a.flush()
    budget_b.deposit()  # any change makes B settle with the shared bucket
    await b.flush()
    assert not budget_b.spend()
    assert (a.redis_errors, b.redis_errors) == (0, 0)


async def test_a_quota_is_counted_once_on_a_cluster(
    make_store: MakeStore, redis_cluster: ClusterRedis, namespace: str, clock: FakeClock
) -> None:
    """Calls counted through A, for deployments whose keys live on all three masters, are B's
    count too: a quota's script call touches its two minutes in one slot."""
    url = redis_cluster.url(namespace="x")
    a, b = (make_store(url=url, clock=clock, refresh_interval=3600.0) for _ in "ab")
    await asyncio.gather(a.start(), b.start())
    policy = QuotaPolicy(rpm=3)
    pairs = [(a.quota(name, policy), b.quota(name, policy)) for name in DEPLOYMENTS]
    await asyncio.gather(a.flush(), b.flush())  # both have heard: no calls yet
    for quota_a, _ in pairs:
        for _ in range(3):
            quota_a.sent(clock.now(), 10)
    await a.flush()
    await clock.advance(1.5)
    assert not any(quota_b.exhausted(clock.now()) for _, quota_b in pairs)  # as last heard
    await b.flush()
    assert all(quota_b.exhausted(clock.now()) for _, quota_b in pairs)
    minute = int(clock.wall() // 60)
    keys = [f"{namespace}:quota:{{{name}}}:{minute}" for name in DEPLOYMENTS]
    assert len(owners(redis_cluster, keys)) == 3
    assert (a.redis_errors, b.redis_errors) == (0, 0)
