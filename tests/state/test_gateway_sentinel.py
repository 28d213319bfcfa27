"""Gateway replicas on Sentinel-managed Redis: the primary dies under load, the sentinels
promote its replica, and the replicas keep answering, then share state on the new master.

Two `failover serve` processes (`state: redis+sentinel://...`) in front of fake upstreams,
a Redis primary and its replica, three sentinels (quorum 2, a master is down after 1 s
without answering), passwords on Redis and on the sentinels; all on 127.0.0.1. Timings are
printed (run with -s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from replica_helpers import (
    PRIMARY,
    Client,
    GatewayProcess,
    Upstream,
    breaker_state,
    store_state,
    wait_for_state,
    write_config,
)
from state_helpers import promoted, require_redis_server

from failover.stats import percentile
from redis_server import SentinelRedis

pytestmark = pytest.mark.timeout(90)

RATE = 15.0  # requests per second through each gateway
BACKOFF_MAX = 1.0  # the store's longest wait between reconnection attempts
SYNC_TIMEOUT = 0.5  # the longest a background sync may take


@pytest.fixture
def sentinel_redis() -> Iterator[SentinelRedis]:
    require_redis_server()
    with SentinelRedis(password="redis-secret", sentinel_password="sentinel-secret") as redis:
        yield redis


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[Upstream, Upstream]]:
    primary = await Upstream().start()
    backup = await Upstream(text="Hello from the backup.").start()
    yield primary, backup
    await primary.close()
    await backup.close()


async def paced(port: int, stop: asyncio.Event, results: list[tuple[float, float, int]]) -> None:
    """Chat requests at RATE per second on one kept-alive connection until `stop`: (started,
    latency, status), status 0 for an exception the client saw."""
    async with Client(port) as http:
        next_at = time.perf_counter()
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status = (await http.post_chat()).status
            except Exception:
                status = 0
                await http.close()
            results.append((started, time.perf_counter() - started, status))
            next_at += 1 / RATE
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def watch_degraded(port: int, stop: asyncio.Event, spans: list[list[float]]) -> None:
    """GET /admin/status every 20 ms; each span is [went degraded, came back]."""
    async with Client(port) as http:
        while not stop.is_set():
            degraded = (await store_state(http))["degraded"]
            now = time.perf_counter()
            if degraded and (not spans or len(spans[-1]) == 2):
                spans.append([now])
            elif not degraded and spans and len(spans[-1]) == 1:
                spans[-1].append(now)
            await asyncio.sleep(0.02)


async def test_killed_primary_under_load_fails_no_request_and_state_is_shared_after(
    sentinel_redis: SentinelRedis,
    namespace: str,
    upstreams: tuple[Upstream, Upstream],
    tmp_path: Path,
) -> None:
    """Both gateways serve RATE req/s each; the Redis primary is SIGKILLed 3 s in. Every
    request gets a 200; each gateway is degraded once, from the kill until at most the
    reconnection backoff after the sentinels promote the replica; then a breaker opened
    through A is OPEN on B."""
    primary, backup = upstreams
    config = write_config(
        tmp_path / "failover.yaml",
        primary,
        backup,
        state=sentinel_redis.url(namespace=namespace),
    )
    async with (
        GatewayProcess(config, tmp_path / "a.log") as a,
        GatewayProcess(config, tmp_path / "b.log") as b,
        Client(a.port) as http_a,
        Client(b.port) as http_b,
    ):
        for http in (http_a, http_b):
            assert (await http.post_chat()).status == 200  # each learns the breaker
            assert (await store_state(http))["mode"] == "sentinel"
            until = time.perf_counter() + 5.0  # connected (a loaded machine may take a retry)
            while (await store_state(http))["degraded"]:
                assert time.perf_counter() < until
                await asyncio.sleep(0.02)
        stop = asyncio.Event()
        results: dict[str, list[tuple[float, float, int]]] = {"a": [], "b": []}
        spans: dict[str, list[list[float]]] = {"a": [], "b": []}
        tasks = [
            asyncio.create_task(job)
            for name, port in (("a", a.port), ("b", b.port))
            for job in (paced(port, stop, results[name]), watch_degraded(port, stop, spans[name]))
        ]
        try:
            await asyncio.sleep(3.0)
            old = sentinel_redis.master()
            assert old is not None
            killed = time.perf_counter()
            await asyncio.to_thread(sentinel_redis.primary.kill)
            switched = await promoted(sentinel_redis, old, within=15.0)
            until = time.perf_counter() + BACKOFF_MAX + 3.0
            while not all(s and len(s[-1]) == 2 for s in spans.values()):
                assert time.perf_counter() < until, (spans, a.log_text()[-2000:])
                await asyncio.sleep(0.02)
            await asyncio.sleep(3.0)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        ended = time.perf_counter()

        samples = results["a"] + results["b"]
        failed = [s for s in samples if s[2] != 200]
        assert not failed, (len(failed), failed[:5])
        assert len(samples) >= 0.8 * 2 * RATE * (ended - killed + 3.0)  # the pace was kept
        during = [s[1] for s in samples if killed <= s[0] <= max(x[-1][1] for x in spans.values())]
        print(
            f"\n{len(samples)} requests, all 200 ({len(during)} while degraded). The sentinels "
            f"promoted the replica {switched - killed:.2f} s after the kill; degraded "
            + ", ".join(
                f"{name} {span[0] - killed:.2f}-{span[1] - killed:.2f} s"
                for name, got in spans.items()
                for span in got
            )
            + f" after it. Latency while degraded p99 {percentile(sorted(during), 99) * 1e3:.1f}"
            f" ms, max {max(during) * 1e3:.1f} ms"
        )
        for name, got in spans.items():
            assert len(got) == 1, (name, got)  # one outage, then steady on the new master
            went, back = got[0]
            assert went - killed < 0.5, name  # the subscription broke at once
            assert back - switched < BACKOFF_MAX + 0.5, name
        assert max(during) < SYNC_TIMEOUT  # no request waited on the dead Redis
        assert sentinel_redis.master() == ("127.0.0.1", sentinel_redis.replica.port)

        # shared again, through the new master: A's failures open the breaker B reports
        primary.failing = True
        for _ in range(3):
            answer = await http_a.post_chat()
            assert answer.status == 200 and b"backup" in answer.body
        seen = await wait_for_state(http_b, "open", within=1.0)
        print(f"OPEN through A seen by B {seen * 1000:.1f} ms after A's third failure")
        assert await breaker_state(http_a, PRIMARY) == "open"
