"""Overload: ten times the connections the gateway serves best, answered by fast shedding.

    python benchmarks/overload.py [--duration 12] [--sweep-duration 2] [--bracket 4]
                                  [--factor 10] [--rounds 3] [--delay 0.02]
                                  [--stream-gap 0.02] [--out FILE] [--json FILE]
                                  [--admission '{target_lag: 50ms}']
                                  [--only whole|streams] [--sweep 64,128,256,512]

    upstream   benchmarks/upstream.py's server in its own process, every answer held `--delay`
               seconds (a model takes time; a zero-latency upstream never lets requests pile up)
               and every stream paced by `--stream-gap` between its 9 events
    gateway    `failover serve` with default settings (admission included) in its own process
    load       benchmarks/loadgen.py in its own process: keep-alive connections that honour
               Retry-After as the official SDKs do; priorities high, normal, low in turn

For whole answers and then for streams: a short sweep finds the fewest connections that reach
the gateway's best rate ("best concurrency", within 5% of the best) and the connections that
reached the best rate itself; the best concurrency straight at the upstream shows the load
generator is not the limit; then `--factor` times the best concurrency hits the gateway, in
`--rounds` rounds, each on a gateway started for it (an overload within 10 s of the last
would meet the wait and the backlog of the last one's shedding episode). In each round the
best rate is measured for `--bracket` seconds just before and just after the overload, and
the round's goodput is its overload's rate against their mean: this machine's speed drifts
by 10-20% over minutes, and the best of the sweep's short samples (also reported, with the
goodput against it) is an estimate biased up by that noise. One round's goodput still moves
by +-0.05 with the machine and with how a burst happens to land, so the table details the
round with the median goodput and lists every round's; the other targets hold in every
round. After an overload a light load lets the gateway lift its lines before the next
bracket. Reported: every request's fate (served, shed with Retry-After, timed out, failed),
how fast sheds were answered, goodput as a ratio of the best rate, where the gateway's line,
what it had in flight and its loop's lag settled (its /admin/status, polled a few times a
second), and the breaker and health events of every gateway at the end of its round (its
upstream is healthy, so there must be none). The overload lasts 12 seconds: all its
connections open at once, and a shorter window measures mostly that first burst (streams let
in during the warm-up and served in the window, clients shed in the first second coming back
before the wait has adapted), not an overload that lasts. Only 127.0.0.1; about 3.5 minutes
(`--only` one kind: half that; `--rounds 1`: 40% of that). The table goes to stdout and
into benchmarks/results.md (between its overload markers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run.py's gateway and process helpers, upstream.py's server

from run import CONFIG, free_port, process, start_gateway, wait_for_port  # noqa: E402

BEGIN, END = "<!-- overload: begin -->", "<!-- overload: end -->"
TARGETS = {"timeouts": 0, "goodput": 0.9, "shed_p99_ms": 1000.0, "breaker_events": 0}
SWEEP = {False: (32, 64, 128, 256), True: (64, 128, 256, 512)}
PHASES = {"whole": "Whole answers", "streams": "Streams"}


# -- the slow upstream, run as `overload.py upstream` ------------------------------------------


def serve_upstream(port: int, delay: float, gap: float) -> None:
    """benchmarks/upstream.py's protocol with each whole answer held `delay` seconds."""
    import upstream

    # 9 events `gap` apart: the role and the first content at once, then 8 chunks, then the end
    pace = upstream.Pace(chunks=9, seconds=9 * gap) if gap else None

    class Slow(upstream.Upstream):
        def _answer(self, head: bytes, body: bytes) -> None:
            if b'"stream":true' in body:
                super()._answer(head, body)
                return
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self._held, head, body)

        def _held(self, head: bytes, body: bytes) -> None:
            if self.transport is not None and not self.transport.is_closing():
                super()._answer(head, body)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Slow(pace), "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    import uvloop

    uvloop.run(serve())


# -- load and measurements ---------------------------------------------------------------------


