"""From a recording to numbers: per phase (the pieces of the run between fault switches)
availability, latency percentiles, attempts per request, calls that reached a faulted
deployment or failed, and streams that broke mid-answer and were (or were not) recovered; per
fault, time to detect and time to recover; and the SLO verdicts."""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..kinds import Kind
from ..stats import percentile
from .record import CallRecord, Recording, RequestRecord
from .scenario import FaultWindow, Segment
from .slo import Assertion, Verdict, evaluate, is_percentile

__all__ = ["FaultReport", "PhaseReport", "Report", "Stats", "build_report"]

_OUT = frozenset({"open", "forced_open"})
_RECOVERIES = {"continued_recoveries": "continued", "restarted_recoveries": "restarted"}
_BLAMED = {kind.value: kind.policy.breaker_failure for kind in Kind}


@dataclass(frozen=True, slots=True)
class Stats:
    """Client-side numbers over a set of requests."""

    requests: int
    ok: int
    failed: int
    availability: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    ttft_p50: float | None
    ttft_p99: float | None
    attempts: float | None  # deployment calls per request
    faulted_calls: int | None  # calls that reached a deployment while faulted
    blamed_calls: int | None  # calls failed as the deployment's fault (None: over HTTP)
    streams: int = 0  # streamed requests
    broken_streams: int = 0  # streams that broke after content reached the client
    recovered_streams: int = 0  # ... and still gave the client its whole answer
    unrecovered_streams: int = 0  # ... and ended in an error event
    stream_recovery: float | None = None  # recovered / broken (None: nothing broke)


def _stats(
    requests: list[RequestRecord], faulted_calls: int | None, blamed_calls: int | None
) -> tuple[Stats, list[float], list[float]]:
    latencies = sorted(r.latency for r in requests)
    ttfts = sorted(r.ttft for r in requests if r.ttft is not None)
    ok = sum(r.ok for r in requests)
    n = len(requests)
    broken = sum(r.broken for r in requests)
    rescued = sum(r.rescued for r in requests)
    stats = Stats(
        requests=n,
        ok=ok,
        failed=n - ok,
        availability=ok / n if n else None,
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        p99=percentile(latencies, 99),
        ttft_p50=percentile(ttfts, 50),
        ttft_p99=percentile(ttfts, 99),
        attempts=sum(r.calls for r in requests) / n if n else None,
        faulted_calls=faulted_calls,
        blamed_calls=blamed_calls,
        streams=sum(r.stream for r in requests),
        broken_streams=broken,
        recovered_streams=rescued,
        unrecovered_streams=broken - rescued,
        stream_recovery=rescued / broken if broken else None,
    )
    return stats, latencies, ttfts


@dataclass(frozen=True, slots=True)
class PhaseReport:
    """One piece of the run between two fault switches."""

    start: float
    end: float
    faults: list[str]
    stats: Stats

    @property
    def label(self) -> str:
        return "; ".join(self.faults) or "no faults"


@dataclass(frozen=True, slots=True)
class FaultReport:
    """One fault window: how fast the router noticed, and how fast it took the deployment back.

    `detect` is fault start -> breaker open, health unhealthy or a rate-limit cool-down;
    `recover` is fault end -> the deployment's first successful answer after it. Both are None
    when not measured, with `detect_note` / `recover_note` saying why.
    """

    deployment: str
    fault: str
    start: float
    end: float
    detect: float | None
    detected_by: str | None
    detect_note: str | None
    recover: float | None
    recover_note: str | None
    calls: int | None  # calls that reached the deployment during the fault
    opens: int  # times its breaker opened during the fault
    max_calls_per_open: int | None  # most calls between two openings (the first: before it)


