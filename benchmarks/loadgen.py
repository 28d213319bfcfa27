"""A closed-loop HTTP load generator for overload runs, in a process of its own.

    python benchmarks/loadgen.py --port 8080 --connections 2000 --duration 5 [--stream]
        [--priorities low,normal,high] [--no-retry-after] [--timeout 10] [--model bench]

Each connection (HTTP/1.1 keep-alive, a raw asyncio protocol on uvloop: the load generator
shares the CPUs with the gateway, so it must cost little) sends a chat completion, reads the
whole answer (a stream to its last chunk), and sends the next. A shed answer (429, 503 or
529) is honoured as the official SDKs do: the connection waits `retry-after-ms` (else
`Retry-After`) before its next request, unless `--no-retry-after`. A request not answered
within `--timeout` is a timeout; its connection is replaced.

Connections are opened before the clock starts; each is given a priority
(`x-failover-priority`) in turn from `--priorities`. Prints one JSON document: per priority,
answers by status, timeouts, connection errors, how many sheds carried Retry-After, and
latency percentiles (ms) of successes and of sheds; for streams also time to first byte; and
answers served and shed in each whole second measured.
Answers that come in the first `--warmup` seconds are tallied apart ("warmup"); timeouts and
connection errors are counted whenever they happen.
wrk cannot tell a shed's latency from a success's, nor honour Retry-After: hence this client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, cast

from failover.stats import percentile

SHED = (429, 503, 529)


@dataclass
class Tally:
    """What one priority's connections saw."""

    statuses: dict[int, int] = field(default_factory=dict)
    ok_ms: list[float] = field(default_factory=list)
    shed_ms: list[float] = field(default_factory=list)
    ttfb_ms: list[float] = field(default_factory=list)
    with_retry_after: int = 0
    timeouts: int = 0
    errors: int = 0

    def add(self, other: Tally) -> None:
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.ok_ms += other.ok_ms
        self.shed_ms += other.shed_ms
        self.ttfb_ms += other.ttfb_ms
        self.with_retry_after += other.with_retry_after
        self.timeouts += other.timeouts
        self.errors += other.errors

    def summary(self, duration: float) -> dict[str, Any]:
        ok = self.statuses.get(200, 0)
        return {
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "ok": ok,
            "ok_per_s": ok / duration,
            "shed": sum(self.statuses.get(s, 0) for s in SHED),
            "shed_with_retry_after": self.with_retry_after,
            "timeouts": self.timeouts,
            "errors": self.errors,
            "ok_ms": percentiles(self.ok_ms),
            "shed_ms": percentiles(self.shed_ms),
            "ttfb_ms": percentiles(self.ttfb_ms),
        }


def percentiles(samples: list[float]) -> dict[str, float] | None:
    """p50, p90, p99 and max of `samples` (nearest rank, as everywhere in failover)."""
    if not samples:
        return None
    ordered = sorted(samples)
    out = {f"p{q}": round(percentile(ordered, q) or 0.0, 3) for q in (50, 90, 99)}
    out["max"] = round(ordered[-1], 3)
    return out


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) process `pid` has used so far (0 without one)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_bytes(path: str, model: str, stream: bool, priority: str) -> bytes:
    body = json.dumps(
        {"model": model, "stream": stream, "messages": [{"role": "user", "content": "Say hello"}]},
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
        f"x-failover-priority: {priority}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Response:
    """An HTTP/1.1 response read incrementally: status, headers, then a sized or chunked body."""

    __slots__ = ("buf", "chunked", "done", "first", "headers", "need", "status")

    def __init__(self) -> None:
        self.buf = b""
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.chunked = False
        self.need = -1  # body bytes still to read (sized body)
        self.first: float | None = None  # when the first body bytes came
        self.done = False

    def feed(self, data: bytes, now: float) -> None:
        self.buf += data
        if not self.status:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._head(self.buf[:end])
            self.buf = self.buf[end + 4 :]
        if self.buf and self.first is None:
            self.first = now
        if self.chunked:
            self._chunks()
        elif len(self.buf) >= self.need:
            self.done = True

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = self.headers.get(b"transfer-encoding") == b"chunked"
        self.need = int(self.headers.get(b"content-length", b"0"))

    def _chunks(self) -> None:
        while True:
            line_end = self.buf.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.buf[:line_end].split(b";")[0], 16)
            if len(self.buf) < line_end + 2 + size + 2:
                return
            self.buf = self.buf[line_end + 2 + size + 2 :]
            if size == 0:
                self.done = True
                return

    def retry_after(self) -> float | None:
        """Seconds to wait, as the official SDKs read it: retry-after-ms, else retry-after."""
        for name, scale in ((b"retry-after-ms", 0.001), (b"retry-after", 1.0)):
            if name in self.headers:
                try:
                    return float(self.headers[name]) * scale
                except ValueError:
                    return None
        return None


