"""The chart as one self-contained HTML file: inline SVG, a few lines of inline JS for a hover
readout, no external requests. Every series is an element with a stable id
(`series-traffic-primary`, `series-latency-p99`, `breakers-primary`) and a legend entry."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from pathlib import Path

from .chart_model import FAULT_COLOR, STATE_COLORS, ChartData, Series, slug

__all__ = ["render_html"]

WIDTH = 1100
LEFT, RIGHT = 110, 170
PLOT_W = WIDTH - LEFT - RIGHT
GAP = 34
_STATE_NAMES = {
    "closed": "closed",
    "half_open": "half-open (probe)",
    "open": "open",
    "forced_open": "forced open",
    "disabled": "disabled",
    "unhealthy": "unhealthy",
    "cooling_down": "cooling down (429)",
}


class _Svg:
    """Accumulates SVG elements top to bottom."""

    def __init__(self, data: ChartData) -> None:
        self.data = data
        self.parts: list[str] = []
        self.drawn: list[str] = []
        self.y = 30.0 + 13 * max((w.lane for w in data.windows), default=0)

    def x(self, t: float) -> float:
        return LEFT + PLOT_W * t / self.data.duration if self.data.duration else LEFT

    def add(self, element: str) -> None:
        self.parts.append(element)


def render_html(data: ChartData, path: Path) -> list[str]:
    """Write the chart as HTML; returns the series drawn (`panel:name`)."""
    svg = _Svg(data)
    _traffic(svg)
    _errors(svg)
    _breakers(svg)
    _latency(svg)
    height = svg.y + 40
    body = "\n".join(svg.parts)
    page = _PAGE.format(
        title=html.escape(data.title),
        subtitle=html.escape(data.subtitle),
        width=WIDTH,
        height=f"{height:.0f}",
        body=body,
        axis=_time_axis(svg, height - 40),
        data=html.escape(json.dumps(_readout_data(data)), quote=False),
        left=LEFT,
        plot_w=PLOT_W,
    )
    path.write_text(page, encoding="utf-8")
    return svg.drawn


def _panel(svg: _Svg, name: str, title: str, height: float) -> tuple[float, float]:
    top = svg.y
    svg.add(f'<g id="panel-{name}">')
    svg.add(
        f'<text class="panel-title" x="{LEFT + 4}" y="{top - 6:.1f}">{html.escape(title)}</text>'
    )
    svg.add(f'<rect class="frame" x="{LEFT}" y="{top:.1f}" width="{PLOT_W}" height="{height}"/>')
    for w in svg.data.windows:
        x0, x1 = svg.x(w.start), svg.x(w.end)
        label = html.escape(f"fault on {w.deployment}: {w.label} ({w.start:g}s-{w.end:g}s)")
        svg.add(
            f'<rect class="fault" x="{x0:.1f}" y="{top:.1f}" width="{max(0.5, x1 - x0):.1f}" '
            f'height="{height}" fill="{FAULT_COLOR}"><title>{label}</title></rect>'
        )
    svg.y += height + GAP
    return top, top + height


def _y_axis(
    svg: _Svg, top: float, bottom: float, high: float, unit: str, scale: Callable[[float], float]
) -> None:
    for value in _ticks(high):
        y = scale(value)
        svg.add(f'<line class="grid" x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{y:.1f}" y2="{y:.1f}"/>')
        svg.add(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    svg.add(
        f'<text class="unit" x="{LEFT - 46}" y="{(top + bottom) / 2:.1f}" '
        f'transform="rotate(-90 {LEFT - 46} {(top + bottom) / 2:.1f})">{unit}</text>'
    )


def _ticks(high: float) -> list[float]:
    if high <= 0:
        return [0.0]
    raw = high / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(high / step + 1e-9) + 1)]


def _legend(svg: _Svg, top: float, entries: list[tuple[str, str, str]]) -> None:
    svg.add(f'<g class="legend" transform="translate({LEFT + PLOT_W + 14},{top + 4:.1f})">')
    for i, (ident, name, color) in enumerate(entries):
        svg.add(
            f'<g class="legend-item" data-series="{ident}" transform="translate(0,{i * 16})">'
            f'<rect width="11" height="11" y="-9" fill="{color}"/>'
            f'<text x="16">{html.escape(name)}</text></g>'
        )
    svg.add("</g>")


def _steps(svg: _Svg, s: Series, ys: list[float], scale: Callable[[float], float]) -> str:
    step = svg.data.resolution
    points = []
    for x, y in zip(s.x, ys, strict=True):
        points += [
            f"{svg.x(x):.1f},{scale(y):.1f}",
            f"{svg.x(min(x + step, svg.data.duration)):.1f},{scale(y):.1f}",
        ]
    return " L".join(points)


def _traffic(svg: _Svg) -> None:
    series = svg.data.panel("traffic")
    top, bottom = _panel(svg, "traffic", "requests/s answered, by deployment", 240)
    totals = [sum(v or 0 for v in col) for col in zip(*(s.y for s in series), strict=True)]
    high = _nice_max(max(totals, default=0))
    scale = _linear(top, bottom, high)
    _y_axis(svg, top, bottom, high, "req/s", scale)
    base = [0.0] * len(totals)
    entries = []
    for s in series:
        upper = [b + (v or 0) for b, v in zip(base, s.y, strict=True)]
        path = f"M{_steps(svg, s, upper, scale)} L" + _steps_back(svg, s, base, scale)
        svg.add(
            f'<path id="{s.id}" class="area" data-name="{html.escape(s.name)}" '
            f'd="{path} Z" fill="{s.color}"/>'
        )
        base = upper
        entries.append((s.id, s.name, s.color))
        svg.drawn.append(f"traffic:{s.name}")
    _legend(svg, top, entries)
    _fault_labels(svg, top)
    svg.add("</g>")


def _steps_back(svg: _Svg, s: Series, ys: list[float], scale: Callable[[float], float]) -> str:
    step = svg.data.resolution
    points = []
    for x, y in reversed(list(zip(s.x, ys, strict=True))):
        points += [
            f"{svg.x(min(x + step, svg.data.duration)):.1f},{scale(y):.1f}",
            f"{svg.x(x):.1f},{scale(y):.1f}",
        ]
    return " L".join(points)


def _fault_labels(svg: _Svg, top: float) -> None:
    for w in svg.data.windows:
        x = (svg.x(w.start) + svg.x(w.end)) / 2
        svg.add(
            f'<text class="fault-label" x="{x:.1f}" y="{top + 14 + 13 * w.lane:.1f}" '
            f'text-anchor="middle">{html.escape(w.text)}</text>'
        )


def _errors(svg: _Svg) -> None:
    top, bottom = _panel(svg, "errors", "errors seen by clients (requests/s)", 90)
    entries = []
    for s in svg.data.panel("errors"):
        ys = [v or 0 for v in s.y]
        high = _nice_max(max(ys, default=0)) or 1.0
        scale = _linear(top, bottom, high)
        _y_axis(svg, top, bottom, high, "failed/s", scale)
        width = PLOT_W * svg.data.resolution / svg.data.duration
        rects = "".join(
            f'<rect x="{svg.x(x):.1f}" y="{scale(y):.1f}" width="{width:.2f}" '
            f'height="{bottom - scale(y):.1f}"/>'
            for x, y in zip(s.x, ys, strict=True)
            if y > 0
        )
        svg.add(f'<g id="{s.id}" class="bars" data-name="{s.name}" fill="{s.color}">{rects}</g>')
        if not any(ys):
            svg.add(
                f'<text class="all-good" x="{LEFT + PLOT_W / 2}" y="{(top + bottom) / 2 + 5:.1f}" '
                'text-anchor="middle">no errors seen by clients</text>'
            )
        entries.append((s.id, s.name, s.color))
        svg.drawn.append(f"errors:{s.name}")
    _legend(svg, top, entries)
    svg.add("</g>")


def _breakers(svg: _Svg) -> None:
    names = svg.data.deployments
    row = 26
    top, _ = _panel(svg, "breakers", "breaker state", row * max(1, len(names)) + 8)
    seen: set[str] = set()
    for i, name in enumerate(names):
        y = top + 4 + i * row
        svg.add(f'<g id="breakers-{slug(name)}" data-name="{html.escape(name)}">')
        svg.add(
            f'<text class="tick" x="{LEFT - 6}" y="{y + row / 2 + 3:.1f}" '
            f'text-anchor="end">{html.escape(name)}</text>'
        )
        for b in (b for b in svg.data.bands if b.deployment == name):
            thin = b.state in ("cooling_down", "unhealthy")
            y0, h = (y + row - 10, 6) if thin else (y + 2, row - 8)
            x0 = svg.x(b.start)
            w = max(1.5, svg.x(b.end) - x0)
            tip = html.escape(
                f"{name}: {_STATE_NAMES.get(b.state, b.state)} {b.start:.2f}s-{b.end:.2f}s"
            )
            svg.add(
                f'<rect class="band state-{b.state}" x="{x0:.1f}" y="{y0:.1f}" '
                f'width="{w:.1f}" height="{h}" fill="{b.color}"><title>{tip}</title></rect>'
            )
            seen.add(b.state)
        for m in (m for m in svg.data.marks if m.deployment == name):
            svg.add(
                f'<text class="mark" x="{svg.x(m.at) + 3:.1f}" y="{y + row - 1:.1f}">'
                f"{html.escape(m.text)}</text>"
            )
        svg.add("</g>")
        svg.drawn.append(f"breakers:{name}")
    states = [s for s in STATE_COLORS if s in seen]
    _legend(svg, top, [(f"state-{s}", _STATE_NAMES[s], STATE_COLORS[s]) for s in states])
    svg.add("</g>")


def _latency(svg: _Svg) -> None:
    series = svg.data.panel("latency")
    failed = any("failed" in s.name for s in series)
    title = "latency of answered requests (ms)" + ("; dotted: failed ones" if failed else "")
    top, bottom = _panel(svg, "latency", title, 170)
    values = [v for s in series for v in s.y if v is not None]
    high = _nice_max(max(values, default=0)) or 1.0
    scale = _linear(top, bottom, high)
    _y_axis(svg, top, bottom, high, "ms", scale)
    entries = []
    for s in series:
        runs: list[str] = []
        for run in _runs(s):
            runs.append(
                "M"
                + _steps(
                    svg,
                    Series(
                        s.name,
                        s.panel,
                        tuple(x for x, _ in run),
                        tuple(y for _, y in run),
                        s.color,
                        s.style,
                    ),
                    [y for _, y in run],
                    scale,
                )
            )
        dash = ' stroke-dasharray="3 2"' if "failed" in s.name else ""
        svg.add(
            f'<path id="{s.id}" class="line" data-name="{s.name}" d="{" ".join(runs)}" '
            f'stroke="{s.color}"{dash}/>'
        )
        entries.append((s.id, s.name, s.color))
        svg.drawn.append(f"latency:{s.name}")
    _legend(svg, top, entries)
    svg.add("</g>")


def _runs(s: Series) -> list[list[tuple[float, float]]]:
    """Split a series at its gaps (bins without requests)."""
    out: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(s.x, s.y, strict=True):
        if y is None:
            if out[-1]:
                out.append([])
        else:
            out[-1].append((x, y))
    return [r for r in out if r]


def _time_axis(svg: _Svg, y: float) -> str:
    parts = []
    for t in _ticks(svg.data.duration):
        x = svg.x(t)
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{y:.1f}" text-anchor="middle">{t:g}</text>'
        )
    parts.append(
        f'<text class="unit" x="{LEFT + PLOT_W / 2}" y="{y + 18:.1f}" '
        'text-anchor="middle">seconds since the start of the run</text>'
    )
    return "\n".join(parts)


def _linear(top: float, bottom: float, high: float) -> Callable[[float], float]:
    return lambda v: bottom - (bottom - top) * (min(v, high) / high if high else 0)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 0.0
    return max(_ticks(value * 1.05)[-1], value)


def _readout_data(data: ChartData) -> dict[str, object]:
    return {
        "duration": data.duration,
        "step": data.resolution,
        "series": [
            {"name": f"{s.panel}:{s.name}", "y": [None if v is None else round(v, 2) for v in s.y]}
            for s in data.series
        ],
    }


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 13px system-ui, sans-serif; color: #222; margin: 16px; }}
h1 {{ font-size: 17px; margin: 0 0 2px; }}
p.sub {{ color: #555; margin: 0 0 6px; }}
svg text {{ font: 11px system-ui, sans-serif; fill: #333; }}
.panel-title {{ font-weight: 600; }}
.frame {{ fill: none; stroke: #bbb; }}
.grid {{ stroke: #eee; }}
.fault {{ opacity: 0.09; }}
.fault-label {{ fill: {fault}; font-size: 11px; paint-order: stroke; stroke: #fff;
  stroke-width: 3px; stroke-linejoin: round; }}
.area {{ opacity: 0.88; }}
.line {{ fill: none; stroke-width: 1.6; }}
.all-good {{ fill: #2e7d4f; font-size: 12px; }}
.mark {{ font-size: 10px; fill: #333; paint-order: stroke; stroke: #fff; stroke-width: 2.5px; }}
#readout {{ position: fixed; pointer-events: none; background: #fff; border: 1px solid #ccc;
  padding: 4px 6px; font-size: 11px; display: none; white-space: pre; }}
#cursor {{ stroke: #666; stroke-dasharray: 3 3; display: none; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="sub">{subtitle}</p>
<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"
  viewBox="0 0 {width} {height}">
{body}
{axis}
<line id="cursor" y1="50" y2="{height}"/>
</svg>
<div id="readout"></div>
<script type="application/json" id="chart-data">{data}</script>
<script>
(() => {{
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const svg = document.getElementById("chart"), cur = document.getElementById("cursor");
  const box = document.getElementById("readout");
  svg.addEventListener("mousemove", (ev) => {{
    const r = svg.getBoundingClientRect(), x = (ev.clientX - r.left) * {width} / r.width;
    const t = (x - {left}) / {plot_w} * data.duration;
    if (t < 0 || t > data.duration) {{ box.style.display = cur.style.display = "none"; return; }}
    const i = Math.min(data.series[0].y.length - 1, Math.floor(t / data.step));
    cur.setAttribute("x1", x); cur.setAttribute("x2", x); cur.style.display = "block";
    box.textContent = "t = " + (i * data.step).toFixed(1) + "s\\n" + data.series.map(
      (s) => s.name + ": " + (s.y[i] === null ? "-" : s.y[i])).join("\\n");
    box.style.left = (ev.clientX + 14) + "px"; box.style.top = (ev.clientY + 10) + "px";
    box.style.display = "block";
  }});
  svg.addEventListener("mouseleave", () => {{ box.style.display = cur.style.display = "none"; }});
}})();
</script>
</body></html>
""".replace("{fault}", FAULT_COLOR)
