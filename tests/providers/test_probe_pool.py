"""Health probes over each provider's own small pool, judged by the router's local rule:
a busy provider is probed at once, and a probe that failed because of our own saturation
marks nothing unhealthy. Real adapters over HTTP to fake OpenAI servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from failover import FakeClock, Route, Router
from failover.config import HealthConfig
from failover.health import HealthChecker
from failover.kinds import Kind
from failover.providers import OpenAIAdapter
from failover.transport import Transport
from fakes import Delay, FakeOpenAI, Hang, Reply

HI = {"messages": [{"role": "user", "content": "hi"}]}
HEALTH = HealthConfig(timeout=2.0, unhealthy_after=1)
REAL_WAIT = 10.0  # real seconds any one step may take before the test gives up


def adapter(server: FakeOpenAI, transport: Transport, model: str = "gpt-4o") -> OpenAIAdapter:
    """An adapter of provider "fake" whose traffic pool has a single connection."""
    return OpenAIAdapter(
        model=model,
        base_url=server.base_url,
        options={"max_connections": 1},
        transport=transport,
        provider_name="fake",
    )


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


async def test_a_full_traffic_pool_does_not_delay_a_probe(
    server: FakeOpenAI, transport: Transport
) -> None:
    """With the provider's only traffic connection held by a slow call, its probe is answered
    at once over the probe pool and passes."""
    deployment = adapter(server, transport)
    router = Router({"chat": Route([deployment])})
    checker = HealthChecker(router, HEALTH)
    gate = asyncio.Event()
    server.push(Delay(gate, Reply(FakeOpenAI.completion("slow"))), path="/chat/completions")
    slow = asyncio.create_task(deployment.complete(HI))
    await server.wait_for_requests(1)
    result = await asyncio.wait_for(checker.check(deployment.name), REAL_WAIT)
    traffic, probes = transport.client("fake"), transport.probe_client("fake")
    assert result.ok is True and result.kind is Kind.OK
    assert (traffic.stats.in_use, probes.stats.queued, sum(probes.stats.wait_counts)) == (1, 0, 1)
    gate.set()
    await slow


async def test_a_probe_failing_while_the_loop_lags_changes_nothing(
    server: FakeOpenAI, transport: Transport
) -> None:
    """A probe that fails while the event loop runs seconds late proves nothing: labelled
    `loop_lag`, and the deployment stays healthy (one failure would mark it unhealthy)."""
    deployment = adapter(server, transport)
    router = Router({"chat": Route([deployment])})
    checker = HealthChecker(router, HEALTH)
    router.lag.note(asyncio.get_running_loop().time() + 60, 2.0)  # lag during the probe
    server.push(FakeOpenAI.error(502, "bad gateway", type="server_error"))
    result = await asyncio.wait_for(checker.check(deployment.name), REAL_WAIT)
    assert (result.kind, result.ok, result.local) == (Kind.SERVER_ERROR, None, "loop_lag")
    assert router.store.is_healthy(deployment.name)


async def test_the_same_probe_failure_without_lag_marks_it_unhealthy(
    server: FakeOpenAI, transport: Transport
) -> None:
    """Without local trouble, the same failed probe counts against the deployment."""
    deployment = adapter(server, transport)
    router = Router({"chat": Route([deployment])})
    checker = HealthChecker(router, HEALTH)
    server.push(FakeOpenAI.error(502, "bad gateway", type="server_error"))
    result = await asyncio.wait_for(checker.check(deployment.name), REAL_WAIT)
    assert (result.kind, result.ok, result.local) == (Kind.SERVER_ERROR, False, None)
    assert not router.store.is_healthy(deployment.name)


async def test_a_probe_timed_out_in_our_own_probe_pool_is_local(
    server: FakeOpenAI, clock: FakeClock
) -> None:
    """With a probe pool of one connection, the probe that waited for it behind a hung probe
    times out as local `pool_wait`; the hung one counts as the provider's timeout."""
    async with Transport(probe_limit=1) as transport:
        first, second = adapter(server, transport), adapter(server, transport, "gpt-4o-mini")
        router = Router({"chat": Route([first, second])}, clock=clock)
        checker = HealthChecker(router, HEALTH)
        server.push(Hang())
        probes = asyncio.create_task(checker.check_all())
        await server.wait_for_requests(1)
        pool = transport.probe_client("fake").stats
        for _ in range(1000):
            if pool.waiting:
                break
            await asyncio.sleep(0)
        assert pool.waiting == 1
        await clock.advance(HEALTH.timeout)
        results = await asyncio.wait_for(probes, REAL_WAIT)
    outcomes = sorted((r.ok is False, r.local) for r in results.values())
    assert outcomes == [(False, "pool_wait"), (True, None)]
    assert all(r.kind is Kind.TIMEOUT for r in results.values())
