"""`make bench`, streams: thousands of long streams through one gateway process, beside the
same load sent straight to the upstream, in one run.

    upstreams  two benchmarks/upstream.py processes in pacing mode (N chunks over T seconds)
    gateway    `failover serve`, one process, defaults (health checks, metrics, request log),
               a route of two healthy deployments, one per upstream
    load       `streams.py load` in its own process: C raw-socket clients on uvloop, each
               streaming again and again over its own keep-alive connection

Phase 1, long streams: C clients (1,000) stream 2-second answers (20 chunks) for D seconds
(15), first straight at the upstream, then through the gateway. Phase 2, held streams: H
clients (10,000) each open one slow stream (a chunk a second) and hold it. The gateway's peak
resident memory and its breaker and health events (GET /admin/events) are read at the end of
each phase. Only 127.0.0.1 is used; every run stops by itself.

    python benchmarks/streams.py [--quick] [--clients 1000] [--duration 15] [--held 10000]
                                 [--held-seconds 30] [--max-connections N] [--out FILE]
    python benchmarks/streams.py admit [--rate 400 | --burst 1000] [--ttft 0.5]

`admit` runs no processes: the router alone on a fake clock, two deployments whose streams
take `--ttft` seconds to their first content, and how long new streams wait for a slot of
the adaptive concurrency limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run.py: the gateway and process helpers of `make bench`

from overload import shed_counts  # noqa: E402
from run import (  # noqa: E402
    free_port,
    percentile_ms,
    process,
    rss_mb,
    start_gateway,
    stop,
    wait_for_port,
)

CONFIG = """\
providers:
  first: {{kind: openai, base_url: "http://127.0.0.1:{first}/v1", api_key: sk-bench{options}}}
  second: {{kind: openai, base_url: "http://127.0.0.1:{second}/v1", api_key: sk-bench{options}}}
routes:
  bench:
    deployments: [{{provider: first, model: bench-model}}, {{provider: second, model: bench-model}}]
"""
FD_RESERVE = 200  # descriptors a gateway needs besides its sockets (logs, epoll, pipes ...)
TARGETS = {"ratio": 0.95, "ttfb_added_ms": 20.0, "rss_mb": 300.0, "held_rss_mb": 1024.0}


# -- the load generator (its own process) ----------------------------------------------------


class Exchange(asyncio.Protocol):
    """One client's keep-alive connection: one streamed request at a time, read to its end."""

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.closed = False
        self.outcome: asyncio.Future[str] | None = None
        self.buf = b""
        self.head = True
        self.chunked = False
        self.length = 0
        self.sent = self.first = 0.0
        self.done = self.error = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._end("closed")

    def send(self, request: bytes) -> asyncio.Future[str]:
        """Send `request`; the future says how its answer ended ("ok" or what went wrong)."""
        assert self.transport is not None
        self.outcome = asyncio.get_running_loop().create_future()
        self.buf, self.head, self.done, self.error, self.first = b"", True, False, False, 0.0
        self.sent = time.perf_counter()
        self.transport.write(request)
        return self.outcome

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.head:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end].lower(), self.buf[end + 4 :]
            self.head = False
            if not head.startswith(b"http/1.1 200"):
                self.error = True
            self.chunked = b"transfer-encoding: chunked" in head
            at = head.find(b"content-length:")
            self.length = int(head[at + 15 :].split(b"\r\n")[0]) if at >= 0 else 0
        if self.chunked:
            self._chunks()
        elif len(self.buf) >= self.length:
            self._data(self.buf[: self.length])
            self._end("ok" if self.done and not self.error else "http")

    def _chunks(self) -> None:
        buf, at = self.buf, 0
        while True:
            nl = buf.find(b"\r\n", at)
            if nl < 0:
                break
            size = int(buf[at:nl].split(b";")[0], 16)
            end = nl + 2 + size + 2
            if len(buf) < end:
                break
            if size == 0:
                self.buf = b""
                self._end("ok" if self.done and not self.error else self._why())
                return
            self._data(buf[nl + 2 : nl + 2 + size])
            at = end
        self.buf = buf[at:]

    def _data(self, piece: bytes) -> None:
        if not self.first and b"data:" in piece:
            self.first = time.perf_counter()
        if b"data: [DONE]" in piece:
            self.done = True
        if b'data: {"error"' in piece:
            self.error = True

    def _why(self) -> str:
        return "error_event" if self.error else "no_done"

    def _end(self, how: str) -> None:
        if self.outcome is not None and not self.outcome.done():
            self.outcome.set_result(how)


