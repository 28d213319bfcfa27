"""Stores on Sentinel-managed Redis follow a failover: degraded for the switch, then shared
again on the new master. Real processes: a primary, its replica and three sentinels (quorum
2, a master is down after 1 s without answering), password-protected on both sides.

Timings are printed (run with -s).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from state_helpers import eventually, promoted, require_redis_server

from failover import BreakerPolicy, BreakerState, SystemClock
from failover.resilience.breaker import Result
from failover.state.redis import RedisStore
from failover.state.shared import SharedBreaker
from redis_server import Certificates, RedisServer, SentinelRedis

pytestmark = pytest.mark.timeout(60)

POLICY = BreakerPolicy(consecutive_failures=3, open_for=60, jitter=0)
BACKOFF_MAX = 1.0  # the supervisor's longest wait between reconnection attempts
REFRESH = 0.5  # how often a store re-reads the state and asks the sentinels for the master
# a loaded test machine must not look like an outage: TLS and Sentinel add handshakes
TIMEOUTS = {"local_timeout": 0.5, "sync_timeout": 1.0}


@pytest.fixture
def sentinel_redis() -> Iterator[SentinelRedis]:
    """A primary, its replica and three sentinels of this test's own. Missing: a failure."""
    require_redis_server()
    with SentinelRedis(password="redis-secret", sentinel_password="sentinel-secret") as redis:
        yield redis


@pytest.fixture
async def stores(sentinel_redis: SentinelRedis) -> AsyncIterator[list[RedisStore]]:
    """Two replicas' stores on the sentinels' URL, one namespace, real time."""
    url = sentinel_redis.url(namespace=f"t{uuid.uuid4().hex[:8]}")
    made = [
        RedisStore(url, clock=SystemClock(), refresh_interval=REFRESH, **TIMEOUTS) for _ in range(2)
    ]
    await asyncio.gather(*(store.start() for store in made))
    await eventually(lambda: not any(store.degraded for store in made), within=5.0)
    yield made
    for store in made:
        await store.close()


