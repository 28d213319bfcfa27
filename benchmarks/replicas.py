"""What `state: redis://` costs the gateway, through HTTP, against `state: memory` in one run.

    python benchmarks/replicas.py [--duration 3] [--rounds 3] [--connections 16 64]

Starts the fast fake upstream (benchmarks/upstream.py), a private redis-server on a free port
(tests/redis_server.py) and two `failover serve` processes in front of the upstream: one with
`state: memory`, one with `state: redis://...`. wrk (1 thread) loads one gateway at a time,
alternating memory and Redis runs; each figure is the median of `--rounds` runs. Both gateways
log at warning (no per-request line), so the store's share of the work is as visible as it
can be. Only 127.0.0.1 is used; the run takes about a minute. Target: Redis costs <= 25%
throughput (ratio >= 0.75).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run.py: wrk, the gateway and upstream helpers of `make bench`
sys.path.insert(0, str(HERE.parent / "tests"))  # the redis-server helper

from redis import Redis  # noqa: E402
from run import (  # noqa: E402
    BODY,
    CONFIG,
    LUA,
    free_port,
    median,
    process,
    start_gateway,
    wait_for_port,
    wrk,
)

from redis_server import RedisServer  # noqa: E402

TARGET_RATIO = 0.75


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per measurement")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    began = time.perf_counter()
    up_port = free_port()
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as redis:
        tmpdir = Path(tmp)
        lua = tmpdir / "gateway.lua"
        lua.write_text(LUA.format(body=BODY.decode()))
        states = {"memory": "memory", "redis": f"{redis.url}?namespace={namespace}"}
        configs = {}
        for name, state in states.items():
            configs[name] = tmpdir / f"{name}.yaml"
            configs[name].write_text(CONFIG.format(port=up_port) + f"state: {state}\n")
        upstream_args = [sys.executable, str(HERE / "upstream.py"), "--port", str(up_port)]
        with process(upstream_args):
            wait_for_port(up_port)
            gateways, ports = {}, {}
            try:
                for name in states:
                    ports[name] = free_port()
                    gateways[name], _ = start_gateway(
                        configs[name],
                        ports[name],
                        tmpdir / f"gateway-{name}.log",
                        ["--log-level", "warning"],
                    )
                results = measure(args, ports, lua)
            finally:
                for proc in gateways.values():
                    proc.terminate()
                    proc.wait(10)
            log = (tmpdir / "gateway-redis.log").read_text(errors="replace")
        shared = Redis.from_url(redis.url, decode_responses=True)
        try:
            keys = shared.keys(f"{namespace}:*")
        finally:
            shared.close()
    if "redis unreachable" in log:
        print(f"redis failed during the run, not measured:\n{log}", file=sys.stderr)
        return 1
    if f"{namespace}:breaker:upstream/bench-model" not in keys:
        print(f"the Redis gateway kept nothing in Redis ({keys}): not measured", file=sys.stderr)
        return 1
    print()
    print(f"{'connections':>12}{'memory req/s':>15}{'redis req/s':>14}{'ratio':>8}")
    worst = 1.0
    for connections in args.connections:
        memory, shared_rps = results["memory", connections], results["redis", connections]
        ratio = shared_rps / memory
        worst = min(worst, ratio)
        print(f"{connections:>12}{memory:>15,.0f}{shared_rps:>14,.0f}{ratio:>8.3f}")
    print()
    print(
        f"throughput ratio redis/memory: {worst:.3f} at worst (cost {100 * (1 - worst):.1f}%, "
        f"target <= {100 * (1 - TARGET_RATIO):.0f}%); measured in "
        f"{time.perf_counter() - began:.0f} s"
    )
    ok = worst >= TARGET_RATIO
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def measure(
    args: argparse.Namespace, ports: dict[str, int], lua: Path
) -> dict[tuple[str, int], float]:
    urls = {name: f"http://127.0.0.1:{port}/v1/chat/completions" for name, port in ports.items()}
    for url in urls.values():
        wrk(url, lua, 16, 1.0)  # warm-up: connection pools, the breaker's first read
    out: dict[tuple[str, int], float] = {}
    for connections in args.connections:
        runs: dict[str, list[float]] = {name: [] for name in urls}
        for round_ in range(args.rounds):
            order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
            for name in order:
                result = wrk(urls[name], lua, connections, args.duration)
                if result.errors:
                    raise RuntimeError(f"{name}: {result.errors} errors at {connections} conns")
                runs[name].append(result.rps)
                print(f"  {connections:3} connections  {name:6} {result.rps:9,.0f} req/s")
        for name, rps in runs.items():
            out[name, connections] = median(rps)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
