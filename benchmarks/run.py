"""`make bench`: how much the gateway adds, measured against a local fake upstream in one run.

    upstream   benchmarks/upstream.py in its own process (raw asyncio on uvloop)
    gateway    `failover serve` (one process, uvloop + httptools) with a config pointing at it
    load       wrk (Lua script for the POST body); time to first token by a raw-socket client

Every number is measured twice in the same run, straight at the upstream ("direct") and
through the gateway, so the result is the gateway's overhead on this machine. Then
benchmarks/streams.py: thousands of long streams held through one gateway process. Only
127.0.0.1 is used; the whole run takes under four minutes (`--quick`: about two). Results go
to stdout and to benchmarks/results.md (markdown tables the README includes).

    python benchmarks/run.py [--quick] [--no-streams] [--duration 3] [--rounds 3]
                             [--ttft-requests 400] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from failover.stats import percentile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BODY = b'{"model":"bench","messages":[{"role":"user","content":"Say hello"}]}'
STREAM_BODY = b'{"model":"bench","stream":true,"messages":[{"role":"user","content":"Say hello"}]}'
DIRECT_BODY = BODY.replace(b'"bench"', b'"bench-model"')
DIRECT_STREAM_BODY = STREAM_BODY.replace(b'"bench"', b'"bench-model"')
CONFIG = """\
providers:
  upstream: {{kind: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench}}
routes:
  bench:
    deployments: [{{provider: upstream, model: bench-model}}]
defaults:
  health: {{enabled: false}}
"""
LUA = """\
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
"""

TARGETS = {
    "added_p50_ms": 0.3,
    "added_p99_ms": 1.0,
    "rps_16": 6000.0,
    "ttft_added_ms": 1.0,
    "rss_mb": 100.0,
    "startup_s": 1.0,
}


@dataclass
class Wrk:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.005)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def http_get(port: int, path: str) -> int:
    """Status of a GET, or 0 when the connection fails."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n".encode())
            head = s.recv(64)
    except OSError:
        return 0
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


