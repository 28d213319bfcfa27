"""The timeline of a run as a chart: traffic per deployment (stacked), errors seen by clients,
breaker states per deployment (bands), latency p50/p99 — fault windows shaded throughout, and
streams rescued during a fault noted on the row of the deployment that finished them.

`chart_data` turns a recording into plain series and bands (`chart_model`), so what a chart
shows can be inspected (and tested) without drawing it; `write_chart` picks the renderer by the
file's suffix: `_png` (matplotlib, Agg) or `_html` (one self-contained file, inline SVG), which
draw the same data.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from ..stats import percentile
from .chart_model import (
    ERROR_COLOR,
    LATENCY_COLORS,
    PALETTE,
    Band,
    ChartData,
    Mark,
    Series,
    Window,
)
from .record import Recording
from .report import Report
from .runner import default_resolution
from .slo import format_seconds

__all__ = [
    "Band",
    "ChartData",
    "Mark",
    "Series",
    "Window",
    "chart_data",
    "render_png",
    "write_chart",
]

MAX_MARKED = 4  # more fault windows than this (flapping): no detect/recover notes, they'd pile up


def chart_data(recording: Recording, report: Report | None = None) -> ChartData:
    """Bin a recording into the chart's series, bands and shaded windows; with its `report`,
    mark when each fault was detected and when the deployment was back."""
    scenario = recording.scenario
    duration = recording.duration
    step = scenario.resolution or default_resolution(duration)
    bins = max(1, math.ceil(duration / step - 1e-9))
    xs = tuple(round(i * step, 6) for i in range(bins))
    served: dict[str, list[float]] = {d: [0.0] * bins for d in recording.deployments}
    failed = [0.0] * bins
    latencies: list[list[float]] = [[] for _ in range(bins)]
    failures: list[list[float]] = [[] for _ in range(bins)]
    for r in recording.requests:
        i = min(bins - 1, int(r.start / step))
        (latencies if r.ok else failures)[i].append(r.latency)
        if r.ok and r.deployment is not None:
            served.setdefault(r.deployment, [0.0] * bins)[i] += 1 / step
        elif not r.ok:
            failed[i] += 1 / step
    data = ChartData(
        title=f"{scenario.name}: {scenario.description}".rstrip(": "),
        subtitle=_subtitle(recording),
        duration=duration,
        resolution=step,
        deployments=list(served),
    )
    for n, (name, ys) in enumerate(served.items()):
        data.series.append(
            Series(name, "traffic", xs, tuple(ys), PALETTE[n % len(PALETTE)], "area")
        )
    data.series.append(Series("failed", "errors", xs, tuple(failed), ERROR_COLOR, "bar"))
    for q, name, source in (
        (50, "p50", latencies),
        (99, "p99", latencies),
        (99, "p99 failed", failures),
    ):
        if name == "p99 failed" and not any(failures):
            continue
        ys_ms = tuple(_ms(percentile(sorted(b), q)) for b in source)
        data.series.append(Series(name, "latency", xs, ys_ms, LATENCY_COLORS[name], "line"))
    data.bands = _bands(recording)
    data.windows = _windows(recording)
    if report is not None and len(report.faults) <= MAX_MARKED:
        data.marks = _marks(report)
    return data


def _windows(rec: Recording) -> list[Window]:
    """Fault windows to shade: identical spans merged, overlapping labels put in lanes."""
    merged: dict[tuple[float, float, str], list[str]] = {}
    for w in rec.scenario.windows():
        merged.setdefault((w.start, w.end, w.label), []).append(w.deployment)
    out: list[Window] = []
    lanes: list[float] = []  # where each lane's last label ends
    for (start, end, label), names in sorted(merged.items()):
        room = rec.duration * 0.0065 * (len(label) + len(", ".join(names)) + 4)  # text width
        middle = (start + end) / 2
        left, right = min(start, middle - room / 2), max(end, middle + room / 2)
        lane = next((i for i, busy in enumerate(lanes) if busy <= left), len(lanes))
        if lane == len(lanes):
            lanes.append(right)
        lanes[lane] = right
        out.append(Window(", ".join(names), start, end, label, lane))
    return out


def _marks(report: Report) -> list[Mark]:
    out = _rescues(report)
    for f in report.faults:
        if f.detect is not None:
            out.append(
                Mark(f.deployment, f.start + f.detect, f"detected +{format_seconds(f.detect)}")
            )
        if f.recover is not None:
            out.append(Mark(f.deployment, f.end + f.recover, f"back +{format_seconds(f.recover)}"))
    return out


def _rescues(report: Report) -> list[Mark]:
    """On the row of each deployment that finished broken streams during a fault window: how
    many it rescued, at the window's start."""
    out = []
    rescued = [r for r in report.recording.requests if r.rescued and r.deployment]
    for w in report.recording.scenario.windows():
        by = Counter(r.deployment for r in rescued if w.covers(r.start))
        for name, n in sorted(by.items(), key=lambda item: str(item[0])):
            what = "stream" if n == 1 else "streams"
            out.append(Mark(str(name), w.start, f"{n} {what} rescued"))
    return out


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