class Watch:
    """Polls `store.degraded` every 5 ms and keeps when it went degraded and came back."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.spans: list[list[float]] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            degraded = self.store.degraded
            if degraded and (not self.spans or len(self.spans[-1]) == 2):
                self.spans.append([time.perf_counter()])
            elif not degraded and self.spans and len(self.spans[-1]) == 1:
                self.spans[-1].append(time.perf_counter())
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


async def fail_calls(breaker: SharedBreaker, times: int) -> None:
    for _ in range(times):
        permit = await breaker.acquire()
        assert permit is not None
        await breaker.release(permit, Result.FAILURE)


def cached_scripts(server: RedisServer) -> int:
    """How many Lua scripts `server` holds."""
    with server.client() as client:
        return int(client.info("memory")["number_of_cached_scripts"])


def connected(server: RedisServer, stores: list[RedisStore]) -> int:
    """How many connections of `stores` `server` has (they are named after the replica)."""
    with server.client(decode_responses=True) as client:
        names = [entry["name"] for entry in client.client_list()]
    return sum(1 for name in names for s in stores if name == f"failover:{s.replica_id}")


async def test_a_killed_primary_is_replaced_and_the_stores_share_state_on_the_new_one(
    sentinel_redis: SentinelRedis, stores: list[RedisStore]
) -> None:
    """SIGKILL the primary: both stores go degraded at once, are back on the promoted replica
    within the reconnection backoff of the promotion (the script loaded there, which
    replication does not copy), and a breaker opened through A is OPEN on B again."""
    a, b = stores
    hosts = ",".join(f"127.0.0.1:{s.port}" for s in sentinel_redis.sentinels)
    assert a.describe()["mode"] == "sentinel"
    assert a.describe()["redis"] == f"redis+sentinel://{hosts}/mymaster/0"
    assert cached_scripts(sentinel_redis.replica) == 0  # SCRIPT LOAD is not replicated
    old = sentinel_redis.master()
    assert old == ("127.0.0.1", sentinel_redis.primary.port)
    watches = [Watch(a), Watch(b)]
    killed = time.perf_counter()
    await asyncio.to_thread(sentinel_redis.primary.kill)
    switched = await promoted(sentinel_redis, old, within=15)
    await eventually(lambda: all(w.spans and len(w.spans[-1]) == 2 for w in watches), within=5)
    for watch in watches:
        await watch.stop()
    assert sentinel_redis.master() == ("127.0.0.1", sentinel_redis.replica.port)
    print(
        f"\npromoted {switched - killed:.2f} s after the kill; degraded "
        + ", ".join(f"{s[0] - killed:.2f}-{s[1] - killed:.2f} s" for w in watches for s in w.spans)
        + " after it"
    )
    for watch in watches:
        assert len(watch.spans) == 1, watch.spans  # one outage, not a flapping connection
        went, back = watch.spans[0]
        assert went - killed < 0.5  # the subscription's connection broke at once
        assert back - switched < BACKOFF_MAX + 0.5
    assert cached_scripts(sentinel_redis.replica) == 1

    ba, bb = a.breaker("p/m", POLICY), b.breaker("p/m", POLICY)
    await asyncio.gather(a.flush(), b.flush())
    await fail_calls(ba, 3)
    await eventually(lambda: bb.state is BreakerState.OPEN, within=1.0)
    assert a.redis_errors >= 1 and not a.degraded and not b.degraded


async def test_a_master_demoted_while_in_use_is_left_for_the_new_one(
    sentinel_redis: SentinelRedis, stores: list[RedisStore]
) -> None:
    """SENTINEL FAILOVER leaves the old master running (and writable, until the sentinels
    turn it into a replica): within a refresh interval both stores leave it for the master
    the sentinels name, and share state there."""
    a, b = stores
    old, demoted, new = sentinel_redis.master(), sentinel_redis.primary, sentinel_redis.replica
    assert old is not None and connected(demoted, stores) >= 2  # each store's subscription
    with sentinel_redis.sentinels[0].client() as client:
        client.execute_command("SENTINEL", "FAILOVER", sentinel_redis.service)
    switched = await promoted(sentinel_redis, old, within=15)
    took = await eventually(
        lambda: (
            connected(demoted, stores) == 0
            and connected(new, stores) >= 2
            and not a.degraded
            and not b.degraded
        ),
        within=REFRESH + BACKOFF_MAX + 1.0,
    )
    print(f"\nboth stores on the new master {took:.2f} s after the sentinels named it")

    ba, bb = a.breaker("p/m", POLICY), b.breaker("p/m", POLICY)
    await asyncio.gather(a.flush(), b.flush())
    await fail_calls(ba, 3)
    await eventually(lambda: bb.state is BreakerState.OPEN, within=1.0)
    with new.client() as client:
        assert client.exists(f"{a.namespace}:breaker:p/m")
    assert time.perf_counter() > switched


async def test_readonly_answers_count_as_redis_trouble(own_redis: RedisServer) -> None:
    """A store talking to a replica (as to a demoted master) reads fine, but its first write
    gets READONLY: it goes degraded, names the error, and judges the outcome locally."""
    with RedisServer(args=["--replicaof", "127.0.0.1", str(own_redis.port)]) as replica:
        store = RedisStore(replica.url, clock=SystemClock(), namespace="readonly")
        try:
            await store.start()
            breaker = store.breaker("p/m", BreakerPolicy(consecutive_failures=1))
            await store.flush()  # reading the breaker works on a replica
            assert not store.degraded
            await fail_calls(breaker, 1)
            await store.flush()
            assert store.degraded and store.redis_errors >= 1
            assert store.last_error is not None and "read only replica" in store.last_error
            assert breaker.state is BreakerState.OPEN  # the failure that did not reach Redis
        finally:
            await store.close()


async def test_tls_sentinels_and_redis_are_verified_against_the_given_ca(tmp_path: Path) -> None:
    """rediss+sentinel:// with ssl_ca_certs= speaks TLS to the sentinels and to Redis: two
    stores share a breaker; with another CA no sentinel is trusted and the store stays
    degraded."""
    require_redis_server()
    certs = Certificates.make(tmp_path)
    (tmp_path / "other").mkdir()
    stranger = Certificates.make(tmp_path / "other")
    with SentinelRedis(password="redis-secret", sentinel_password="s-secret", tls=certs) as redis:
        url = redis.url(namespace=f"t{uuid.uuid4().hex[:8]}")
        assert url.startswith("rediss+sentinel://")
        made = [RedisStore(url, clock=SystemClock(), **TIMEOUTS) for _ in range(2)]
        wrong = RedisStore(url.replace(str(certs.ca), str(stranger.ca)), clock=SystemClock())
        try:
            await asyncio.gather(*(store.start() for store in [*made, wrong]))
            a, b = made
            await eventually(lambda: not a.degraded and not b.degraded, within=5.0)
            ba, bb = a.breaker("p/m", POLICY), b.breaker("p/m", POLICY)
            await asyncio.gather(a.flush(), b.flush())
            await fail_calls(ba, 3)
            await eventually(lambda: bb.state is BreakerState.OPEN, within=1.0)
            assert wrong.degraded and wrong.last_error is not None
            assert wrong.last_error.startswith("MasterNotFoundError: No master found")
        finally:
            for store in [*made, wrong]:
                await store.close()
