"""Hedged requests: a slow first attempt is raced by the next candidate."""

from __future__ import annotations

import asyncio

import pytest

from failover import FakeClock, HedgePolicy, Kind, Route, Router
from failover.testing import ScriptedDeployment, fail, ok

HI = {"messages": [{"role": "user", "content": "hi"}]}


def hedged(clock: FakeClock, *deps: ScriptedDeployment, **policy: object) -> Router:
    hedge = HedgePolicy(**{"delay": 0.05, **policy})  # type: ignore[arg-type]
    return Router({"chat": Route(list(deps), hedge=hedge)}, clock=clock)


async def test_backup_answer_wins_after_hedge_delay(clock: FakeClock) -> None:
    """Primary 2 s, backup 10 ms, hedge delay 50 ms: the answer arrives at ~60 ms and the
    primary's call is cancelled without counting as a failure."""
    primary = ScriptedDeployment("primary", ok("slow", latency=2.0), clock=clock)
    backup = ScriptedDeployment("backup", ok("fast", latency=0.01), clock=clock)
    router = hedged(clock, primary, backup)
    async with clock.autojump():
        start = clock.now()
        reply = await router.complete("chat", HI)
        elapsed = clock.now() - start
    assert reply.text == "fast" and reply.deployment == "backup"
    assert elapsed == pytest.approx(0.06)
    assert primary.cancelled == 1
    first, second = reply.trace.attempts
    assert first.cancelled and first.kind is Kind.CANCELLED
    assert second.hedge and second.kind is Kind.OK
    assert router.store.stats("primary").success_rate is None  # not counted either way
    assert router.breaker("primary").counts() == (0, 0)


async def test_no_hedge_when_primary_is_fast(clock: FakeClock) -> None:
    """An answer before the hedge delay means no second request."""
    primary = ScriptedDeployment("primary", ok("p", latency=0.02), clock=clock)
    backup = ScriptedDeployment("backup", clock=clock)
    async with clock.autojump():
        reply = await hedged(clock, primary, backup).complete("chat", HI)
    assert reply.text == "p" and backup.calls == 0


async def test_exhausted_budget_sends_no_hedge(clock: FakeClock) -> None:
    """With the hedge budget spent, the caller waits for the primary: no hedge is sent."""
    primary = ScriptedDeployment("primary", ok("slow", latency=2.0), clock=clock)
    backup = ScriptedDeployment("backup", ok("fast", latency=0.01), clock=clock)
    router = hedged(clock, primary, backup, budget=0.0)
    async with clock.autojump():
        for _ in range(10):  # the burst of 10 tokens is spent by ten hedged requests
            assert (await router.complete("chat", HI)).text == "fast"
        start = clock.now()
        reply = await router.complete("chat", HI)
        elapsed = clock.now() - start
    assert reply.text == "slow"
    assert elapsed == pytest.approx(2.0)
    assert backup.calls == 10
    assert not any(a.hedge for a in reply.trace.attempts)


async def test_failure_during_race_fails_over(clock: FakeClock) -> None:
    """A failing primary in a hedged route fails over at once, like an unhedged one."""
    primary = ScriptedDeployment("primary", fail(500, latency=0.01), clock=clock)
    backup = ScriptedDeployment("backup", ok("b", latency=0.01), clock=clock)
    async with clock.autojump():
        start = clock.now()
        reply = await hedged(clock, primary, backup).complete("chat", HI)
    assert reply.text == "b"
    assert clock.now() - start == pytest.approx(0.02)
    assert not reply.trace.attempts[1].hedge


async def test_p95_delay_uses_observed_latency(clock: FakeClock) -> None:
    """With delay=p95 the hedge waits for the primary's observed p95 latency."""
    primary = ScriptedDeployment("primary", ok("p", latency=0.1), clock=clock)
    backup = ScriptedDeployment("backup", ok("b", latency=0.01), clock=clock)
    router = hedged(clock, primary, backup, delay="p95", budget=1.0)
    async with clock.autojump():
        for _ in range(25):
            await router.complete("chat", HI)
        assert backup.calls == 0  # p95 = 100 ms: the primary always answers first
        primary.script(ok("p", latency=5.0))
        start = clock.now()
        reply = await router.complete("chat", HI)
    assert reply.text == "b"
    assert clock.now() - start == pytest.approx(0.11)


async def test_bad_request_in_race_is_returned(clock: FakeClock) -> None:
    """A caller fault during a hedged race is returned and the other attempts cancelled."""
    from failover import RequestRejected

    primary = ScriptedDeployment("primary", ok("slow", latency=1.0), clock=clock)
    backup = ScriptedDeployment("backup", fail(400, latency=0.01), clock=clock)
    async with clock.autojump():
        with pytest.raises(RequestRejected):
            await hedged(clock, primary, backup).complete("chat", HI)
    assert primary.cancelled == 1


async def test_a_tied_hedge_loser_gives_back_its_concurrency_slot(clock: FakeClock) -> None:
    """Primary and hedge reach first content together; the stream not returned is released."""
    primary = ScriptedDeployment("primary", ok("p", latency=2.0), clock=clock)
    backup = ScriptedDeployment("backup", ok("b", latency=1.0), clock=clock)
    router = hedged(clock, primary, backup, delay=1.0)
    opening = asyncio.ensure_future(router.open_stream("chat", {**HI, "stream": True}))
    await clock.advance(0)  # the primary starts at t=0
    await clock.advance(1.0)  # the hedge starts at t=1 and, like the primary, answers at t=2
    await clock.advance(1.0)
    reply = await opening
    async for _ in reply:
        pass
    assert backup.calls == 1  # the race really was run
    loser = "backup" if reply.deployment == "primary" else "primary"
    assert router.concurrency(loser).in_flight == 0