@contextlib.contextmanager
def process(args: list[str], **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Ask a process to end (SIGTERM: a gateway drains), and kill it after `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parse_duration_ms(text: str) -> float:
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
    for unit in ("us", "ms", "s", "m"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def wrk(url: str, lua: Path, connections: int, duration: float) -> Wrk:
    args = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "-s",
        str(lua),
        url,
    ]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=duration + 30)
    rps, p50, p99, errors, requests = 0.0, 0.0, 0.0, 0, 0
    for line in out.stdout.splitlines():
        words = line.split()
        if words[1:3] == ["requests", "in"] and words[0].isdigit():
            requests = int(words[0])
        elif line.startswith("Requests/sec:"):
            rps = float(words[1])
        elif words[:1] == ["50%"]:
            p50 = parse_duration_ms(words[1])
        elif words[:1] == ["99%"]:
            p99 = parse_duration_ms(words[1])
        elif "Non-2xx" in line or line.strip().startswith("Socket errors"):
            errors += sum(int(w.rstrip(",")) for w in words if w.rstrip(",").isdigit())
    return Wrk(rps, p50, p99, errors, requests)


def ttft(port: int, body: bytes, requests: int) -> list[float]:
    """Seconds from sending a streamed request to its first `data:` bytes, per request."""
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(requests):
            started = time.perf_counter()
            s.sendall(request)
            seen, first = b"", None
            while not seen.endswith(b"0\r\n\r\n"):
                data = s.recv(65536)
                if not data:
                    raise RuntimeError("connection closed mid-stream")
                if first is None and b"data:" in data:
                    first = time.perf_counter() - started
                seen = seen[-8:] + data
            assert first is not None
            samples.append(first)
    return samples


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def percentile_ms(samples: list[float], q: float) -> float:
    """Percentile `q` (nearest rank, as everywhere in failover) of `samples` in seconds, in ms."""
    value = percentile(sorted(samples), q)
    if value is None:
        raise ValueError("no samples")
    return value * 1000


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_gateway(
    config: Path, port: int, log: Path, extra: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], float]:
    """Start `failover serve` (logging to `log`, in `env` if given); seconds until
    /health/ready answers 200."""
    args = [sys.executable, "-m", "failover.cli", "serve", "-c", str(config), "--port", str(port)]
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen([*args, *extra], stdout=out, stderr=out, env=env)
    while http_get(port, "/health/ready") != 200:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited: {log.read_text()[-2000:]}")
        if time.perf_counter() - started > 15:
            raise RuntimeError("the gateway did not become ready in 15s")
        time.sleep(0.002)
    return proc, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per measurement")
    parser.add_argument("--ttft-requests", type=int, default=400)
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument("--quick", action="store_true", help="shorter runs (about two minutes)")
    parser.add_argument("--no-streams", dest="streams", action="store_false",
                        help="skip benchmarks/streams.py")  # fmt: skip

    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 2.0, 2
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    began = time.perf_counter()
    up_port, gw_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        config = tmpdir / "bench.yaml"
        config.write_text(CONFIG.format(port=up_port))
        lua_gateway, lua_direct = tmpdir / "gateway.lua", tmpdir / "direct.lua"
        lua_gateway.write_text(LUA.format(body=BODY.decode()))
        lua_direct.write_text(LUA.format(body=DIRECT_BODY.decode()))
        upstream_args = [sys.executable, str(HERE / "upstream.py"), "--port", str(up_port)]
        with process(upstream_args):
            wait_for_port(up_port)
            gateway, startup = start_gateway(config, gw_port, tmpdir / "gateway.log", [])
            try:
                results = measure(args, up_port, gw_port, lua_direct, lua_gateway)
                results["rss_mb"], results["rss_peak_mb"] = rss_mb(gateway.pid)
            finally:
                gateway.terminate()
                gateway.wait(10)
            # the same at 16 connections without the per-request log line (logs at warning)
            quiet_port = free_port()
            quiet, _ = start_gateway(
                config, quiet_port, tmpdir / "quiet.log", ["--log-level", "warning"]
            )
            try:
                url = f"http://127.0.0.1:{quiet_port}/v1/chat/completions"
                wrk(url, lua_gateway, 16, 1.0)
                runs = [wrk(url, lua_gateway, 16, args.duration) for _ in range(args.rounds)]
                results["rps_16_quiet"] = median(r.rps for r in runs)
            finally:
                quiet.terminate()
                quiet.wait(10)
    results["startup_s"] = startup
    results["elapsed_s"] = time.perf_counter() - began
    table = report(results)
    print(table)
    if args.streams:
        import streams  # benchmarks/streams.py, beside this file

        table += "\n" + streams.measure(streams.options(["--quick"] if args.quick else []))
        print(table[table.index("Long streams") :])
    args.out.write_text(table)
    print(
        f"\nwritten to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
    )
    return 0


def measure(
    args: argparse.Namespace, up_port: int, gw_port: int, lua_direct: Path, lua_gateway: Path
) -> dict[str, float]:
    direct_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
    gateway_url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
    d = args.duration
    out: dict[str, float] = {}
    wrk(gateway_url, lua_gateway, 16, 1.0)  # warm-up: connection pools, caches, first allocations
    wrk(direct_url, lua_direct, 16, 1.0)
    for connections in (1, 16, 64):
        # alternate direct and gateway runs and keep the median of each: one noisy neighbour
        # moment on a shared machine then moves one run, not the result
        direct, through = [], []
        for _ in range(args.rounds):
            direct.append(wrk(direct_url, lua_direct, connections, d))
            through.append(wrk(gateway_url, lua_gateway, connections, d))
        if any(r.errors for r in (*direct, *through)):
            raise RuntimeError(f"errors at {connections} connections: {through} / {direct}")
        out[f"direct_rps_{connections}"] = median(r.rps for r in direct)
        out[f"rps_{connections}"] = median(r.rps for r in through)
        if connections == 1:
            out["direct_p50_ms"] = median(r.p50_ms for r in direct)
            out["direct_p99_ms"] = median(r.p99_ms for r in direct)
            out["gateway_p50_ms"] = median(r.p50_ms for r in through)
            out["gateway_p99_ms"] = median(r.p99_ms for r in through)
            out["added_p50_ms"] = out["gateway_p50_ms"] - out["direct_p50_ms"]
            out["added_p99_ms"] = out["gateway_p99_ms"] - out["direct_p99_ms"]
    n = args.ttft_requests
    ttft(gw_port, STREAM_BODY, 50)  # warm-up
    direct_ttft = ttft(up_port, DIRECT_STREAM_BODY, n)
    gateway_ttft = ttft(gw_port, STREAM_BODY, n)
    out["direct_ttft_ms"] = percentile_ms(direct_ttft, 50)
    out["gateway_ttft_ms"] = percentile_ms(gateway_ttft, 50)
    out["ttft_added_ms"] = out["gateway_ttft_ms"] - out["direct_ttft_ms"]
    out["gateway_ttft_p99_ms"] = percentile_ms(gateway_ttft, 99)
    return out


def report(r: dict[str, float]) -> str:
    def met(key: str, value: float, higher: bool = False) -> str:
        target = TARGETS[key]
        ok = value >= target if higher else value <= target
        return "yes" if ok else "**no**"

    rows = [
        ("Added latency p50, 1 connection", f"{r['direct_p50_ms']:.3f} ms",
         f"{r['gateway_p50_ms']:.3f} ms", f"+{r['added_p50_ms']:.3f} ms", "<= 0.3 ms",
         met("added_p50_ms", r["added_p50_ms"])),
        ("Added latency p99, 1 connection", f"{r['direct_p99_ms']:.3f} ms",
         f"{r['gateway_p99_ms']:.3f} ms", f"+{r['added_p99_ms']:.3f} ms", "<= 1 ms",
         met("added_p99_ms", r["added_p99_ms"])),
        ("Throughput, 1 connection", f"{r['direct_rps_1']:,.0f} req/s", f"{r['rps_1']:,.0f} req/s",
         f"{r['rps_1'] / r['direct_rps_1']:.2f}x", "", ""),
        ("Throughput, 16 connections", f"{r['direct_rps_16']:,.0f} req/s",
         f"{r['rps_16']:,.0f} req/s", f"{r['rps_16'] / r['direct_rps_16']:.2f}x",
         ">= 6,000 req/s", met("rps_16", r["rps_16"], higher=True)),
        ("Throughput, 16 connections, no request log lines", f"{r['direct_rps_16']:,.0f} req/s",
         f"{r['rps_16_quiet']:,.0f} req/s", f"{r['rps_16_quiet'] / r['direct_rps_16']:.2f}x",
         "", ""),
        ("Throughput, 64 connections", f"{r['direct_rps_64']:,.0f} req/s",
         f"{r['rps_64']:,.0f} req/s", f"{r['rps_64'] / r['direct_rps_64']:.2f}x", "", ""),
        ("Streaming time to first token (p50)", f"{r['direct_ttft_ms']:.3f} ms",
         f"{r['gateway_ttft_ms']:.3f} ms", f"+{r['ttft_added_ms']:.3f} ms", "<= 1 ms",
         met("ttft_added_ms", r["ttft_added_ms"])),
        ("Gateway resident memory (after load)", "", f"{r['rss_mb']:.1f} MB",
         f"peak {r['rss_peak_mb']:.1f} MB", "<= 100 MB", met("rss_mb", r["rss_peak_mb"])),
        ("Gateway start-up to ready", "", f"{r['startup_s']:.2f} s", "", "<= 1 s",
         met("startup_s", r["startup_s"])),
    ]  # fmt: skip
    head = "| Measurement | Direct | Through the gateway | Added / ratio | Target | Met |"
    lines = [head, "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    cpu = os.cpu_count() or 0
    lines.append("")
    lines.append(
        f"One gateway process; gateway, upstream and load generator (wrk, 1 thread) share "
        f"{cpu} CPU(s) ({platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}). Each wrk figure is the median of alternating runs. "
        f"Measured by `make bench` in {r['elapsed_s']:.0f} s."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
