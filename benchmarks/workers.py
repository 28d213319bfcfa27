"""How `failover serve --workers N` scales: throughput of one gateway against N worker
processes, in one run, on this machine.

    python benchmarks/workers.py [--workers 1 2] [--duration 3] [--rounds 3]
                                 [--connections 16 64]

Starts the fast fake upstream (benchmarks/upstream.py) and a private redis-server on a free
port (tests/redis_server.py): more than one worker needs shared state, so every gateway here
keeps its breakers, cool-downs and budgets in Redis, and one more with `state: memory` shows
what Redis itself costs. wrk (1 thread) loads one gateway at a time, alternating; each figure
is the median of `--rounds` runs. Default logging (one JSON line per request), as
`make bench`. Only 127.0.0.1 is used; the run takes about two minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run.py: wrk, the gateway and upstream helpers of `make bench`
sys.path.insert(0, str(HERE.parent / "tests"))  # the redis-server helper

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per measurement")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    began = time.perf_counter()
    up_port = free_port()
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as redis:
        tmpdir = Path(tmp)
        lua = tmpdir / "gateway.lua"
        lua.write_text(LUA.format(body=BODY.decode()))
        shared = f"{redis.url}?namespace=bench-{uuid.uuid4().hex[:8]}"
        setups = {"1 worker, state memory": (1, "memory")}
        setups |= {
            f"{n} worker{'s' if n > 1 else ''}, state redis": (n, shared) for n in args.workers
        }
        upstream_args = [sys.executable, str(HERE / "upstream.py"), "--port", str(up_port)]
        with process(upstream_args):
            wait_for_port(up_port)
            results = {
                name: run(args, tmpdir, up_port, lua, n, state)
                for name, (n, state) in setups.items()
            }
    print()
    print(f"{'gateway':<26}" + "".join(f"{f'{c} connections':>18}" for c in args.connections))
    base = results[next(iter(results))]
    for name, rps in results.items():
        cells = "".join(f"{f'{r:,.0f} ({r / b:.2f}x)':>18}" for r, b in zip(rps, base, strict=True))
        print(f"{name:<26}{cells}")
    print(
        f"\n{os.cpu_count()} CPU(s) shared by the gateway's workers, the upstream, redis-server "
        f"and wrk (1 thread); load average {os.getloadavg()[0]:.1f}; measured in "
        f"{time.perf_counter() - began:.0f} s"
    )
    return 0


def run(
    args: argparse.Namespace, tmpdir: Path, up_port: int, lua: Path, workers: int, state: str
) -> list[float]:
    """Median req/s of one gateway setup at each connection count."""
    config = tmpdir / f"workers-{workers}-{state[:5]}.yaml"
    config.write_text(CONFIG.format(port=up_port) + f"state: {state}\n")
    port = free_port()
    extra = ["--workers", str(workers)] if workers > 1 else []
    gateway, _ = start_gateway(config, port, tmpdir / f"{config.stem}.log", extra)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        wrk(url, lua, 64, 2.0)  # warm-up: every worker's pools and first allocations
        out = []
        for connections in args.connections:
            runs = [wrk(url, lua, connections, args.duration) for _ in range(args.rounds)]
            if any(r.errors for r in runs):
                raise RuntimeError(f"{workers} workers: errors at {connections} connections")
            out.append(median(r.rps for r in runs))
            print(
                f"  {workers} worker(s) {state[:6]:6} {connections:3} connections {out[-1]:9,.0f}"
            )
        return out
    finally:
        gateway.terminate()
        gateway.wait(15)


if __name__ == "__main__":
    raise SystemExit(main())
