"""Connection pools without hidden queues: waits are counted, told to the call, and probes
have a pool of their own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from failover._local import CURRENT_CALL, CallInfo
from failover.transport import MAX_CONNECTIONS, PROBE_CONNECTIONS, HTTPClient, Transport
from fakes import Delay, FakeServer, Reply, Stream, sse

T = TypeVar("T")


async def as_call(info: CallInfo, request: Awaitable[T]) -> T:
    """Await `request` as the attempt `info` (what `Attempts.send` sets around each call)."""
    CURRENT_CALL.set(info)  # a task's context is its own: this does not leak into the test
    return await request


async def until(condition: Callable[[], bool], rounds: int = 1000) -> None:
    """Let the loop run until `condition()` holds (bounded: fails rather than hangs)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


@contextlib.asynccontextmanager
async def held(client: HTTPClient, server: FakeServer) -> AsyncIterator[asyncio.Event]:
    """One slow request holding a connection of `client` until the yielded gate is set."""
    gate = asyncio.Event()
    server.push(Delay(gate, Reply({"slow": True})))
    task = asyncio.create_task(client.request("GET", server.url, headers={}))
    await server.wait_for_requests(len(server.requests) + 1)
    try:
        yield gate
    finally:
        gate.set()
        await task


async def test_a_request_waiting_for_a_full_pool_is_counted(transport: Transport) -> None:
    """With every connection taken, the next request shows as waiting, not in use."""
    async with FakeServer() as server:
        client = transport.client("p", limit=1)
        async with held(client, server):
            second = asyncio.create_task(client.request("GET", server.url, headers={}))
            await until(lambda: client.stats.waiting == 1)
            assert (client.stats.in_use, client.stats.waiting) == (1, 1)
        await second
    assert (client.stats.in_use, client.stats.waiting, client.stats.queued) == (0, 0, 1)


async def test_the_wait_is_written_into_the_call_it_serves(transport: Transport) -> None:
    """A request that waited for a connection adds the wait to its attempt's `pool_wait`."""
    info = CallInfo(started=0.0)
    async with FakeServer() as server:
        client = transport.client("p", limit=1)
        async with held(client, server):
            second = asyncio.create_task(
                as_call(info, client.request("GET", server.url, headers={}))
            )
            await until(lambda: info.queued)
        await second
    assert info.pool_wait > 0 and not info.queued
    assert client.stats.wait_sum >= info.pool_wait


async def test_a_call_cancelled_while_waiting_stays_queued(transport: Transport) -> None:
    """A call that dies waiting for a connection is marked as having failed in our queue,
    and the pool stops counting it as waiting."""
    info = CallInfo(started=0.0)
    async with FakeServer() as server:
        client = transport.client("p", limit=1)
        async with held(client, server):
            waiting = asyncio.create_task(
                as_call(info, client.request("GET", server.url, headers={}))
            )
            await until(lambda: info.queued)
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            assert (client.stats.waiting, client.stats.active) == (0, 1)
    assert info.queued and info.pool_wait > 0


async def test_a_free_connection_means_no_wait(transport: Transport) -> None:
    """A request that found a connection free records a zero wait and is not queued."""
    info = CallInfo(started=0.0)
    async with FakeServer() as server:
        server.push(Reply({"n": 1}))
        client = transport.client("p")
        await as_call(info, client.request("GET", server.url, headers={}))
    assert (info.pool_wait, info.queued, client.stats.queued) == (0.0, False, 0)
    assert client.stats.wait_counts[0] == 1


async def test_a_wait_is_seen_in_a_larger_pool(transport: Transport) -> None:
    """Requests are traced once half the pool is taken, so the one that finds a pool of three
    full is seen waiting."""
    gates = [asyncio.Event() for _ in range(3)]
    async with FakeServer() as server:
        server.push(*(Delay(gate, Reply({"slow": True})) for gate in gates), Reply({"n": 4}))
        client = transport.client("p", limit=3)
        slow = [asyncio.create_task(client.request("GET", server.url, headers={})) for _ in gates]
        await server.wait_for_requests(3)
        fourth = asyncio.create_task(client.request("GET", server.url, headers={}))
        await until(lambda: client.stats.waiting == 1)
        for gate in gates:
            gate.set()
        await asyncio.gather(*slow, fourth)
    assert (client.stats.queued, client.stats.waiting, client.stats.active) == (1, 0, 0)


async def test_a_stream_holds_its_connection_until_it_ends(transport: Transport) -> None:
    """An open stream counts as a connection in use until its context is left."""
    gate = asyncio.Event()
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("[DONE]")], gates={1: gate}))
        client = transport.client("p")
        async with client.stream("GET", server.url, headers={}) as resp:
            assert client.stats.in_use == 1
            gate.set()
            async for _ in resp.events():
                pass
        await client.settle()
    assert client.stats.in_use == 0


async def test_the_default_pool_holds_hundreds_of_streams_without_a_queue() -> None:
    """300 concurrent streams to one provider (more than the old 256 default) all get a
    connection at once: none waits."""
    gate = asyncio.Event()
    count = 300
    async with FakeServer() as server, Transport() as transport:
        server.push(*(Stream([sse("a"), sse("[DONE]")], gates={1: gate}) for _ in range(count)))
        client = transport.client("p")

        async def one() -> None:
            async with client.stream("GET", server.url, headers={}) as resp:
                async for _ in resp.events():
                    pass

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await server.wait_for_requests(count)
        assert (client.stats.in_use, client.stats.waiting) == (count, 0)
        gate.set()
        await asyncio.gather(*tasks)
    assert client.stats.queued == 0
    assert client.stats.limit == MAX_CONNECTIONS


async def test_probes_have_a_small_pool_of_their_own(transport: Transport) -> None:
    """A provider's probe pool is another pool than its traffic's, with its own limit."""
    traffic, probes = transport.client("p"), transport.probe_client("p")
    assert probes is not traffic and probes is transport.probe_client("p")
    assert (probes.stats.pool, probes.stats.limit) == ("probe", PROBE_CONNECTIONS)
    assert [p.pool for p in transport.pools()] == ["traffic", "probe"]


async def test_a_full_traffic_pool_does_not_hold_up_the_probe_pool(
    transport: Transport,
) -> None:
    """With the provider's only traffic connection taken, a request over its probe pool
    gets a connection at once."""
    async with FakeServer() as server:
        traffic = transport.client("p", limit=1)
        async with held(traffic, server):
            server.push(Reply({"models": []}))
            resp = await transport.probe_client("p").request("GET", server.url, headers={})
            assert traffic.stats.in_use == 1
    assert resp.status == 200
    assert transport.probe_client("p").stats.queued == 0
