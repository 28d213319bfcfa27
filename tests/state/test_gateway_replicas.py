"""Gateway replicas that agree: real `failover serve` processes sharing state through Redis.

Each test starts its gateways as subprocesses (`replica_helpers.GatewayProcess`) in front of
fake upstreams running on the test's event loop, all on 127.0.0.1: a primary that can be made
to answer 500 to everything, and a backup. The route tries the primary, then the backup; the
breaker opens after 3 consecutive failures and stays open for 30 s (no jitter, no health
checks), so any request the primary receives while OPEN would be a mistake.

Timings are printed (run with -s); the only one asserted tightly is propagation (< 100 ms).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from replica_helpers import (
    PRIMARY,
    Client,
    GatewayProcess,
    Upstream,
    breaker_state,
    quiet_gc,
    wait_for_state,
    write_config,
)

from failover.stats import percentile
from redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)

DRAIN = f"/admin/deployments/{PRIMARY}/drain"
RESTORE = f"/admin/deployments/{PRIMARY}/restore"
LOCAL_TIMEOUT = 0.05  # RedisStore's default: the longest a request may wait on Redis
SYNC_TIMEOUT = 0.5  # and the longest a background sync may take


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[Upstream, Upstream]]:
    primary = await Upstream().start()
    backup = await Upstream(text="Hello from the backup.").start()
    yield primary, backup
    await primary.close()
    await backup.close()


async def test_an_open_breaker_on_one_replica_stops_calls_from_the_other(
    redis_server: RedisServer,
    namespace: str,
    upstreams: tuple[Upstream, Upstream],
    tmp_path: Path,
) -> None:
    """A's failures open the primary's breaker; B shows OPEN within 100 ms and sends the
    primary nothing, answering every request from the backup; nor does a replica C started
    while the breaker is open."""
    primary, backup = upstreams
    config = write_config(
        tmp_path / "failover.yaml",
        primary,
        backup,
        state=f"{redis_server.url}?namespace={namespace}",
    )
    async with (
        GatewayProcess(config, tmp_path / "a.log") as a,
        GatewayProcess(config, tmp_path / "b.log") as b,
        Client(a.port) as http_a,
        Client(b.port) as http_b,
    ):
        for http in (http_a, http_b):  # each replica learns the breaker's shared state
            assert (await http.post_chat()).status == 200
        assert primary.chats() == 2
        primary.failing = True
        for _ in range(3):  # 3 consecutive failures, all seen by replica A
            answer = await http_a.post_chat()
            assert answer.status == 200 and b"backup" in answer.body
        tripped = time.perf_counter()
        assert primary.chats() == 5
        await wait_for_state(http_b, "open", within=2.0)  # a status request every ~0.5 ms
        propagation = time.perf_counter() - tripped
        await wait_for_state(http_a, "open", within=1.0)
        print(
            f"\nOPEN seen through replica B's /admin/status {propagation * 1000:.1f} ms after "
            "replica A answered the request that tripped it"
        )
        assert propagation < 0.1

        before = primary.chats()
        answers = [await http_b.post_chat() for _ in range(50)]
        assert [a.status for a in answers] == [200] * 50
        assert all(b"Hello from the backup." in a.body for a in answers)
        assert primary.chats() == before  # not one call (nor probe) while OPEN
        assert await breaker_state(http_b) == "open"

        # a replica started now reads the shared state at start-up: it reports OPEN before
        # any request, and makes no call to the primary either
        async with GatewayProcess(config, tmp_path / "c.log") as c, Client(c.port) as http_c:
            assert await breaker_state(http_c) == "open"
            state = (await http_c.get("/admin/status")).json["gateway"]["state"]
            assert state["backend"] == "redis" and state["degraded"] is False
            answers = [await http_c.post_chat() for _ in range(20)]
            assert all(a.status == 200 and b"backup" in a.body for a in answers)
            assert await breaker_state(http_c) == "open"
        assert primary.chats() == before


@dataclass(slots=True)
class Sample:
    replica: str
    started: float
    latency: float
    status: int
    error: str = ""


async def keep_asking(name: str, port: int, stop: asyncio.Event, samples: list[Sample]) -> None:
    """One client: chat requests back to back on one connection until `stop`."""
    async with Client(port) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                answer = await http.post_chat()
            except Exception as exc:  # a client-visible error, counted as such
                samples.append(Sample(name, started, time.perf_counter() - started, 0, repr(exc)))
                await http.close()
                continue
            samples.append(Sample(name, started, time.perf_counter() - started, answer.status))


async def logged(gateway: GatewayProcess, text: str, *, times: int = 1, within: float) -> float:
    """When (perf_counter) `text` had appeared `times` times in the gateway's log."""
    until = time.perf_counter() + within
    while gateway.log_text().count(text) < times:
        if time.perf_counter() > until:
            raise AssertionError(f"no {text!r} in {gateway.log}:\n{gateway.log_text()[-2000:]}")
        await asyncio.sleep(0.01)
    return time.perf_counter()


