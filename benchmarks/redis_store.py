"""What sharing state through Redis costs the router, against MemoryStore in the same run.

    python benchmarks/redis_store.py [--seconds 2] [--rounds 3] [--concurrency 32] [--url redis://...]

In-process: a Router over one `ScriptedDeployment` that answers at once (after yielding to the
event loop once, as a network call would), so the router and the store are all that is
measured. Each round runs both stores back to back (alternating, so drift
on the machine hits both): throughput with `--concurrency` tasks for `--seconds`, then
sequential requests for the per-request latency. Without `--url` a private redis-server is
started on a free port (tests/redis_server.py). Target: Redis costs <= 25% throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the redis-server helper

from failover import Route, Router, SystemClock  # noqa: E402
from failover.state.base import StateStore  # noqa: E402
from failover.state.memory import MemoryStore  # noqa: E402
from failover.state.redis import RedisStore  # noqa: E402
from failover.stats import percentile  # noqa: E402
from failover.testing import ScriptedDeployment, ok  # noqa: E402
from failover.types import Completion, Request  # noqa: E402
from redis_server import RedisServer  # noqa: E402

REQUEST = {"messages": [{"role": "user", "content": "hi"}]}
TARGET_RATIO = 0.75  # Redis keeps at least 75% of MemoryStore's throughput


@dataclass
class Sample:
    rps: float
    p50_us: float
    p99_us: float


class Yielding(ScriptedDeployment):
    """Answers at once, but yields to the event loop first, as any network call would: without
    it one task would run every request and the store's background tasks would never run."""

    async def complete(self, request: Request) -> Completion:
        await asyncio.sleep(0)
        return await super().complete(request)


async def measure(
    store: StateStore, *, seconds: float, concurrency: int, sequential: int
) -> Sample:
    clock = SystemClock()
    deployment = Yielding("bench", ok("hello"), clock=clock)
    router = Router({"chat": Route([deployment])}, store=store, clock=clock)
    await store.start()
    try:
        for _ in range(500):  # warm up: caches, connections, the breaker's first read
            await router.complete("chat", REQUEST)
        rps = await _throughput(router, seconds, concurrency)
        deployment.requests.clear()
        latencies = await _latencies(router, sequential)
        deployment.requests.clear()
        if isinstance(store, RedisStore) and store.redis_errors:
            raise SystemExit(f"redis failed during the run ({store.last_error}): not measured")
    finally:
        await router.aclose()
    latencies.sort()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    if p50 is None or p99 is None:
        raise SystemExit("no latencies were measured")
    return Sample(rps=rps, p50_us=p50 * 1e6, p99_us=p99 * 1e6)


async def _throughput(router: Router, seconds: float, concurrency: int) -> float:
    done = 0
    until = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < until:
            await router.complete("chat", REQUEST)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def _latencies(router: Router, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        await router.complete("chat", REQUEST)
        out.append(time.perf_counter() - started)
    return out


async def run(args: argparse.Namespace, url: str) -> bool:
    makers: dict[str, Callable[[], StateStore]] = {
        "memory": lambda: MemoryStore(rng=random.Random(1)),
        "redis": lambda: RedisStore(url, namespace=f"bench-{uuid.uuid4().hex[:8]}"),
    }
    results: dict[str, list[Sample]] = {name: [] for name in makers}
    for round_ in range(args.rounds):
        order = list(makers) if round_ % 2 == 0 else list(reversed(makers))
        for name in order:
            sample = await measure(
                makers[name](),
                seconds=args.seconds,
                concurrency=args.concurrency,
                sequential=args.sequential,
            )
            results[name].append(sample)
            print(
                f"  round {round_ + 1} {name:6} {sample.rps:9.0f} req/s   "
                f"p50 {sample.p50_us:6.1f} us   p99 {sample.p99_us:6.1f} us"
            )
    memory, redis = (_median(results[name]) for name in ("memory", "redis"))
    ratio = redis.rps / memory.rps
    print()
    print(f"{'store':8}{'req/s':>10}{'p50 us':>10}{'p99 us':>10}   medians of {args.rounds} rounds")
    for name, sample in (("memory", memory), ("redis", redis)):
        print(f"{name:8}{sample.rps:10.0f}{sample.p50_us:10.1f}{sample.p99_us:10.1f}")
    print()
    print(f"throughput ratio redis/memory: {ratio:.3f} (cost {100 * (1 - ratio):.1f}%, "
          f"target <= {100 * (1 - TARGET_RATIO):.0f}%)")  # fmt: skip
    print(f"added latency per request (one attempt): p50 {redis.p50_us - memory.p50_us:+.1f} us, "
          f"p99 {redis.p99_us - memory.p99_us:+.1f} us")  # fmt: skip
    return ratio >= TARGET_RATIO


def _median(samples: list[Sample]) -> Sample:
    return Sample(
        rps=statistics.median(s.rps for s in samples),
        p50_us=statistics.median(s.p50_us for s in samples),
        p99_us=statistics.median(s.p99_us for s in samples),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="throughput phase length")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sequential", type=int, default=2000, help="requests for latency")
    parser.add_argument("--url", help="an existing Redis (default: start a private one)")
    args = parser.parse_args()
    loop_name = "asyncio"
    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        pass
    print(f"router + ScriptedDeployment (zero latency), {args.concurrency} tasks, {loop_name}")
    if args.url:
        ok_ = asyncio.run(run(args, args.url))
    else:
        with RedisServer() as server:
            print(f"redis-server at {server.url}")
            ok_ = asyncio.run(run(args, server.url))
    print("PASS" if ok_ else "FAIL")
    return 0 if ok_ else 1


if __name__ == "__main__":
    raise SystemExit(main())