@dataclass
class Report:
    """The numbers of one run and the verdicts of its SLO."""

    recording: Recording
    phases: list[PhaseReport]
    overall: Stats
    faults: list[FaultReport]
    verdicts: list[Verdict] = field(default_factory=list)
    _latencies: list[float] = field(default_factory=list, repr=False)
    _ttfts: list[float] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]

    def metric(self, name: str) -> float | None:
        """A whole-run metric by assertion name: availability, p99, ttft_p50, detect, ..."""
        pct = is_percentile(name)
        if pct is not None:
            ttft, q = pct
            return percentile(self._ttfts if ttft else self._latencies, q)
        if name in ("detect", "recover"):
            return _worst(self.faults, name)
        if name in _RECOVERIES:
            how = self.stream_outcomes()
            return None if how is None else float(how[_RECOVERIES[name]])
        value = getattr(self.overall, name, None)
        return None if value is None else float(value)

    def stream_outcomes(self) -> dict[str, int] | None:
        """How each stream break ended: {"continued": n, "restarted": n, "failed": n} (a
        stream may break more than once); None when not observable (over HTTP)."""
        breaks = self.recording.stream_breaks
        if breaks is None:
            return None
        counts = dict.fromkeys(("continued", "restarted", "failed"), 0)
        for event in breaks:
            counts[event.outcome] = counts.get(event.outcome, 0) + 1
        return counts

    def check(self, assertions: Iterable[Assertion]) -> list[Verdict]:
        """Evaluate `assertions` and keep the verdicts."""
        wanted = list(assertions)
        self.verdicts = evaluate(wanted, {a.metric: self.metric(a.metric) for a in wanted})
        return self.verdicts

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (times in seconds)."""
        rec = self.recording
        scenario = rec.scenario
        return {
            "scenario": scenario.name,
            "description": scenario.description,
            "mode": rec.mode,
            "seed": rec.seed,
            "route": rec.route,
            "deployments": rec.deployments,
            "duration": rec.duration,
            "load": scenario.load.model_dump(mode="json", exclude={"request"}),
            "real_seconds": round(rec.real_seconds, 3),
            "overall": asdict(self.overall),
            "phases": [
                {"start": p.start, "end": p.end, "faults": p.faults, **asdict(p.stats)}
                for p in self.phases
            ],
            "faults": [asdict(f) for f in self.faults],
            "stream_breaks": self.stream_outcomes(),
            "assertions": [
                {"assertion": str(v.assertion), "value": v.value, "passed": v.passed}
                for v in self.verdicts
            ],
            "passed": self.passed,
            "notes": rec.notes,
        }


def build_report(recording: Recording, assertions: Iterable[Assertion] = ()) -> Report:
    """Compute phases, fault timings and the verdicts of `assertions` for `recording`."""
    scenario = recording.scenario
    windows = scenario.windows()
    requests = sorted(recording.requests, key=lambda r: r.start)
    calls = recording.calls
    phases = [_phase(seg, requests, calls) for seg in scenario.segments()]
    faulted = None if calls is None else sum(_faulted(calls, windows))
    overall, latencies, ttfts = _stats(requests, faulted, _blamed(calls, 0, math.inf))
    report = Report(
        recording=recording,
        phases=phases,
        overall=overall,
        faults=[_fault(w, windows, recording) for w in windows],
        _latencies=latencies,
        _ttfts=ttfts,
    )
    report.check(assertions)
    return report


def _phase(
    seg: Segment, requests: list[RequestRecord], calls: list[CallRecord] | None
) -> PhaseReport:
    starts = [r.start for r in requests]
    lo, hi = bisect_right(starts, seg.start - 1e-12), bisect_right(starts, seg.end - 1e-12)
    inside = requests[lo:hi]
    faulted = None
    if calls is not None:
        down = {w.deployment for w in seg.active}
        faulted = sum(1 for c in calls if c.deployment in down and seg.start <= c.start < seg.end)
    labels = [f"{w.deployment}: {w.label}" for w in seg.active]
    blamed = _blamed(calls, seg.start, seg.end)
    return PhaseReport(seg.start, seg.end, labels, _stats(inside, faulted, blamed)[0])


def _blamed(calls: list[CallRecord] | None, start: float, end: float) -> int | None:
    """Calls started in [start, end) that failed as their deployment's fault: of a kind its
    breaker counts (not a 429, a refused request, a lost hedge or a recovery that diverged)."""
    if calls is None:
        return None
    return sum(1 for c in calls if _BLAMED.get(c.kind, False) and start <= c.start < end)


def _faulted(calls: list[CallRecord], windows: list[FaultWindow]) -> Iterable[int]:
    for call in calls:
        yield any(w.deployment == call.deployment and w.covers(call.start) for w in windows)


def _fault(window: FaultWindow, windows: list[FaultWindow], rec: Recording) -> FaultReport:
    name = window.deployment
    start = _applied_at(rec, window)
    detect, by, detect_note = _detect(window, start, rec)
    recover, recover_note = _recover(window, windows, rec)
    calls, opens, most = _open_periods(window, rec)
    return FaultReport(
        deployment=name,
        fault=window.label,
        start=window.start,
        end=window.end,
        detect=detect,
        detected_by=by,
        detect_note=detect_note,
        recover=recover,
        recover_note=recover_note,
        calls=calls,
        opens=opens,
        max_calls_per_open=most,
    )


def _applied_at(rec: Recording, window: FaultWindow) -> float:
    """When the fault was really switched on (a gateway's admin call takes a moment)."""
    for switch in rec.switches:
        if switch.deployment == window.deployment and switch.faults and switch.at >= window.start:
            return switch.at if switch.at < window.end else window.start
    return window.start


def _breaker_state_at(rec: Recording, deployment: str, t: float) -> str:
    state = "closed"
    for change in rec.changes:
        if change.at > t:
            break
        if change.deployment == deployment and change.source == "breaker":
            state = change.state
    return state


def _detect(
    window: FaultWindow, start: float, rec: Recording
) -> tuple[float | None, str | None, str | None]:
    name = window.deployment
    if _breaker_state_at(rec, name, start) in _OUT:
        return 0.0, "already open", None
    found: list[tuple[float, str]] = []
    for change in rec.changes:
        if change.deployment == name and start <= change.at < window.end:
            if change.source == "breaker" and change.state in _OUT:
                found.append((change.at, "breaker"))
            elif change.source == "health" and change.state == "unhealthy":
                found.append((change.at, "health"))
    found += [(at, "rate limit") for d, at, _ in rec.cooldowns if d == name and start <= at]
    found = [f for f in found if f[0] < window.end]
    if found:
        at, by = min(found)
        return max(0.0, at - start), by, None
    if rec.calls is None:
        return None, None, "not observable over HTTP"
    touched = any(c.deployment == name and window.covers(c.start) for c in rec.calls)
    return None, None, "not detected" if touched else "no traffic"


def _recover(
    window: FaultWindow, windows: list[FaultWindow], rec: Recording
) -> tuple[float | None, str | None]:
    name = window.deployment
    later = [w.start for w in windows if w.deployment == name and w.start >= window.end]
    until = min(later, default=math.inf)
    answers: Iterable[tuple[float, float]]
    if rec.calls is not None:
        answers = ((c.start, c.end) for c in rec.calls if c.deployment == name and c.kind == "ok")
    else:
        answers = (
            (r.start, r.start + r.latency) for r in rec.requests if r.ok and r.deployment == name
        )
    ends = [end for begin, end in answers if begin >= window.end and end < until]
    if ends:
        return min(ends) - window.end, None
    if until < math.inf:
        return None, "next fault began first"
    if (
        rec.calls is not None
        and _breaker_state_at(rec, name, math.inf) not in _OUT
        and not any(c.deployment == name and c.start >= window.end for c in rec.calls)
    ):
        return None, "no traffic"  # never asked again: nothing to judge recovery by
    return None, "not recovered"


def _open_periods(window: FaultWindow, rec: Recording) -> tuple[int | None, int, int | None]:
    name = window.deployment
    opens = [
        c.at
        for c in rec.changes
        if c.deployment == name
        and c.source == "breaker"
        and c.state == "open"
        and window.covers(c.at)
    ]
    if rec.calls is None:
        return None, len(opens), None
    starts = [c.start for c in rec.calls if c.deployment == name and window.covers(c.start)]
    # the call that opens the breaker starts at (or just before) the opening: it belongs to the
    # period it ends, so periods are [start, open1], (open1, open2], ..., (open_n, end)
    edges = [window.start, *opens, window.end]
    counts = [
        sum(1 for s in starts if (a < s or (i == 0 and a == s)) and s <= b)
        for i, (a, b) in enumerate(itertools.pairwise(edges))
    ]
    return len(starts), len(opens), max(counts, default=0)


def _worst(faults: list[FaultReport], metric: str) -> float | None:
    """The slowest detection (or recovery); None if any fault was never detected (recovered)."""
    values: list[float] = []
    for f in faults:
        value = f.detect if metric == "detect" else f.recover
        note = f.detect_note if metric == "detect" else f.recover_note
        if value is not None:
            values.append(value)
        elif note in ("not detected", "not recovered", "not observable over HTTP"):
            return None
    return max(values, default=None)