class Connection(asyncio.Protocol):
    """One keep-alive connection: a request, its whole answer, the next request."""

    def __init__(self, load: Load, priority: str) -> None:
        self.load = load
        self.priority = priority
        self.gone = False  # replaced on purpose: its end is not an error
        self.tally = load.tallies[priority]
        self.request = load.requests[priority]
        self.transport: asyncio.Transport | None = None
        self.response = Response()
        self.sent_at = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self) -> None:
        loop = asyncio.get_running_loop()
        if self.transport is None or self.transport.is_closing():
            return
        if loop.time() >= self.load.stop_at:
            self.gone = True
            self.transport.close()
            return
        self.response = Response()
        self.sent_at = time.perf_counter()
        self.timer = loop.call_later(self.load.args.timeout, self.timed_out)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        response = self.response
        try:
            response.feed(data, now)
        except (ValueError, IndexError):
            self.fail()
            return
        if response.done:
            self.answered(response, now)

    def answered(self, response: Response, now: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        # answers that came during the warm-up count only as answered (not in rates or
        # latencies): the first wave of a run is all connections at once
        measured = now >= self.load.measure_from
        tally = self.tally if measured else self.load.warmup_tally
        tally.statuses[response.status] = tally.statuses.get(response.status, 0) + 1
        if measured:
            self.load.count_second(now, response.status)
        elapsed_ms = (now - self.sent_at) * 1000
        wait = 0.0
        if response.status == 200:
            tally.ok_ms.append(elapsed_ms)
            if self.load.args.stream and response.first is not None:
                tally.ttfb_ms.append((response.first - self.sent_at) * 1000)
        elif response.status in SHED:
            tally.shed_ms.append(elapsed_ms)
            told = response.retry_after()
            if told is not None:
                tally.with_retry_after += 1
                wait = told if self.load.args.retry_after else 0.0
        if response.headers.get(b"connection") == b"close":
            self.load.replace(self)
        elif wait:
            asyncio.get_running_loop().call_later(wait, self.send)
        else:
            self.send()

    def timed_out(self) -> None:
        self.tally.timeouts += 1
        self.load.replace(self)

    def fail(self) -> None:
        self.tally.errors += 1
        self.load.replace(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.gone and self.load.running():
            self.tally.errors += 1  # the gateway closed it, or it broke
            self.load.replace(self)


class Load:
    """The connections of one run and what they saw."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.priorities = args.priorities.split(",")
        self.tallies = {p: Tally() for p in self.priorities}
        self.requests = {
            p: request_bytes(args.path, args.model, args.stream, p) for p in self.priorities
        }
        self.stop_at = float("inf")
        self.measure_from = float("inf")  # perf_counter() from which answers are measured
        self.warmup_tally = Tally()
        self.live: set[Connection] = set()
        self.reopening: set[asyncio.Future[None]] = set()
        self.next_priority = 0
        self.seconds: list[list[int]] = []  # [served, shed] in each second measured

    def count_second(self, now: float, status: int) -> None:
        """Tally an answer in its second of the measurement: [served, shed]."""
        second = int(now - self.measure_from)
        while len(self.seconds) <= second:
            self.seconds.append([0, 0])
        if status == 200:
            self.seconds[second][0] += 1
        elif status in SHED:
            self.seconds[second][1] += 1

    def running(self) -> bool:
        return asyncio.get_running_loop().time() < self.stop_at

    async def open(self, priority: str) -> Connection | None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: Connection(self, priority), "127.0.0.1", self.args.port
            )
        except OSError:
            self.tallies[priority].errors += 1
            return None
        self.live.add(conn)
        return conn

    def replace(self, conn: Connection) -> None:
        """Close `conn` and, while the run lasts, open another in its place."""
        conn.gone = True
        self.live.discard(conn)
        if conn.transport is not None:
            conn.transport.abort()
        if self.running():
            task = asyncio.ensure_future(self._reopen(conn.priority))
            self.reopening.add(task)
            task.add_done_callback(self.reopening.discard)

    async def _reopen(self, priority: str) -> None:
        conn = await self.open(priority)
        if conn is not None:
            conn.send()

    async def run(self) -> dict[str, Any]:
        args = self.args
        conns: list[Connection] = []
        for start in range(0, args.connections, 200):  # not one SYN storm: 200 at a time
            batch = range(start, min(args.connections, start + 200))
            opened = await asyncio.gather(
                *(self.open(self.priorities[i % len(self.priorities)]) for i in batch)
            )
            conns.extend(c for c in opened if c is not None)
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        self.measure_from = began + args.warmup
        self.stop_at = loop.time() + args.warmup + args.duration
        for conn in conns:
            conn.send()
        await asyncio.sleep(args.warmup)
        cpu = cpu_seconds(args.cpu_of)
        await asyncio.sleep(args.duration)
        elapsed = time.perf_counter() - self.measure_from
        cpu = cpu_seconds(args.cpu_of) - cpu
        for conn in list(self.live):  # answers still in flight at the end are not counted
            conn.gone = True
            if conn.transport is not None:
                conn.transport.abort()
        everything = Tally()
        for tally in self.tallies.values():
            everything.add(tally)
        return {
            "connections": args.connections,
            "duration_s": round(elapsed, 3),
            "stream": args.stream,
            "by_priority": {p: t.summary(elapsed) for p, t in self.tallies.items()},
            "all": everything.summary(elapsed),
            "warmup": self.warmup_tally.summary(max(args.warmup, 1e-9)),
            "per_second": self.seconds[: int(elapsed)],  # whole seconds: [served, shed]
            "cpu_s": cpu,  # of process --cpu-of while answers were measured
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--priorities", default="normal")
    parser.add_argument("--model", default="bench")
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument(
        "--warmup", type=float, default=0.0, help="seconds before answers are measured"
    )
    parser.add_argument(
        "--cpu-of", type=int, help="a process id whose CPU time to measure meanwhile"
    )
    parser.add_argument("--no-retry-after", dest="retry_after", action="store_false")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        result = asyncio.run(Load(args).run())
    else:
        result = uvloop.run(Load(args).run())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
