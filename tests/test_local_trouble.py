"""Local trouble is not a provider failure; a busy deployment is passed over or waited for."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from failover import BreakerPolicy, DeadlineExceeded, FakeClock, Route, Router, Timeouts
from failover._local import CURRENT_CALL, LOCAL_LAG, CallInfo, LoopLag, local_cause
from failover.kinds import Kind
from failover.resilience.breaker import BreakerState
from failover.resilience.concurrency import ConcurrencyPolicy
from failover.testing import ScriptedDeployment, fail, ok
from failover.trace import Skip
from failover.types import Completion

HI = {"messages": [{"role": "user", "content": "hi"}]}


async def test_a_timeout_while_the_loop_lagged_is_not_the_deployments(clock: FakeClock) -> None:
    """A call that timed out while the event loop ran seconds late is labelled local and
    does not count against the breaker."""
    primary = ScriptedDeployment("primary", fail(Kind.TIMEOUT), clock=clock)
    backup = ScriptedDeployment("backup", clock=clock)
    router = Router(
        {"chat": Route([primary, backup])},
        clock=clock,
        breaker=BreakerPolicy(consecutive_failures=1),
    )
    loop = asyncio.get_running_loop()
    router.lag.note(loop.time() + 60, 2.0)  # a lag sample inside every call below
    reply = await router.complete("chat", HI)
    first = reply.trace.attempts[0]
    assert (first.kind, first.local) == (Kind.TIMEOUT, "loop_lag")
    assert router.breaker("primary").state is BreakerState.CLOSED
    assert router.store.stats("primary").success_rate is None


async def test_a_timeout_without_lag_is_the_deployments(clock: FakeClock) -> None:
    """The same timeout on a healthy process opens the breaker."""
    primary = ScriptedDeployment("primary", fail(Kind.TIMEOUT), clock=clock)
    router = Router(
        {"chat": Route([primary, ScriptedDeployment("backup", clock=clock)])},
        clock=clock,
        breaker=BreakerPolicy(consecutive_failures=1),
    )
    reply = await router.complete("chat", HI)
    assert reply.trace.attempts[0].local is None
    assert router.breaker("primary").state is BreakerState.OPEN


async def test_a_call_stuck_in_our_own_pool_is_not_the_deployments(clock: FakeClock) -> None:
    """A call that timed out while still waiting for one of our connections failed locally."""

    class Pooled(ScriptedDeployment):
        async def complete(self, request: dict[str, Any]) -> Completion:
            info = CURRENT_CALL.get()
            assert info is not None
            info.queued = True  # what the transport notes while a connection is awaited
            await self.clock.sleep(100)
            raise AssertionError("unreachable")

    primary = Pooled("primary", clock=clock)
    router = Router(
        {"chat": Route([primary, ScriptedDeployment("backup", clock=clock)])},
        clock=clock,
        timeouts=Timeouts(attempt=1, learn=None),
        breaker=BreakerPolicy(consecutive_failures=1),
    )
    async with clock.autojump():
        reply = await router.complete("chat", HI)
    assert reply.trace.attempts[0].local == "pool_wait"
    assert router.breaker("primary").state is BreakerState.CLOSED


async def test_a_busy_deployment_overflows_to_the_next(clock: FakeClock) -> None:
    """At its concurrency limit, a deployment is passed over for the next candidate."""
    primary = ScriptedDeployment("primary", ok("p", latency=10), clock=clock)
    backup = ScriptedDeployment("backup", ok("b", latency=10), clock=clock)
    policy = ConcurrencyPolicy(initial=2, min_limit=1)
    router = Router({"chat": Route([primary, backup])}, clock=clock, concurrency=policy)
    async with clock.autojump():
        replies = await asyncio.gather(*(router.complete("chat", HI) for _ in range(4)))
    assert sorted(r.deployment for r in replies) == ["backup", "backup", "primary", "primary"]
    assert any(a.skipped is Skip.SATURATED for r in replies for a in r.trace.attempts)


async def test_when_every_candidate_is_busy_the_request_waits(clock: FakeClock) -> None:
    """No free slot anywhere: requests wait for one rather than fail."""
    only = ScriptedDeployment("only", ok("x", latency=5), clock=clock)
    policy = ConcurrencyPolicy(initial=2, min_limit=1)
    router = Router({"chat": Route([only])}, clock=clock, concurrency=policy)
    async with clock.autojump():
        start = clock.now()
        replies = await asyncio.gather(*(router.complete("chat", HI) for _ in range(4)))
        assert clock.now() - start == pytest.approx(10)  # two rounds of two
    assert all(r.text == "x" for r in replies)
    assert only.max_in_flight == 2


async def test_an_opened_breaker_eases_the_deployment_back_in(clock: FakeClock) -> None:
    """When a deployment's breaker opens, its limit restarts at min_limit."""
    primary = ScriptedDeployment("primary", fail(500), clock=clock)
    router = Router(
        {"chat": Route([primary, ScriptedDeployment("backup", clock=clock)])},
        clock=clock,
        breaker=BreakerPolicy(consecutive_failures=1),
        concurrency=ConcurrencyPolicy(initial=50, min_limit=3),
    )
    async with clock.autojump():
        await router.complete("chat", HI)
    assert router.breaker("primary").state is BreakerState.OPEN
    assert int(router.concurrency("primary").limit) == 3


