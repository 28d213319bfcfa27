"""Many requests at once: against a dead primary callers see no errors and the primary sees
only what the breaker lets through; a burst above the concurrency limit is admitted as fast
as the deployment answers."""

from __future__ import annotations

import asyncio

from failover import BreakerPolicy, BreakerState, FakeClock, RetryPolicy, Route, Router
from failover.resilience.concurrency import ConcurrencyPolicy
from failover.testing import ScriptedDeployment, fail, ok

HI = {"messages": [{"role": "user", "content": "hi"}]}


async def test_200_concurrent_calls_with_dead_primary(clock: FakeClock) -> None:
    """200 concurrent calls, primary refusing connections: zero caller errors, and the
    primary receives at most consecutive_failures + half_open_calls calls per open period."""
    policy = BreakerPolicy(
        consecutive_failures=3, half_open_calls=1, open_for=5, jitter=0, max_open_for=5
    )
    primary = ScriptedDeployment("primary", fail(502), clock=clock)
    backup = ScriptedDeployment("backup", ok("backup", latency=0.05), clock=clock)
    router = Router(
        {"chat": Route([primary, backup])},
        clock=clock,
        breaker=policy,
        retry=RetryPolicy(attempts=2, base=0.01, max_backoff=0.05),
    )
    opened_at: list[float] = []
    router.store.subscribe(lambda e: opened_at.append(e.at) if e.new is BreakerState.OPEN else None)
    calls_per_period: list[int] = []
    async with clock.autojump():
        for _wave in range(4):  # four open periods, 200 concurrent callers each
            before = primary.calls
            results = await asyncio.gather(
                *(router.complete("chat", HI) for _ in range(200)), return_exceptions=True
            )
            assert [r for r in results if isinstance(r, BaseException)] == []
            assert all(r.text == "backup" for r in results)  # type: ignore[union-attr]
            calls_per_period.append(primary.calls - before)
            await clock.advance(5)  # let the open period end
    assert calls_per_period[0] <= policy.consecutive_failures + policy.half_open_calls
    assert all(n <= policy.half_open_calls for n in calls_per_period[1:])
    assert len(opened_at) == 4
    assert backup.calls == 800


async def test_concurrent_probe_is_exactly_one(clock: FakeClock) -> None:
    """When the open period ends under concurrent load, exactly half_open_calls probes go out."""
    policy = BreakerPolicy(consecutive_failures=1, half_open_calls=1, open_for=1, jitter=0)
    primary = ScriptedDeployment("primary", fail(500), clock=clock)
    backup = ScriptedDeployment("backup", clock=clock)
    router = Router(
        {"chat": Route([primary, backup], retry=RetryPolicy(attempts=1))},
        clock=clock,
        breaker=policy,
    )
    await router.complete("chat", HI)
    primary.script(ok("slow recovery", latency=1.0))
    await clock.advance(1)
    async with clock.autojump():
        results = await asyncio.gather(*(router.complete("chat", HI) for _ in range(50)))
    assert primary.calls == 2  # the failure that opened it, then one probe
    assert sum(r.deployment == "primary" for r in results) == 1
    assert router.breaker("primary").state is BreakerState.CLOSED


async def test_a_burst_of_long_streams_is_admitted_in_doubling_rounds(clock: FakeClock) -> None:
    """200 streams of a minute each, opened at once against an initial limit of 8, half a
    second to first content: the room doubles every round of first answers, so all are in
    within five rounds, none waits for a stream to end."""
    slow = ok(chunks=("a", " b", " c"), latency=0.5, chunk_gap=30.0)
    only = ScriptedDeployment("only", slow, clock=clock)
    router = Router(
        {"chat": Route([only])},
        clock=clock,
        concurrency=ConcurrencyPolicy(initial=8, min_limit=1),
    )
    async with clock.autojump():
        start = clock.now()
        replies = await asyncio.gather(*(router.open_stream("chat", HI) for _ in range(200)))
        opened = clock.now() - start
    assert opened <= 5 * 0.5 + 0.01  # 8 + 16 + 32 + 64 + 128 >= 200
    assert router.concurrency("only").in_flight == 200
    for reply in replies:
        await reply.aclose()