def _subtitle(rec: Recording) -> str:
    rates = "/".join(f"{r:g}" for r in sorted({r for _, _, r, _ in rec.scenario.load.stretches()}))
    ok = sum(r.ok for r in rec.requests)
    n = len(rec.requests)
    avail = f"{ok / n * 100:.2f}%" if n else "-"
    mode = {"fast": "virtual time", "real": "real time", "http": "via HTTP"}[rec.mode]
    run = f"{rates} req/s for {rec.duration:g}s, {mode}, seed {rec.seed}"
    return f"{run}: {n} requests, {avail} answered"


def _bands(rec: Recording) -> list[Band]:
    end = max(rec.duration, rec.ended)
    out: list[Band] = []
    known = rec.calls is not None
    for name in rec.deployments:
        changes = [c for c in rec.changes if c.deployment == name and c.source == "breaker"]
        if known or changes:
            state, since = "closed", 0.0
            for change in changes:
                if change.at > since or state == "half_open":
                    out.append(Band(name, since, change.at, state))
                state, since = change.state, change.at
            out.append(Band(name, since, end, state))
        out.extend(_spans(rec, name, end))
    # a half-open that lasted no time at all is a probe that failed at once: keep it, it is drawn
    return [
        b for b in out if (b.end > b.start or b.state == "half_open") and b.start < rec.duration
    ]


def _spans(rec: Recording, name: str, end: float) -> list[Band]:
    """Unhealthy spans and rate-limit cool-downs (merged) of one deployment."""
    out: list[Band] = []
    sick: float | None = None
    for change in rec.changes:
        if change.deployment == name and change.source == "health":
            if change.state == "unhealthy" and sick is None:
                sick = change.at
            elif change.state == "healthy" and sick is not None:
                out.append(Band(name, sick, change.at, "unhealthy"))
                sick = None
    if sick is not None:
        out.append(Band(name, sick, end, "unhealthy"))
    merged: list[list[float]] = []
    for _, a, b in sorted(c for c in rec.cooldowns if c[0] == name):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out.extend(Band(name, a, min(b, end), "cooling_down") for a, b in merged)
    return out


# -- drawing -----------------------------------------------------------------------------


def render_png(data: ChartData, path: str | Path) -> list[str]:
    """Draw `data` to a PNG with matplotlib (Agg); returns the legend names drawn."""
    from ._png import draw_png

    return draw_png(data, Path(path))


def write_chart(recording: Recording, path: str | Path, report: Report | None = None) -> list[str]:
    """Write the chart of `recording` to `path` (.png or .html); returns the series drawn."""
    target = Path(path)
    data = chart_data(recording, report)
    suffix = target.suffix.lower()
    if suffix == ".png":
        return render_png(data, target)
    if suffix in (".html", ".htm"):
        from ._html import render_html

        return render_html(data, target)
    raise ValueError(f"chart {str(path)!r}: use a .png or .html file name")