def latency_p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank) of `values`, 0 when there are none."""
    return percentile(sorted(values), 99) or 0.0


async def test_redis_killed_or_hung_under_load_fails_no_request_and_state_resyncs(
    own_redis: RedisServer,
    namespace: str,
    upstreams: tuple[Upstream, Upstream],
    tmp_path: Path,
) -> None:
    """Both replicas serve 2 clients each, back to back, for ~9 s. Redis is killed, restarted
    empty on the same port 2.5 s later, then hung (SIGSTOP) for 1.5 s and resumed.

    Every request gets a 200, and none waits on Redis: the bulk (p99) no longer than before
    plus `local_timeout`, the slowest less than `sync_timeout` (isolated stalls of ~100 ms that
    hit every client at once are the shared test machine's, not the gateways'). Both replicas
    go degraded and come back each time; a drain on A while Redis was dead reaches B after
    the restart; a restore on B then reaches A at once."""
    primary, backup = upstreams
    config = write_config(
        tmp_path / "failover.yaml", primary, backup, state=f"{own_redis.url}?namespace={namespace}"
    )
    async with (
        GatewayProcess(config, tmp_path / "a.log") as a,
        GatewayProcess(config, tmp_path / "b.log") as b,
        Client(a.port) as http_a,
        Client(b.port) as http_b,
    ):

        async def both_logged(text: str, times: int) -> list[float]:
            return list(
                await asyncio.gather(
                    logged(a, text, times=times, within=3.0),
                    logged(b, text, times=times, within=3.0),
                )
            )

        stop = asyncio.Event()
        samples: list[Sample] = []
        outages: dict[str, tuple[float, float]] = {}
        with quiet_gc():  # this process's own pauses would read as the gateways' latency
            clients = [
                asyncio.create_task(keep_asking(name, port, stop, samples))
                for name, port in (("a", a.port), ("a", a.port), ("b", b.port), ("b", b.port))
            ]
            try:
                await asyncio.sleep(1.5)
                killed = time.perf_counter()
                await asyncio.to_thread(own_redis.kill)
                await both_logged("redis unreachable", 1)
                # decided alone: A drains the primary; B cannot know yet
                assert (await http_a.post(DRAIN)).status == 200
                assert await breaker_state(http_a) == "forced_open"
                assert await breaker_state(http_b) == "closed"
                await asyncio.sleep(killed + 2.5 - time.perf_counter())
                await asyncio.to_thread(own_redis.start)
                restarted = time.perf_counter()
                outages["killed"] = (killed, restarted)
                back = await both_logged("redis is back", 1)
                # the resync pushed A's drain to the new, empty Redis, and B adopted it
                await wait_for_state(http_b, "forced_open", within=1.0)
                drained = time.perf_counter()
                calls_drained = primary.chats()
                await asyncio.sleep(0.5)
                hung = time.perf_counter()
                own_redis.pause()
                await both_logged("redis unreachable", 2)
                await asyncio.sleep(hung + 1.5 - time.perf_counter())
                own_redis.resume()
                outages["hung"] = (hung, time.perf_counter())
                back += await both_logged("redis is back", 2)
                await asyncio.sleep(0.5)
            finally:
                own_redis.resume()
                stop.set()
                await asyncio.gather(*clients)
        assert primary.chats() == calls_drained  # neither replica calls a drained primary

        failed = [s for s in samples if s.status != 200]
        assert not failed, (len(failed), failed[:5])

        def during(s: Sample, span: tuple[float, float]) -> bool:
            return s.started < span[1] and s.started + s.latency > span[0]

        phases = {
            "before": [s for s in samples if s.started + s.latency < killed],
            **{name: [s for s in samples if during(s, span)] for name, span in outages.items()},
            "back": [
                s
                for s in samples
                if s.started > restarted and not any(during(s, o) for o in outages.values())
            ],
        }
        for name in outages:
            for replica in ("a", "b"):
                served = sum(1 for s in phases[name] if s.replica == replica)
                assert served > 100, f"replica {replica} served {served} requests, Redis {name}"
        p99 = {name: latency_p99([s.latency for s in got]) for name, got in phases.items()}
        worst = {name: max(s.latency for s in got) for name, got in phases.items()}
        print(
            f"\n{len(samples)} requests, all 200. Latency p99 / max: "
            + ", ".join(f"{n} {p99[n] * 1e3:.1f} / {worst[n] * 1e3:.1f} ms" for n in phases)
            + ". Shared again "
            + " / ".join(f"{(t - restarted) * 1000:.0f}" for t in back[:2])
            + f" ms after the restart (B drained after {(drained - restarted) * 1000:.0f} ms), "
            + " / ".join(f"{(t - outages['hung'][1]) * 1000:.0f}" for t in back[2:])
            + " ms after the resume"
        )
        for name in (*outages, "back"):
            assert p99[name] <= p99["before"] + LOCAL_TIMEOUT, (name, p99)
            assert worst[name] < SYNC_TIMEOUT, (name, worst)

        # shared both ways: a restore on B reaches A, and both call the primary again
        assert (await http_b.post(RESTORE)).status == 200
        seen = await wait_for_state(http_a, "closed", within=1.0)
        print(f"restore on B seen by A in {seen * 1000:.1f} ms")
        before = primary.chats()
        for http in (http_a, http_b):
            answer = await http.post_chat()
            assert answer.status == 200 and b"primary" in answer.body
        assert primary.chats() == before + 2


async def one_client_per_worker(port: int, workers: int, *, within: float = 10.0) -> list[Client]:
    """Kept-alive connections, one to each worker process of a `--workers N` gateway. The
    kernel hands each new connection to one of them (not evenly, and only to those already
    serving); the request ids' per-process prefix tells them apart."""
    found: dict[str, Client] = {}
    until = time.perf_counter() + within
    while time.perf_counter() < until:
        http = await Client(port).connect()
        worker = (await http.get("/health/live")).worker
        if worker and worker not in found:
            found[worker] = http
            if len(found) == workers:
                return list(found.values())
        else:
            await http.close()
            await asyncio.sleep(0.01)
    for http in found.values():
        await http.close()
    raise AssertionError(f"{len(found)} of {workers} workers answered new connections in {within}s")