@dataclass
class Load:
    """What one load run saw."""

    started: float
    duration: float
    wall: float  # time.perf_counter() at the start
    ttfb: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)
    began: list[float] = field(default_factory=list)  # when each stream began, in the run
    done_in_window: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    open: int = 0
    peak_open: int = 0

    def summary(self, cpu: float, wall: float) -> dict[str, Any]:
        def pct(samples: list[float], q: float) -> float | None:
            return percentile_ms(samples, q) if samples else None

        return {
            "done": self.done_in_window,
            "completed": len(self.whole),
            "errors": dict(self.errors),
            "ttfb_p50_ms": pct(self.ttfb, 50),
            "ttfb_p99_ms": pct(self.ttfb, 99),
            "whole_p50_ms": pct(self.whole, 50),
            "peak_open": self.peak_open,
            "client_cpu": cpu / wall,
        }


async def one_client(
    load: Load, port: int, request: bytes, start: float, once: bool, timeout: float
) -> None:
    """Stream again and again until the window closes (once, with `once`)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(start)
    conn: Exchange | None = None
    while loop.time() < load.started + load.duration:
        if conn is None or conn.closed:
            try:
                _, conn = await loop.create_connection(Exchange, "127.0.0.1", port)
            except OSError as exc:
                load.errors[f"connect: {exc.strerror or exc}"] += 1
                await asyncio.sleep(0.5)
                continue
        load.open += 1
        load.peak_open = max(load.peak_open, load.open)
        try:
            how = await asyncio.wait_for(conn.send(request), timeout)
        except TimeoutError:
            how = "timeout"
        load.open -= 1
        if how != "ok":
            load.errors[how] += 1
            assert conn.transport is not None
            conn.transport.close()
            conn = None
        else:
            ended = time.perf_counter()
            load.ttfb.append(conn.first - conn.sent)
            load.whole.append(ended - conn.sent)
            load.began.append(conn.sent - load.wall)
            if loop.time() <= load.started + load.duration:
                load.done_in_window += 1
        if once:
            break
    if conn is not None and conn.transport is not None:
        conn.transport.close()


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    body = b'{"model":"%s","stream":true,"messages":[{"role":"user","content":"Tell a story"}]}'
    body %= args.model.encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    loop = asyncio.get_running_loop()
    load = Load(loop.time(), args.duration, time.perf_counter())
    before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    # clients join evenly over `ramp` seconds, so completions spread out instead of coming in
    # waves, and 10,000 connections do not all knock on one listen backlog at once
    clients = [
        one_client(load, args.port, request, args.ramp * i / args.clients, args.once, args.timeout)
        for i in range(args.clients)
    ]
    await asyncio.gather(*clients)
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
    if args.samples is not None:  # one line per stream: began, first byte, whole (seconds)
        rows = zip(load.began, load.ttfb, load.whole, strict=True)
        args.samples.write_text("".join(f"{b:.4f} {t:.4f} {w:.4f}\n" for b, t, w in rows))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return load.summary(cpu, wall)


def load_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="streams.py load")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="bench")
    parser.add_argument("--clients", type=int, default=1000, help="0: skip the long phase")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds to start streams")
    parser.add_argument("--ramp", type=float, default=2.0, help="seconds over which clients join")
    parser.add_argument("--once", action="store_true", help="one stream per client, held")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a stream may take")
    parser.add_argument("--samples", type=Path, help="write each stream's timings to this file")
    args = parser.parse_args(argv)
    raise_open_files()
    import uvloop

    print(json.dumps(uvloop.run(drive(args))), flush=True)
    return 0


# -- admission by the adaptive concurrency limit, in virtual time --------------------------------


def admit_main(argv: list[str]) -> int:
    """How long new streams wait for a concurrency slot when they arrive at RATE a second and
    take TTFT seconds to their first content: the router alone, on a fake clock, in seconds."""
    parser = argparse.ArgumentParser(prog="streams.py admit", description=admit_main.__doc__)
    parser.add_argument("--rate", type=float, default=400.0, help="new streams a second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long they arrive")
    parser.add_argument("--burst", type=int, default=0, help="instead: this many at once")
    parser.add_argument("--ttft", type=float, default=0.5, help="seconds to first content")
    parser.add_argument("--initial", type=int, default=32, help="concurrency.initial")
    args = parser.parse_args(argv)
    waits, failed = asyncio.run(admitted(args))
    waits.sort()
    print(
        f"{len(waits):,} streams opened, {failed} failed; waited for a slot: "
        f"p50 {waits[len(waits) // 2]:.2f} s, p99 {waits[int(len(waits) * 0.99)]:.2f} s, "
        f"max {waits[-1]:.2f} s"
    )
    return 0


async def admitted(args: argparse.Namespace) -> tuple[list[float], int]:
    from failover import FakeClock, Route, Router, Timeouts
    from failover.resilience.concurrency import ConcurrencyPolicy
    from failover.testing import ScriptedDeployment, ok

    clock = FakeClock()
    answer = ok(chunks=tuple("abcdefg"), latency=args.ttft, chunk_gap=5.0)  # 30 s streams
    route = Route([ScriptedDeployment(name, answer, clock=clock) for name in ("first", "second")])
    router = Router(
        {"chat": route},
        clock=clock,
        concurrency=ConcurrencyPolicy(initial=args.initial),
        timeouts=Timeouts(learn=None),
    )
    waits: list[float] = []
    failed = 0

    async def one() -> None:
        nonlocal failed
        began = clock.now()
        try:
            reply = await router.open_stream(
                "chat", {"messages": [{"role": "user", "content": "hi"}]}
            )
        except Exception:
            failed += 1
            return
        waits.append(max(0.0, clock.now() - began - args.ttft))
        async for _ in reply:
            pass

    count = args.burst or int(args.rate * args.seconds)
    async with clock.autojump():
        streams = []
        for _ in range(count):
            streams.append(asyncio.ensure_future(one()))
            if not args.burst:
                await clock.sleep(1 / args.rate)
        await asyncio.gather(*streams)
    return waits, failed


# -- the orchestration -------------------------------------------------------------------------


def raise_open_files() -> int:
    """Lift this process's soft limit on open files to its hard limit (children inherit it);
    the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_load(port: int, model: str, clients: int, duration: float, **extra: Any) -> dict[str, Any]:
    args = [sys.executable, str(Path(__file__)), "load", "--port", str(port), "--model", model]
    args += ["--clients", str(clients), "--duration", str(duration)]
    for key, value in extra.items():
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 600)
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def upstreams(chunks: int, seconds: float) -> Iterator[tuple[int, int]]:
    """Two paced upstreams, on two ports."""
    ports = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        for port in ports:
            args = [sys.executable, str(HERE / "upstream.py"), "--port", str(port)]
            args += ["--chunks", str(chunks), "--stream-seconds", str(seconds)]
            stack.enter_context(process(args))
        for port in ports:
            wait_for_port(port)
        yield ports