class Bench:
    """The running upstream, a gateway started afresh for each round (`gateway`), and load
    runs against either; the breaker and health events and the sheds by reason of every
    gateway it started, summed."""

    def __init__(self, up_port: int, config: Path, tmp: Path) -> None:
        self.up_port = up_port
        self.config = config
        self.tmp = tmp
        self.gw_port = 0
        self.gateway_pid = 0
        self.breaker_events = 0
        self.shed_by_reason: dict[str, float] = {}
        self.admission = ""

    @contextlib.contextmanager
    def gateway(self) -> Iterator[None]:
        """A gateway of its own for what runs inside: a shedding episode, the wait it has
        learned and the clients it told to come back are the last overload's, not the next
        one's (an overload within 10 s of the last is still the same episode)."""
        self.gw_port = free_port()
        log = self.tmp / f"gateway-{self.gw_port}.log"
        gateway, _ = start_gateway(self.config, self.gw_port, log, [])
        self.gateway_pid = gateway.pid
        try:
            self.load(16, 1.0, stream=False)  # warm-up: pools, caches, first allocations
            yield
            events = get_json(self.gw_port, "/admin/events?limit=1000")["events"]
            self.breaker_events += sum(e["type"] in ("breaker", "health") for e in events)
            for reason, count in shed_counts(get_text(self.gw_port, "/metrics")).items():
                self.shed_by_reason[reason] = self.shed_by_reason.get(reason, 0.0) + count
            admission = get_json(self.gw_port, "/admin/status")["gateway"]["admission"]
            self.admission = (
                f"max_requests {admission['requests']['limit']}, max_streams "
                f"{admission['streams']['limit']}, max_lag {admission['max_lag_ms']:.0f} ms, "
                f"target_lag {admission['target_lag_ms'] or 'off'} ms"
            )
        finally:
            with contextlib.suppress(Exception):
                gateway.terminate()
                gateway.wait(10)

    def load(self, connections: int, duration: float, *, stream: bool, **extra: Any) -> Any:
        """Run benchmarks/loadgen.py against the gateway (or, `direct=True`, the upstream); its
        JSON result, with the gateway's CPU seconds while it measured (`cpu_s`)."""
        direct = extra.pop("direct", False)
        port = self.up_port if direct else self.gw_port
        args = [
            sys.executable, str(HERE / "loadgen.py"), "--port", str(port),
            "--connections", str(connections), "--duration", str(duration), "--timeout", "10",
        ]  # fmt: skip
        if stream:
            args.append("--stream")
        if direct:
            args += ["--model", "bench-model"]
        extra.setdefault("warmup", 0.5)  # the first wave of requests is all connections at once
        for name, value in extra.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        args += ["--cpu-of", str(self.gateway_pid)]
        self.settle()
        out = subprocess.run(
            args, capture_output=True, text=True, timeout=duration + 90, check=True
        )
        return json.loads(out.stdout)

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until the gateway has nothing in flight: a run's clients hang up at its end,
        and the gateway finishes (or drops) what they had asked before the next run starts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            admission = get_json(self.gw_port, "/admin/status")["gateway"]["admission"]
            if admission["requests"]["in_flight"] + admission["streams"]["in_flight"] == 0:
                return
            time.sleep(0.05)

    def sweep(
        self, duration: float, *, stream: bool, points: tuple[int, ...] = ()
    ) -> tuple[Any, list[Any]]:
        """(the best concurrency's run, every run) over the sweep's connections (`points`, or
        the default for the kind): the best concurrency is the fewest connections within 5%
        of the best rate."""
        runs = [self.load(c, duration, stream=stream) for c in points or SWEEP[stream]]
        best = max(r["all"]["ok_per_s"] for r in runs)
        return next(r for r in runs if r["all"]["ok_per_s"] >= 0.95 * best), runs

    def phase(self, args: argparse.Namespace, *, stream: bool) -> dict[str, Any]:
        """Sweep and direct check, then `--rounds` overloads, each on a fresh gateway between
        two measurements of the best rate, for answers or streams: the round with the median
        goodput, and every round's figures under "rounds"."""
        with self.gateway():
            knee, runs = self.sweep(args.sweep_duration, stream=stream, points=args.sweep)
            best_c = knee["connections"]
            direct = self.load(best_c, args.sweep_duration, stream=stream, direct=True)
        peak = max(runs, key=lambda r: r["all"]["ok_per_s"])
        over_c = best_c * args.factor
        rounds = []
        for _ in range(args.rounds):
            with self.gateway():
                before = self.load(peak["connections"], args.bracket, stream=stream)
                with Watch(self.gw_port, stream=stream) as watch:
                    overload = self.load(
                        over_c, args.duration, stream=stream, priorities="high,normal,low",
                        warmup=1.0,
                    )  # fmt: skip
                self.recover()
                after = self.load(peak["connections"], args.bracket, stream=stream)
            rounds.append(_round((before, after), overload, watch))
        median = sorted(rounds, key=lambda r: r["goodput"])[len(rounds) // 2]
        return {
            **median,
            "best_connections": best_c,
            "peak_connections": peak["connections"],
            "sweep": {r["connections"]: r["all"]["ok_per_s"] for r in runs},
            "sweep_best": peak["all"]["ok_per_s"],
            "direct_rate": direct["all"]["ok_per_s"],
            "overload_connections": over_c,
            "rounds": [_summary(r) for r in rounds],
        }

    def recover(self, timeout: float = 10.0) -> None:
        """After an overload: a light load until the gateway has lifted its lines (they move
        only on the samples its requests bring), so the next run meets the gateway at rest."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            admission = get_json(self.gw_port, "/admin/status")["gateway"]["admission"]
            if admission["line"] is None and admission["stream_line"] is None:
                return
            self.load(16, 0.5, stream=False, warmup=0.0)


class Watch:
    """Polls the gateway's admission (/admin/status) a few times a second while a load runs:
    where its line, what it had in flight (whole requests, or streams) and its loop's lag
    settled."""

    EVERY = 0.25  # seconds: a few requests a second cost the gateway nothing to speak of

    def __init__(self, port: int, *, stream: bool) -> None:
        self.port = port
        self.line, self.kind = ("stream_line", "streams") if stream else ("line", "requests")
        self.samples: list[tuple[int | None, int, float]] = []  # (line, in flight, lag in ms)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.EVERY):
            with contextlib.suppress(Exception):
                admission = get_json(self.port, "/admin/status")["gateway"]["admission"]
                line = admission[self.line]
                held = admission[self.kind]["in_flight"]
                lag = admission["smoothed_lag_ms"]
                self.samples.append((None if line is None else line["limit"], held, lag))

    def median(self) -> dict[str, float | None]:
        """The median line (None: none was drawn in most samples), in flight and loop lag,
        over the second half of the samples (settled by then)."""
        late = self.samples[len(self.samples) // 2 :]
        lines = [s[0] for s in late if s[0] is not None]

        held = [s[1] for s in late]
        lags = [s[2] for s in late]
        return {
            "line": statistics.median(lines) if len(lines) * 2 > len(late) else None,
            "in_flight": statistics.median(held) if held else None,
            "lag_ms": statistics.median(lags) if lags else None,
        }


def _round(brackets: tuple[Any, Any], overload: Any, watch: Watch) -> dict[str, Any]:
    """One overload against the mean of the best rate measured just before and just after."""
    best = statistics.mean(r["all"]["ok_per_s"] for r in brackets)
    return {
        "best_rate": best,
        "best_per_cpu_s": statistics.mean(per_cpu(r) for r in brackets),
        "brackets": [{"rate": r["all"]["ok_per_s"], "shed": r["all"]["shed"]} for r in brackets],
        "overload": overload,
        "overload_per_cpu_s": per_cpu(overload),
        "overload_line": watch.median(),
        "goodput": ratio(overload["all"]["ok_per_s"], best) or 0.0,
    }


def _summary(r: dict[str, Any]) -> dict[str, Any]:
    """What the checks need of a round (its whole overload run is kept for the median only)."""
    a = r["overload"]["all"]
    return {
        "goodput": r["goodput"],
        "timeouts": a["timeouts"],
        "errors": a["errors"],
        "shed": a["shed"],
        "shed_with_retry_after": a["shed_with_retry_after"],
        "shed_p99_ms": shed_p99(a),
    }


def shed_p99(run: dict[str, Any]) -> float:
    """How fast a load run's sheds were answered at p99, in ms (0 when none was shed)."""
    return float(run["shed_ms"]["p99"]) if run["shed_ms"] else 0.0


def per_cpu(run: Any) -> float:
    """Answers served per second of the gateway's CPU while `run` measured them."""
    return float(run["all"]["ok_per_s"] * run["duration_s"] / max(run["cpu_s"], 1e-9))


def get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
        return json.loads(answer.read())


def get_text(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
        return str(answer.read().decode())


def shed_counts(metrics: str) -> dict[str, float]:
    """failover_admission_shed_total summed by reason."""
    out: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("failover_admission_shed_total{"):
            labels, value = line.rsplit(" ", 1)
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = out.get(reason, 0.0) + float(value)
    return out


# -- report ------------------------------------------------------------------------------------


def ratio(part: float, whole: float) -> float | None:
    """part / whole, or None when there is no whole to compare with (nothing was served)."""
    return part / whole if whole > 0 else None


def fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:,.0f}"


def times(value: float | None) -> str:
    return "n/a (nothing served to compare with)" if value is None else f"{value:.2f}x"


def rows(name: str, p: dict[str, Any]) -> list[tuple[str, ...]]:
    o = p["overload"]
    a = o["all"]
    every = p["rounds"]
    sent = sum(a["statuses"].values()) + a["timeouts"] + a["errors"]
    goodput = ratio(a["ok_per_s"], p["best_rate"])
    ok_p99 = a["ok_ms"]["p99"] if a["ok_ms"] else 0.0
    sheds = a["shed"]
    by = o["by_priority"]
    served = ", ".join(
        f"{prio} {by[prio]['ok'] / max(1, by[prio]['ok'] + by[prio]['shed']):.0%}"
        for prio in ("high", "normal", "low")
    )
    line = p["overload_line"]
    sweep = ", ".join(f"{c}: {rate:,.0f}/s" for c, rate in p["sweep"].items())
    brackets = " / ".join(
        f"{b['rate']:,.0f}/s" + (f" ({b['shed']:,} shed)" if b["shed"] else "")
        for b in p["brackets"]
    )
    return [
        (f"{name}: sweep (connections: served/s)", sweep, ""),
        (f"{name}: best rate (at {p['peak_connections']} connections, before / after the "
         f"overload)", f"{p['best_rate']:,.0f}/s ({brackets}; the sweep's best sample: "
         f"{p['sweep_best']:,.0f}/s; {p['best_connections']} connections straight at the "
         f"upstream: {p['direct_rate']:,.0f}/s)", ""),
        (f"{name}: overload ({p['overload_connections']} connections, {o['duration_s']:.1f} s)",
         f"{sent:,} requests: {a['ok']:,} served, {sheds:,} shed "
         f"({a['shed_with_retry_after']:,} with Retry-After), {a['timeouts']} timed out, "
         f"{a['errors']} failed", f"timeouts = {TARGETS['timeouts']}"),
        (f"{name}: goodput under overload",
         f"{a['ok_per_s']:,.0f}/s = {times(goodput)} the best rate "
         f"({times(ratio(a['ok_per_s'], p['sweep_best']))} the sweep's best sample)",
         f">= {TARGETS['goodput']:.2f}x"),
        (f"{name}: goodput in each of {len(every)} rounds (this table details the median one)",
         ", ".join(times(x["goodput"]) for x in every), ""),
        (f"{name}: every round: timed out or failed / shed without Retry-After / worst shed p99",
         f"{sum(x['timeouts'] + x['errors'] for x in every)} / "
         f"{sum(x['shed'] - x['shed_with_retry_after'] for x in every)} / "
         f"{max(x['shed_p99_ms'] for x in every):.1f} ms", ""),
        (f"{name}: served each second of the overload (fewest / median / most)",
         seconds(o.get("per_second", [])), ""),
        (f"{name}: served per gateway CPU-second (overload / best)",
         f"{p['overload_per_cpu_s']:,.0f} / {p['best_per_cpu_s']:,.0f} = "
         f"{times(ratio(p['overload_per_cpu_s'], p['best_per_cpu_s']))}", ""),
        (f"{name}: shed answered in (p50 / p99)",
         f"{a['shed_ms']['p50'] if a['shed_ms'] else 0:.1f} / {shed_p99(a):.1f} ms",
         f"p99 <= {TARGETS['shed_p99_ms']:.0f} ms"),
        (f"{name}: served in (p50 / p99)",
         f"{a['ok_ms']['p50'] if a['ok_ms'] else 0:.1f} / {ok_p99:.1f} ms", ""),
        (f"{name}: share served by priority", served, "high >= normal >= low"),
        (f"{name}: line / in flight / loop lag (median, overload's second half)",
         f"{fmt(line['line'])} / {fmt(line['in_flight'])} / {fmt(line['lag_ms'])} ms", ""),
    ]  # fmt: skip


def seconds(per_second: list[list[int]]) -> str:
    """The fewest, median and most answers served in a second: whether a shortfall was a
    moment (the first burst) or lasted."""
    served = sorted(ok for ok, _ in per_second)
    if not served:
        return "none"
    return f"{served[0]:,} / {statistics.median(served):,.0f} / {served[-1]:,}"


def met(r: dict[str, Any]) -> list[tuple[str, bool]]:
    """Each target: goodput on the median round; the others in every round."""
    checks = []
    for name in PHASES:
        if name not in r:
            continue
        p = r[name]
        every = p["rounds"]
        checks.append(
            (f"{name}: no timeouts", all(x["timeouts"] == 0 and x["errors"] == 0 for x in every))
        )
        checks.append(
            (
                f"{name}: every shed has Retry-After",
                all(x["shed_with_retry_after"] == x["shed"] for x in every),
            )
        )
        checks.append((f"{name}: served at all", p["best_rate"] > 0 and p["direct_rate"] > 0))
        checks.append((f"{name}: goodput", p["goodput"] >= TARGETS["goodput"]))
        worst = max(x["shed_p99_ms"] for x in every)
        checks.append((f"{name}: shed p99", worst <= TARGETS["shed_p99_ms"]))
    checks.append(("no breaker or health events", r["breaker_events"] == 0))
    return checks


def report(r: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        "",
        "### Overload",
        "",
        "| Measurement | Result | Target |",
        "|---|---|---|",
    ]
    for key, name in PHASES.items():
        if key in r:
            lines += ["| " + " | ".join(row) + " |" for row in rows(name, r[key])]
    reasons = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(r["shed_by_reason"].items())) or "none"
    lines.append(f"| Sheds by reason (gateway metrics) | {reasons} | |")
    lines.append(
        f"| Breaker and health events on the healthy upstream | {r['breaker_events']} | 0 |"
    )
    failed = [name for name, ok in met(r) if not ok]
    lines.append(f"| All targets met | {'yes' if not failed else 'no: ' + ', '.join(failed)} | |")
    lines += [
        "",
        f"Upstream answers held {r['delay'] * 1000:.0f} ms, streams of 9 events "
        f"{r['stream_gap'] * 1000:.0f} ms apart; the gateway runs its default settings "
        f"(admission: {r['admission']}); the load generator (benchmarks/loadgen.py, one "
        f"process) honours Retry-After like the SDKs. Gateway, upstream and load share "
        f"{os.cpu_count()} CPU(s), whose load average (other work included) was "
        f"{r['load'][0]:.1f} at the start and {r['load'][1]:.1f} at the end. Measured by "
        f"`python benchmarks/overload.py` in {r['elapsed_s']:.0f} s.",
        "",
        END,
    ]
    return "\n".join(lines) + "\n"


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def write_results(path: Path, table: str) -> None:
    """Put `table` between the overload markers of `path` (appended when they are missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + table.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + table
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of overload")
    parser.add_argument("--sweep-duration", type=float, default=2.0, help="seconds per sweep run")
    parser.add_argument(
        "--bracket", type=float, default=4.0, help="seconds of the best rate before and after"
    )
    parser.add_argument("--factor", type=int, default=10, help="x the best concurrency")
    parser.add_argument(
        "--rounds",
        type=positive,
        default=3,
        help="overloads per kind, each on a gateway of its own between two measurements of "
        "the best rate; goodput is the median round's (one round's moves by about 0.05 with "
        "the machine's speed)",
    )
    parser.add_argument(
        "--sweep",
        type=lambda text: tuple(int(c) for c in text.split(",")),
        default=(),
        help="connections to sweep, e.g. 512 to pin the best concurrency (and the overload, "
        "x --factor) from run to run (default: 32-256 whole, 64-512 streams)",
    )
    parser.add_argument("--delay", type=float, default=0.02, help="upstream seconds per answer")
    parser.add_argument("--stream-gap", type=float, default=0.02, help="seconds between events")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument(
        "--only", choices=tuple(PHASES), help="measure whole answers or streams alone"
    )
    parser.add_argument(
        "--admission",
        default="",
        help="server.admission settings to try, as YAML flow: '{max_lag: 30ms}' (default: none)",
    )
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("upstream", help="run the slow upstream (used by this benchmark)")
    up.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "upstream":
        serve_upstream(args.port, args.delay, args.stream_gap)
        return 0
    began = time.perf_counter()
    up_port = free_port()
    upstream = [
        sys.executable, str(Path(__file__).resolve()), "--delay", str(args.delay),
        "--stream-gap", str(args.stream_gap), "upstream", "--port", str(up_port),
    ]  # fmt: skip
    results: dict[str, Any] = {"delay": args.delay, "stream_gap": args.stream_gap}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, process(upstream):
        wait_for_port(up_port)
        config = Path(tmp) / "bench.yaml"
        text = CONFIG.format(port=up_port)
        if args.admission:
            text += f"server:\n  admission: {args.admission}\n"
        config.write_text(text)
        bench = Bench(up_port, config, Path(tmp))
        for name in PHASES:
            if args.only in (None, name):
                results[name] = bench.phase(args, stream=name == "streams")
        results["breaker_events"] = bench.breaker_events
        results["shed_by_reason"] = bench.shed_by_reason
        results["admission"] = bench.admission
    results["elapsed_s"] = time.perf_counter() - began
    results["load"] = (load_before, os.getloadavg()[0])
    if args.json is not None:
        args.json.write_text(json.dumps(results))
    table = report(results)
    print(table)
    write_results(args.out, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
