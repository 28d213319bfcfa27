"""Same-run A/B: the gateway of a git ref (A) against the working tree's (B), one upstream.

    A          `failover serve` from a temporary `git worktree` of REF (its src/ on PYTHONPATH;
               "." is the working tree itself, to compare two configs of one code)
    B          `failover serve` from this working tree (or from another ref, with --b)
    upstream   benchmarks/upstream.py, shared by both (paced with --streams)
    load       wrk, alternating A and B (and a direct run for the added latency) each round

On a shared machine absolute figures drift from minute to minute; runs of A and B taken in
turns, medians of several rounds, and the ratio B/A are what can be compared. Besides wrk's
p50 and req/s it reads each gateway's CPU time from /proc: CPU per request moves less with
the neighbours than the rates do. With --streams both gateways relay paced streams
(benchmarks/streams.py's load generator) and CPU per stream is compared instead.

    python benchmarks/ab.py 4be3f9d [--rounds 5] [--duration 2] [--connections 1 16]
    python benchmarks/ab.py . --b-tracing             # tracing off (A) against on (B)
    python benchmarks/ab.py 8968fa6 --b 47e5650       # two refs, neither the working tree
    python benchmarks/ab.py main --streams [--clients 300] [--duration 8]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run.py and streams.py: the helpers of `make bench`

from run import (  # noqa: E402
    BODY,
    CONFIG,
    DIRECT_BODY,
    LUA,
    ROOT,
    Wrk,
    free_port,
    median,
    process,
    start_gateway,
    stop,
    wait_for_port,
    wrk,
)

TRACING = """\
observability:
  tracing: {{enabled: true, endpoint: "http://127.0.0.1:{port}/v1/traces"}}
"""
STREAMS_CONFIG = """\
providers:
  upstream: {{kind: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench}}
routes:
  bench:
    deployments: [{{provider: upstream, model: bench-model}}]
