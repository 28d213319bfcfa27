"""A call that times out waiting for one of our own connections is local trouble: labelled
`pool_wait`, blamed on no deployment, and visible in the metrics while it waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from failover import FakeClock, Router
from failover.config import Config
from failover.errors import RequestFailed
from failover.factory import from_config
from failover.kinds import Kind
from failover.observability import Metrics
from failover.resilience.breaker import BreakerState
from fakes import Delay, FakeOpenAI, Reply

HI = {"messages": [{"role": "user", "content": "hi"}]}
DEPLOYMENT = "fake/gpt-4o"


def config(base_url: str) -> Config:
    """One provider with a single connection, and a breaker that opens on one failure."""
    return Config.model_validate(
        {
            "providers": {
                "fake": {"kind": "openai", "base_url": base_url, "options": {"max_connections": 1}}
            },
            "routes": {"chat": {"deployments": [{"provider": "fake", "model": "gpt-4o"}]}},
            "defaults": {
                "retry": {"attempts": 1},
                "breaker": {"consecutive_failures": 1},
                "timeouts": {"attempt": "30s", "total": "60s", "learn": "off"},
                "health": {"enabled": False},
            },
        }
    )


@contextlib.asynccontextmanager
async def slow_call_holding_the_pool(clock: FakeClock) -> AsyncIterator[tuple[Router, Metrics]]:
    """A router whose provider's only connection is held by a slow call (answered on exit)."""
    gate = asyncio.Event()
    async with FakeOpenAI() as server:
        server.push(Delay(gate, Reply(FakeOpenAI.completion("slow"))))
        router = from_config(config(server.base_url), clock=clock)
        metrics = Metrics(router)
        slow = asyncio.create_task(router.complete("chat", HI))
        await server.wait_for_requests(1)
        try:
            yield router, metrics
        finally:
            gate.set()
            assert (await slow).text == "slow"
            await router.aclose()


async def queue_one(router: Router) -> asyncio.Task[object]:
    """Start a call with a 1-second deadline and wait until it queues for a connection."""
    task: asyncio.Task[object] = asyncio.create_task(router.complete("chat", HI, timeout=1))
    for _ in range(1000):
        if router.pools()[0].waiting:
            return task
        await asyncio.sleep(0)
    raise AssertionError("the call never queued for a connection")


async def test_a_call_timed_out_in_our_pool_is_not_the_providers(clock: FakeClock) -> None:
    """The call that waited for the busy connection times out as local `pool_wait`, and the
    deployment's breaker (one failure opens it) stays closed."""
    async with slow_call_holding_the_pool(clock) as (router, _):
        waiting = await queue_one(router)
        await clock.advance(1)
        with pytest.raises(RequestFailed) as failed:
            await waiting
        attempt = failed.value.trace.attempts[-1]
        assert (attempt.kind, attempt.local) == (Kind.TIMEOUT, "pool_wait")
        assert router.breaker(DEPLOYMENT).state is BreakerState.CLOSED
        assert router.store.stats(DEPLOYMENT).success_rate is None


async def test_the_pool_gauges_show_the_waiting_call(clock: FakeClock) -> None:
    """While the call waits, /metrics shows the provider's pool full and one request waiting."""
    async with slow_call_holding_the_pool(clock) as (router, metrics):
        waiting = await queue_one(router)
        text = metrics.render().decode()
        await clock.advance(1)
        with pytest.raises(RequestFailed):
            await waiting
    labels = '{pool="traffic",provider="fake"}'
    assert f"failover_pool_waiting{labels} 1.0" in text
    assert f"failover_pool_connections{labels} 1.0" in text
    assert f"failover_pool_limit{labels} 1.0" in text


async def test_the_local_failure_is_counted(clock: FakeClock) -> None:
    """The timed-out call is counted in failover_local_failures_total with its reason."""
    async with slow_call_holding_the_pool(clock) as (router, metrics):
        waiting = await queue_one(router)
        await clock.advance(1)
        with pytest.raises(RequestFailed):
            await waiting
        text = metrics.render().decode()
    assert f'failover_local_failures_total{{deployment="{DEPLOYMENT}",reason="pool_wait"}} 1.0' in (
        text
    )