@contextlib.contextmanager
def gateway(
    tmp: Path, ports: tuple[int, int], max_connections: int | None
) -> Iterator[tuple[int, int]]:
    """`failover serve` with a route of one deployment on each upstream: (port, pid)."""
    options = f", options: {{max_connections: {max_connections}}}" if max_connections else ""
    config = tmp / f"streams-{ports[0]}.yaml"
    config.write_text(CONFIG.format(first=ports[0], second=ports[1], options=options))
    port = free_port()
    proc, _ = start_gateway(config, port, tmp / f"gateway-{port}.log", [])
    try:
        yield port, proc.pid
    finally:
        stop(proc)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def through_gateway(
    port: int, pid: int, clients: int, duration: float, **extra: Any
) -> dict[str, Any]:
    """A load run through the gateway, with the gateway's CPU use, peak memory and events."""
    cpu, began = cpu_seconds(pid), time.perf_counter()
    result = run_load(port, "bench", clients, duration, **extra)
    result["gateway_cpu"] = (cpu_seconds(pid) - cpu) / (time.perf_counter() - began)
    result["gateway_cpu_ms_per_stream"] = (
        (cpu_seconds(pid) - cpu) * 1000 / max(1, result["completed"])
    )
    result.update(gateway_stats(port, pid))
    return result