"""


@dataclass
class Side:
    """One gateway under test: where its code comes from, and what it measured."""

    name: str
    src: Path
    tracing: bool
    port: int = 0
    pid: int = 0
    runs: dict[int, list[Wrk]] = field(default_factory=dict)
    cpu_us: dict[int, list[float]] = field(default_factory=dict)
    stream_cpu_ms: list[float] = field(default_factory=list)
    stream_rate: list[float] = field(default_factory=list)
    stream_ttfb_ms: list[float] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """The src/ directory of `ref`: a temporary detached worktree, removed afterwards."""
    if ref == ".":
        yield ROOT / "src"
        return
    tmp = Path(tempfile.mkdtemp(prefix="failover-ab-"))
    where = tmp / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(where), ref],
        check=True,
    )
    try:
        yield where / "src"
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False
        )
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def serving(side: Side, config: str, tmp: Path, extra: list[str]) -> Iterator[Side]:
    """`failover serve` of one side, with its code first on the import path."""
    path = tmp / f"{side.name}.yaml"
    path.write_text(config)
    env = {**os.environ, "PYTHONPATH": str(side.src)}
    side.port = free_port()
    proc, _ = start_gateway(path, side.port, tmp / f"{side.name}.log", extra, env)
    side.pid = proc.pid
    try:
        yield side
    finally:
        stop(proc)


def config_of(side: Side, template: str, port: int) -> str:
    text = template.format(port=port)
    return text + (TRACING.format(port=port) if side.tracing else "")


def whole(args: argparse.Namespace, sides: tuple[Side, Side], up: int, tmp: Path) -> str:
    """Whole answers: wrk at each connection count, A and B in turns, a direct run each round."""
    lua, lua_direct = tmp / "gateway.lua", tmp / "direct.lua"
    lua.write_text(LUA.format(body=BODY.decode()))
    lua_direct.write_text(LUA.format(body=DIRECT_BODY.decode()))
    direct_url = f"http://127.0.0.1:{up}/v1/chat/completions"
    with contextlib.ExitStack() as stack:
        for side in sides:
            stack.enter_context(serving(side, config_of(side, CONFIG, up), tmp, args.serve))
        urls = {s.name: f"http://127.0.0.1:{s.port}/v1/chat/completions" for s in sides}
        for side in sides:  # warm-up: connection pools, caches, first allocations
            wrk(urls[side.name], lua, 16, 1.0)
        direct: dict[int, list[Wrk]] = {}
        for c in args.connections:
            direct[c] = []
            for i in range(args.rounds):
                direct[c].append(wrk(direct_url, lua_direct, c, args.duration))
                for side in sides if i % 2 == 0 else sides[::-1]:
                    cpu = cpu_seconds(side.pid)
                    run = wrk(urls[side.name], lua, c, args.duration)
                    used = cpu_seconds(side.pid) - cpu
                    if run.errors:
                        raise RuntimeError(f"{side.name}: errors at {c} connections: {run}")
                    side.runs.setdefault(c, []).append(run)
                    side.cpu_us.setdefault(c, []).append(used * 1e6 / max(1, run.requests))
    return whole_report(args, sides, direct)


def whole_report(
    args: argparse.Namespace, sides: tuple[Side, Side], direct: dict[int, list[Wrk]]
) -> str:
    a, b = sides
    lines = [
        "| connections | measurement | A | B | B / A |",
        "|---|---|---|---|---|",
    ]
    for c in args.connections:
        base = median(r.p50_ms for r in direct[c])
        added = [median(r.p50_ms for r in s.runs[c]) - base for s in sides]
        rps = [median(r.rps for r in s.runs[c]) for s in sides]
        cpu = [median(s.cpu_us[c]) for s in sides]
        # rates and CPU: the median of each round's own ratio (A and B ran side by side then)
        rps_a, rps_b = [r.rps for r in a.runs[c]], [r.rps for r in b.runs[c]]
        lines.append(
            f"| {c} | added p50 (direct {base:.3f} ms) | +{added[0]:.3f} ms | "
            f"+{added[1]:.3f} ms | {ratio(added[1], added[0])} |"
        )
        lines.append(
            f"| {c} | req/s | {rps[0]:,.0f} | {rps[1]:,.0f} | {round_ratio(rps_a, rps_b)} |"
        )
        lines.append(
            f"| {c} | gateway CPU per request | {cpu[0]:.0f} us | {cpu[1]:.0f} us | "
            f"{round_ratio(a.cpu_us[c], b.cpu_us[c])} |"
        )
    lines.append("")
    lines.append(legend(args, a, b, f"medians of {args.rounds} alternating wrk runs of "
                 f"{args.duration:g} s; B / A of req/s and CPU: the median of each round's "
                 f"ratio"))  # fmt: skip
    return "\n".join(lines)


def streams(args: argparse.Namespace, sides: tuple[Side, Side], tmp: Path) -> str:
    """Paced streams: the same load through A and B in turns, CPU per stream and rate."""
    import streams as load  # benchmarks/streams.py: its load generator runs in its own process

    load.raise_open_files()
    up = free_port()
    upstream = [sys.executable, str(HERE / "upstream.py"), "--port", str(up)]
    upstream += ["--chunks", str(args.chunks), "--stream-seconds", str(args.stream_seconds)]
    common = {"ramp": args.stream_seconds, "timeout": args.stream_seconds + 30}
    direct: list[dict[str, Any]] = []
    with process(upstream), contextlib.ExitStack() as stack:
        wait_for_port(up)
        for side in sides:
            config = config_of(side, STREAMS_CONFIG, up)
            stack.enter_context(serving(side, config, tmp, args.serve))
        for side in sides:  # warm-up
            load.run_load(side.port, "bench", 50, 2.0, **common)
        for i in range(args.rounds):
            direct.append(load.run_load(up, "bench-model", args.clients, args.duration, **common))
            for side in sides if i % 2 == 0 else sides[::-1]:
                cpu = cpu_seconds(side.pid)
                got = load.run_load(side.port, "bench", args.clients, args.duration, **common)
                done = max(1, got["completed"])
                side.stream_cpu_ms.append((cpu_seconds(side.pid) - cpu) * 1000 / done)
                side.stream_rate.append(got["done"] / max(1, direct[-1]["done"]))
                side.stream_ttfb_ms.append(got["ttfb_p50_ms"] - direct[-1]["ttfb_p50_ms"])
    a, b = sides
    lines = ["| measurement | A | B | B / A |", "|---|---|---|---|"]
    rows = (
        ("gateway CPU per stream", "stream_cpu_ms", "{:.2f} ms"),
        ("streams done / direct", "stream_rate", "{:.2f}x"),
        ("first byte added (p50)", "stream_ttfb_ms", "+{:.1f} ms"),
    )
    for label, key, form in rows:
        va, vb = median(getattr(a, key)), median(getattr(b, key))
        rounds = round_ratio(getattr(a, key), getattr(b, key))
        lines.append(f"| {label} | {form.format(va)} | {form.format(vb)} | {rounds} |")
    lines.append("")
    lines.append(legend(args, a, b, f"medians of {args.rounds} alternating runs of "
                 f"{args.clients} clients streaming {args.chunks} chunks over "
                 f"{args.stream_seconds:g} s for {args.duration:g} s; B / A: the median of each "
                 f"round's ratio"))  # fmt: skip
    return "\n".join(lines)


def ratio(b: float, a: float) -> str:
    return f"{b / a:.3f}" if a else "-"


def round_ratio(a: list[float], b: list[float]) -> str:
    """The median over rounds of B's figure over A's in the same round."""
    ratios = [vb / va for va, vb in zip(a, b, strict=True) if va]
    return f"{median(ratios):.3f}" if ratios else "-"


def legend(args: argparse.Namespace, a: Side, b: Side, how: str) -> str:
    def name(side: Side, what: str) -> str:
        return what + (" with tracing" if side.tracing else "")

    def ref(value: str) -> str:
        return "the working tree" if value == "." else f"`{value}`"

    load = os.getloadavg()[0]
    return (
        f"A: {name(a, ref(args.ref))}; B: {name(b, ref(args.b_ref))}; {how} "
        f"(load average {load:.1f} at the end)."
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ref", help='git ref of A ("." for the working tree)')
    parser.add_argument("--rounds", type=int, default=5, help="runs of each side")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--b", dest="b_ref", default=".", help='git ref of B (default: ".")')
    parser.add_argument("--a-tracing", action="store_true", help="A with tracing on")
    parser.add_argument("--b-tracing", action="store_true", help="B with tracing on")
    parser.add_argument("--serve", nargs="*", default=[], help="extra `failover serve` flags")
    parser.add_argument("--streams", action="store_true", help="paced streams instead of wrk")
    parser.add_argument("--clients", type=int, default=300, help="--streams: clients")
    parser.add_argument("--chunks", type=int, default=20, help="--streams: chunks a stream")
    parser.add_argument("--stream-seconds", type=float, default=2.0, help="--streams: its span")
    args = parser.parse_args(argv)
    if args.streams and "--duration" not in (argv or sys.argv):
        args.duration = 8.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not args.streams and shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    began = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        checkout(args.ref) as src_a,
        checkout(args.b_ref) as src_b,
    ):
        sides = (Side("A", src_a, args.a_tracing), Side("B", src_b, args.b_tracing))
        if args.streams:
            text = streams(args, sides, Path(tmp))
        else:
            up = free_port()
            with process([sys.executable, str(HERE / "upstream.py"), "--port", str(up)]):
                wait_for_port(up)
                text = whole(args, sides, up, Path(tmp))
    print(text)
    print(f"\n{time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