async def test_a_deadline_reached_as_the_slot_frees_is_a_deadline(clock: FakeClock) -> None:
    """Waiting for a busy deployment's slot until the deadline ends in DeadlineExceeded."""
    slow = ScriptedDeployment("slow", ok(latency=5.0), clock=clock)
    router = Router(
        {"chat": Route([slow])},
        clock=clock,
        concurrency=ConcurrencyPolicy(initial=1, min_limit=1),
    )
    first = asyncio.ensure_future(router.complete("chat", HI))
    await clock.advance(0)  # it holds the only slot until t=5
    second = asyncio.ensure_future(router.complete("chat", HI, timeout=5.0))
    await clock.advance(0)  # it waits for the slot until its deadline, also t=5
    await clock.advance(5.0)
    assert (await first).text == "ok"
    with pytest.raises(DeadlineExceeded):
        await second


def test_the_rule_blames_our_pool_when_the_wait_took_most_of_the_call() -> None:
    """A failure after a call spent most of its time waiting for our own connection is local;
    a short wait in a long call is not."""
    assert local_cause(Kind.TIMEOUT, CallInfo(0.0, pool_wait=0.8), 1.0, None) == "pool_wait"
    assert local_cause(Kind.TIMEOUT, CallInfo(0.0, pool_wait=0.1), 1.0, None) is None


def test_the_rule_never_excuses_what_the_provider_said() -> None:
    """A rate limit or an auth failure is the provider's answer, whatever our state."""
    lag = LoopLag()
    lag.note(10.0, 5.0)
    info = CallInfo(0.0, queued=True)
    assert local_cause(Kind.RATE_LIMITED, info, 1.0, lag) is None
    assert local_cause(Kind.AUTH, info, 1.0, lag) is None


def test_the_rule_blames_loop_lag_from_the_threshold_on() -> None:
    """Lag during the call at or above the threshold makes its failure local; before the
    call started it does not count."""
    lag = LoopLag()
    lag.note(5.0, LOCAL_LAG)
    assert local_cause(Kind.CONNECTION, CallInfo(4.0), 1.0, lag) == "loop_lag"
    assert local_cause(Kind.CONNECTION, CallInfo(6.0), 1.0, lag) is None


def test_recent_lag_is_the_worst_of_the_last_seconds() -> None:
    """`recent(s)` is the largest lag among the samples of the last `s` seconds."""
    lag = LoopLag()
    for at, late in [(1.0, 0.9), (8.0, 0.2), (10.0, 0.01)]:
        lag.note(at, late)
    assert (lag.recent(5.0), lag.recent(10.0), lag.current) == (0.2, 0.9, 0.01)


async def test_the_lag_sampler_says_whether_it_runs() -> None:
    """`running` is true between `start` and `stop`."""
    lag = LoopLag()
    assert not lag.running
    lag.start()
    assert lag.running
    await lag.stop()
    assert not lag.running
