"""Property: one replica on Redis and one process on memory make the same decisions, step by step.

Hypothesis drives both stores through the same random story (calls and their outcomes, permits
held across transitions, time passing, drains, resets, early probes) and compares what a
router would see after every step. Jitter is off so open periods match to the millisecond.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover import BreakerPolicy, BreakerState, FakeClock, MemoryStore
from failover.resilience.breaker import Permit, Result
from failover.state.base import BreakerLike
from failover.state.redis import RedisStore
from redis_server import RedisServer

POLICY = BreakerPolicy(
    window=5,
    min_calls=3,
    failure_rate=0.5,
    slow_call_rate=0.6,
    slow_call_duration=1.0,
    consecutive_failures=3,
    open_for=10,
    max_open_for=40,
    jitter=0.0,
    half_open_calls=2,
)
RESULTS = st.sampled_from([Result.SUCCESS, Result.FAILURE, Result.IGNORE])
CALL = st.tuples(st.just("call"), RESULTS, st.booleans())
STEPS = st.one_of(
    CALL,
    CALL,
    CALL,
    st.tuples(st.just("take")),
    st.tuples(st.just("give"), RESULTS),
    st.tuples(st.just("wait"), st.sampled_from([0.5, 4.0, 11.0, 25.0, 90.0])),
    st.tuples(st.sampled_from(["force_open", "disable", "reset", "probe_succeeded"])),
)


class Side:
    """One store, its breaker and the permits it holds."""

    def __init__(self, store: MemoryStore | RedisStore) -> None:
        self.store = store
        self.breaker: BreakerLike = store.breaker("p/m", POLICY)
        self.held: list[Permit] = []

    async def step(self, step: tuple[Any, ...]) -> object:
        kind, b = step[0], self.breaker
        if kind == "call":
            permit = await b.acquire()
            if permit is not None:
                await b.release(permit, step[1], duration=2.0 if step[2] else 0.1)
            outcome: object = permit is not None
        elif kind == "take":
            permit = await b.acquire()
            if permit is not None:
                self.held.append(permit)
            outcome = permit is not None
        elif kind == "give":
            outcome = bool(self.held)
            if self.held:
                await b.release(self.held.pop(0), step[1])
        elif kind == "wait":
            outcome = None
        else:
            getattr(b, kind)()
            outcome = None
        if isinstance(self.store, RedisStore):
            await self.store.flush()
        return outcome

    def view(self, clock: FakeClock) -> tuple[Any, ...]:
        b = self.breaker
        until = round(b.open_until - clock.now(), 3) if b.state is BreakerState.OPEN else None  # type: ignore[attr-defined]
        return b.state, b.would_admit(), until


async def story(server: RedisServer, steps: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    namespace = f"eq{uuid.uuid4().hex[:8]}"
    redis_store = RedisStore(server.url, clock=clock, namespace=namespace, local_timeout=0.5)
    memory, redis = Side(MemoryStore(clock=clock)), Side(redis_store)
    try:
        await redis_store.start()
        for number, step in enumerate(steps):
            if step[0] == "wait":
                clock.advance_sync(step[1])
            expected = await memory.step(step)
            got = await redis.step(step)
            where = f"step {number} {step} of {steps}"
            assert got == expected, where
            assert redis.view(clock) == memory.view(clock), where
        assert not redis_store.degraded, redis_store.last_error
    finally:
        await redis_store.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEPS, min_size=1, max_size=40))
def test_redis_decides_like_memory(redis_server: RedisServer, steps: list[tuple[Any, ...]]) -> None:
    """After every step, a lone Redis replica and MemoryStore agree on state and admission."""
    asyncio.run(story(redis_server, steps))