async def test_workers_of_one_serve_share_state(
    redis_server: RedisServer,
    namespace: str,
    upstreams: tuple[Upstream, Upstream],
    tmp_path: Path,
) -> None:
    """`failover serve --workers 2`: a drain on one worker process is obeyed by the other."""
    primary, backup = upstreams
    config = write_config(
        tmp_path / "failover.yaml",
        primary,
        backup,
        state=f"{redis_server.url}?namespace={namespace}",
    )
    async with GatewayProcess(config, tmp_path / "workers.log", workers=2) as served:
        first, second = await one_client_per_worker(served.port, 2)
        try:
            for http in (first, second):
                answer = await http.post_chat()
                assert answer.status == 200 and b"primary" in answer.body
            assert (await first.post(DRAIN)).status == 200
            seen = await wait_for_state(second, "forced_open", within=1.0)
            print(f"\ndrain on one worker seen by the other in {seen * 1000:.1f} ms")
            before = primary.chats()
            for http in (first, second):
                for _ in range(20):
                    answer = await http.post_chat()
                    assert answer.status == 200 and b"backup" in answer.body
            for _ in range(20):  # new connections, to whichever worker the kernel picks
                async with Client(served.port) as http:
                    answer = await http.post_chat()
                    assert answer.status == 200 and b"backup" in answer.body
            assert primary.chats() == before
        finally:
            await first.close()
            await second.close()
        assert await served.stop() == 0
