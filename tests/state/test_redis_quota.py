"""Replicas on one Redis count a deployment's rpm / tpm together: two routers, one limit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis
from state_helpers import MakeStore, eventually

from failover import FakeClock, Route, Router
from failover.quota import QuotaPolicy, estimate_tokens
from failover.reply import Reply
from failover.state.redis import RedisStore
from failover.testing import ScriptedDeployment
from failover.trace import Skip
from redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)

MINUTE_START = 1_700_000_040.0  # unix time divisible by 60: a wall-clock minute begins
HI = {"messages": [{"role": "user", "content": "hi"}]}
# `turn` runs the flushers at chosen moments of the fake clock; no background flush or re-read
# runs meanwhile (a read made at the same fake instant as a call elsewhere would pass for fresh)
BY_HAND = {"flush_interval": 3600.0, "refresh_interval": 3600.0}


@pytest.fixture
def clock() -> FakeClock:
    """Virtual time whose wall clock starts as a minute begins (Redis counts per minute)."""
    return FakeClock(wall_start=MINUTE_START)


async def started(*stores: RedisStore) -> None:
    await asyncio.gather(*(store.start() for store in stores))
    assert not any(store.degraded for store in stores), [s.last_error for s in stores]


def replica(
    store: RedisStore, clock: FakeClock, *, rpm: int | None = None, tpm: int | None = None
) -> Router:
    """One replica's router: a primary with the limits given, and a backup without."""
    primary = ScriptedDeployment("primary", clock=clock)
    primary.rpm, primary.tpm = rpm, tpm
    backup = ScriptedDeployment("backup", clock=clock)
    return Router({"chat": Route([primary, backup])}, store=store, clock=clock)


async def turn(
    router: Router, stores: Sequence[RedisStore], clock: FakeClock, request: dict[str, object] = HI
) -> Reply:
    """One request through `router`; then its replica's flusher sends the call and every other
    replica's flusher runs, as each does every few milliseconds while it serves; then two seconds
    pass."""
    reply = await router.complete("chat", request)
    for store in sorted(stores, key=lambda s: s is not router.store):
        await store.flush()
    await clock.advance(2)
    return reply


async def test_two_replicas_send_the_rpm_together_not_each(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """With rpm 10 and two replicas taking turns, the primary gets 10 calls in the minute (not
    10 each); every later request goes to the backup, the primary skipped for its quota."""
    a, b = make_store(**BY_HAND), make_store(**BY_HAND)
    await started(a, b)
    router_a, router_b = replica(a, clock, rpm=10), replica(b, clock, rpm=10)
    replies = [await turn(r, (a, b), clock) for _ in range(10) for r in (router_a, router_b)]
    assert [r.deployment for r in replies] == ["primary"] * 10 + ["backup"] * 10
    assert all(r.trace.attempts[0].skipped is Skip.QUOTA for r in replies[10:])


async def test_the_count_frees_up_as_the_minute_slides(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """Once two replicas have spent rpm 10, a minute later on the stores' clock both send to the
    primary again."""
    a, b = make_store(**BY_HAND), make_store(**BY_HAND)
    await started(a, b)
    await clock.advance(30)  # the calls fall in the second half of a minute
    router_a, router_b = replica(a, clock, rpm=10), replica(b, clock, rpm=10)
    spent = [await turn(r, (a, b), clock) for _ in range(6) for r in (router_a, router_b)]
    assert [r.deployment for r in spent] == ["primary"] * 10 + ["backup"] * 2
    await clock.advance(60)
    assert (await turn(router_a, (a, b), clock)).deployment == "primary"
    assert (await turn(router_b, (a, b), clock)).deployment == "primary"


async def test_two_replicas_spend_the_tpm_together(make_store: MakeStore, clock: FakeClock) -> None:
    """Each call needs 40 tokens of a 100-token minute: two calls go out from both replicas
    together, not two from each."""
    a, b = make_store(**BY_HAND), make_store(**BY_HAND)
    await started(a, b)
    request = {**HI, "max_tokens": 40 - estimate_tokens(HI)}
    assert estimate_tokens(request) == 40
    router_a, router_b = replica(a, clock, tpm=100), replica(b, clock, tpm=100)
    replies = [
        await turn(r, (a, b), clock, request) for _ in range(2) for r in (router_a, router_b)
    ]
    assert [r.deployment for r in replies] == ["primary", "primary", "backup", "backup"]
    assert replies[2].trace.attempts[0].skipped is Skip.QUOTA


async def test_replicas_count_alone_while_redis_is_away(
    make_store: MakeStore, own_redis: RedisServer, clock: FakeClock
) -> None:
    """With Redis gone each replica counts its own calls only, as on memory: rpm 4 spent two
    and two together becomes two more for each."""
    a, b = (make_store(url=own_redis.url, **BY_HAND) for _ in "ab")
    await started(a, b)
    router_a, router_b = replica(a, clock, rpm=4), replica(b, clock, rpm=4)
    shared = [await turn(r, (a, b), clock) for _ in range(3) for r in (router_a, router_b)]
    assert [r.deployment for r in shared] == ["primary"] * 4 + ["backup"] * 2
    own_redis.kill()
    await eventually(lambda: a.degraded and b.degraded, within=2.0)
    alone = [await turn(r, (a, b), clock) for _ in range(3) for r in (router_a, router_b)]
    assert [r.deployment for r in alone] == ["primary"] * 4 + ["backup"] * 2


async def test_a_count_over_a_second_old_is_read_again(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """A replica consulting a count it heard over a second ago decides on it at once, and its
    background flusher reads the calls other replicas made meanwhile."""
    a, b = make_store(refresh_interval=3600.0), make_store(refresh_interval=3600.0)
    await started(a, b)
    policy = QuotaPolicy(rpm=3)
    quota_a, quota_b = a.quota("p/m", policy), b.quota("p/m", policy)
    await asyncio.gather(a.flush(), b.flush())  # both have heard: no calls yet
    for _ in range(3):
        quota_a.sent(clock.now(), 1)
    await a.flush()
    await clock.advance(1.5)
    assert not quota_b.exhausted(clock.now())  # never waits on Redis
    await eventually(lambda: quota_b.exhausted(clock.now()))


async def test_a_minutes_count_expires_after_two_minutes(
    make_store: MakeStore, redis_server: RedisServer, namespace: str, clock: FakeClock
) -> None:
    """A quota keeps one hash per deployment and minute, gone two minutes after its last call."""
    store = make_store()
    await started(store)
    store.quota("p/m", QuotaPolicy(rpm=5)).sent(clock.now(), 7)
    await store.flush()
    key = f"{namespace}:quota:p/m:{int(clock.wall() // 60)}"
    async with Redis.from_url(redis_server.url, decode_responses=True) as client:
        assert await client.hgetall(key) == {"r": "1", "t": "7"}
        assert 0 < await client.pttl(key) <= 120_000