def gateway_stats(port: int, pid: int) -> dict[str, Any]:
    """Peak resident memory, and the events other than config loads the gateway recorded."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/events?limit=1000") as resp:
        events = json.loads(resp.read())["events"]
    counted = Counter(e["type"] for e in events if e["type"] != "config")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
        shed = shed_counts(resp.read().decode())
    return {
        "rss_peak_mb": rss_mb(pid)[1],
        "shed": {reason: int(count) for reason, count in shed.items()},
        "events": dict(counted),
        "event_lines": [f"{e['type']}: {e.get('message', '')}" for e in events][-10:],
    }


def long_streams(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Phase 1: C clients streaming 2-second answers for D seconds, direct then gateway."""
    ports_of = upstreams(args.chunks, args.stream_seconds)
    with ports_of as ports, gateway(tmp, ports, args.max_connections) as (port, pid):
        common = {"ramp": args.stream_seconds, "timeout": args.stream_seconds + 30}
        run_load(port, "bench", 50, 2.0, **common)  # warm-up: imports, first connections
        direct = run_load(ports[0], "bench-model", args.clients, args.duration, **common)
        through = through_gateway(port, pid, args.clients, args.duration, **common)
    return {"direct": direct, "gateway": through}


def held_streams(args: argparse.Namespace, tmp: Path, limit: int) -> dict[str, Any]:
    """Phase 2: H clients each holding one slow stream (a chunk a second) open at once."""
    held = min(args.held, (limit - FD_RESERVE) // 2)  # a proxied stream is two sockets
    seconds = args.held_seconds
    common = {"ramp": args.held_ramp, "timeout": seconds + 60, "once": True}
    with upstreams(int(seconds), seconds) as ports:
        direct = run_load(ports[0], "bench-model", held, args.held_ramp + 1, **common)
        with gateway(tmp, ports, args.max_connections) as (port, pid):
            through = through_gateway(port, pid, held, args.held_ramp + 1, **common)
    return {"direct": direct, "gateway": through, "held": held, "asked": args.held}


# -- the report --------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _errors(found: dict[str, int]) -> str:
    total = sum(found.values())
    return (
        f"{total:,}"
        if not total
        else f"**{total:,}** ({', '.join(f'{k} {v}' for k, v in found.items())})"
    )


def _events(found: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(found.items())) or "0"


def report(
    long: dict[str, Any] | None, held: dict[str, Any] | None, args: argparse.Namespace
) -> str:
    lines = _long_report(long, args) if long is not None else []
    if held is not None:
        lines += ["", *_held_report(held, args)] if lines else _held_report(held, args)
    return "\n".join(lines) + "\n"


def _long_report(long: dict[str, Any], args: argparse.Namespace) -> list[str]:
    d, g = long["direct"], long["gateway"]
    ratio = g["done"] / max(1, d["done"])
    added = g["ttfb_p50_ms"] - d["ttfb_p50_ms"]
    # streams a second one core relays, times the time each client spends on one stream
    capacity = 1000 / g["gateway_cpu_ms_per_stream"] * d["whole_p50_ms"] / 1000
    ok = (
        ratio >= TARGETS["ratio"]
        and added <= TARGETS["ttfb_added_ms"]
        and not g["errors"]
        and g["rss_peak_mb"] <= TARGETS["rss_mb"]
        and not g["events"]
    )
    lines = [
        f"Long streams: {args.clients:,} concurrent clients streaming "
        f"{args.stream_seconds:g}-second answers ({args.chunks} chunks) for {args.duration:g} s",
        "",
        "| | streams done | ratio | time to first byte p50 / p99 | whole stream p50 | errors "
        "| gateway RSS peak | breaker / health events |",
        "|---|---|---|---|---|---|---|---|",
        f"| straight to the upstream | {d['done']:,} | | {_ms(d['ttfb_p50_ms'])} / "
        f"{_ms(d['ttfb_p99_ms'])} | {_ms(d['whole_p50_ms'])} | {_errors(d['errors'])} | | |",
        f"| through the gateway | {g['done']:,} | {ratio:.2f}x | {_ms(g['ttfb_p50_ms'])} / "
        f"{_ms(g['ttfb_p99_ms'])} | {_ms(g['whole_p50_ms'])} | {_errors(g['errors'])} "
        f"| {g['rss_peak_mb']:.0f} MB | {_events(g['events'])} |",
        "",
        f"Target: >= 0.95x the direct rate, first byte within 20 ms of direct at p50 "
        f"(+{added:.1f} ms), 0 errors, RSS <= 300 MB, 0 events: "
        f"{'met' if ok else '**not met**'}. The gateway used {g['gateway_cpu']:.0%} of a core "
        f"({g['gateway_cpu_ms_per_stream']:.2f} ms of CPU per stream: a whole core would hold "
        f"{capacity:,.0f} such clients); the load generator {d['client_cpu']:.0%} of a core "
        f"direct and {g['client_cpu']:.0%} through the gateway. Shed by the gateway's "
        f"admission control (by reason): {_events(g['shed'])}.",
    ]
    return lines


def _held_report(held: dict[str, Any], args: argparse.Namespace) -> list[str]:
    d, g = held["direct"], held["gateway"]
    ok = not g["errors"] and g["rss_peak_mb"] <= TARGETS["held_rss_mb"] and not g["events"]
    ok = ok and g["peak_open"] == held["held"]
    lines = [
        f"Held streams: {held['held']:,} clients each holding one slow stream open "
        f"(a chunk a second for {args.held_seconds:g} s; all opened within {args.held_ramp:g} s)",
        "",
        "| | held at once | time to first byte p50 / p99 | whole stream p50 | errors "
        "| gateway RSS peak | breaker / health events |",
        "|---|---|---|---|---|---|---|",
        f"| straight to the upstream | {d['peak_open']:,} | {_ms(d['ttfb_p50_ms'])} / "
        f"{_ms(d['ttfb_p99_ms'])} | {_ms(d['whole_p50_ms'])} | {_errors(d['errors'])} | | |",
        f"| through the gateway | {g['peak_open']:,} | {_ms(g['ttfb_p50_ms'])} / "
        f"{_ms(g['ttfb_p99_ms'])} | {_ms(g['whole_p50_ms'])} | {_errors(g['errors'])} "
        f"| {g['rss_peak_mb']:.0f} MB | {_events(g['events'])} |",
        "",
        f"Target: all held, 0 errors, RSS <= 1 GB: {'met' if ok else '**not met**'}. "
        f"Shed by the gateway's admission control (by reason): {_events(g['shed'])}.",
    ]
    if held["held"] < held["asked"]:
        lines.append(
            f"Held {held['held']:,}, not {held['asked']:,}: a stream through the gateway takes "
            f"two sockets there, and this machine allows a process "
            f"{resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,} open files (hard limit)."
        )
    return lines


def options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter phases (about a minute)")
    parser.add_argument("--clients", type=int, default=1000, help="0: skip the long phase")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--stream-seconds", type=float, default=2.0)
    parser.add_argument("--held", type=int, default=10_000, help="0: skip the held phase")
    parser.add_argument("--held-seconds", type=float, default=30.0)
    parser.add_argument("--held-ramp", type=float, default=15.0)
    parser.add_argument(
        "--max-connections", type=int, help="options.max_connections of both providers"
    )
    parser.add_argument("--out", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.held_seconds, args.held_ramp = 8.0, 16.0, 8.0
    return args


def measure(args: argparse.Namespace) -> str:
    """Both phases; the report as markdown."""
    limit = raise_open_files()
    began, load = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        long = long_streams(args, Path(tmp)) if args.clients else None
        held = held_streams(args, Path(tmp), limit) if args.held else None
    text = report(long, held, args)
    text += (
        f"\nOne gateway process; gateway, two upstreams and the load generator share "
        f"{os.cpu_count()} CPU(s) (load average {load:.1f} when the run began). Measured by "
        f"`benchmarks/streams.py` in {time.perf_counter() - began:.0f} s.\n"
    )
    return text


def main(argv: list[str]) -> int:
    if argv[:1] == ["load"]:
        return load_main(argv[1:])
    if argv[:1] == ["admit"]:
        return admit_main(argv[1:])
    args = options(argv)
    text = measure(args)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
